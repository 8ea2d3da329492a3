//! The spherical harmonic-oscillator basis: radial functions tabulated on Gauss-Legendre nodes
//! in the dimensionless radius x = r / b, and the kinetic energy in closed form.
//!
//! u_nl(x) = sqrt(2 n! / Gamma(n + l + 3/2)) x^(l+1) exp(-x^2/2) L_n^(l+1/2)(x^2), normalised
//! so that the integral of u^2 over x is 1 (e.g. Suhonen, From Nucleons to Nucleus, ch. 3).
//! Tabulating in x makes the table the same for every nucleus: only b changes.
//!
//! The derivative du_nl/dx is tabulated too, from the Laguerre identity
//! t dL_n^a/dt = n L_n^a - (n + a) L_(n-1)^a (Abramowitz & Stegun 22.8.6), which gives
//! du_nl/dx = ((2n + l + 1)/x - x) u_nl - (2/x) sqrt(n (n + l + 1/2)) u_(n-1)l; the second
//! derivative follows from the oscillator's radial equation,
//! u_nl'' = (x^2 + l(l + 1)/x^2 - (4n + 2l + 3)) u_nl.

/// Upper end of the quadrature interval in x: u_nl is below 1e-12 beyond it for 2n + l <= 60.
const X_MAX: f64 = 14.0;

/// Gauss-Legendre nodes and weights on [0, x_max], by Newton iteration on P_m
/// (Golub-Welsch would do as well; this is the classic Numerical Recipes `gauleg` idea).
fn gauss_legendre(m: usize, x_max: f64) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; m];
    let mut weights = vec![0.0; m];
    for i in 0..m.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (m as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, 0.0);
            for k in 0..m {
                let p2 = p1;
                p1 = p0;
                p0 = ((2 * k + 1) as f64 * z * p1 - k as f64 * p2) / (k + 1) as f64;
            }
            dp = m as f64 * (z * p0 - p1) / (z * z - 1.0);
            let dz = p0 / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - z * z) * dp * dp);
        for (x, sign) in [(i, -1.0), (m - 1 - i, 1.0)] {
            nodes[x] = 0.5 * x_max * (1.0 + sign * z);
            weights[x] = 0.5 * x_max * w;
        }
    }
    (nodes, weights)
}

/// The basis up to N_max = 2n + l: quadrature nodes and every u_nl on them.
pub struct HoBasis {
    pub n_max: usize,
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
    /// Upper end of the quadrature interval in x.
    #[allow(dead_code)] // read by examples/scf_nuclei
    pub x_max: f64,
    /// `table[l][n][q]` = u_nl(`nodes[q]`).
    table: Vec<Vec<Vec<f64>>>,
    /// `dtable[l][n][q]` = du_nl/dx at `nodes[q]`.
    #[allow(dead_code)] // read by examples/scf_nuclei
    dtable: Vec<Vec<Vec<f64>>>,
}

impl HoBasis {
    /// The basis on 40 + 3 N_max Gauss-Legendre nodes in [0, 14].
    pub fn new(n_max: usize) -> Self {
        Self::with_grid(n_max, 40 + 3 * n_max, X_MAX)
    }

    /// The basis on `points` Gauss-Legendre nodes in [0, `x_max`] (x_max must leave every
    /// u_nl with 2n + l <= n_max negligible beyond it).
    pub fn with_grid(n_max: usize, points: usize, x_max: f64) -> Self {
        let (nodes, weights) = gauss_legendre(points, x_max);
        let mut table = Vec::with_capacity(n_max + 1);
        for l in 0..=n_max {
            let alpha = l as f64 + 0.5;
            let count = (n_max - l) / 2 + 1;
            let mut per_n = vec![vec![0.0; nodes.len()]; count];
            for (q, &x) in nodes.iter().enumerate() {
                let t = x * x;
                // Laguerre recurrence in n, log-space prefactor against overflow at high l.
                let (mut lm1, mut lk) = (0.0, 1.0);
                let mut ln_gamma = ln_gamma_half_integer(l + 1); // ln Gamma(l + 3/2)
                let mut ln_fact = 0.0; // ln n!
                for (n, row) in per_n.iter_mut().enumerate() {
                    if n > 0 {
                        let k = (n - 1) as f64;
                        let next =
                            ((2.0 * k + 1.0 + alpha - t) * lk - (k + alpha) * lm1) / (k + 1.0);
                        lm1 = lk;
                        lk = next;
                        ln_fact += (n as f64).ln();
                        ln_gamma += (n as f64 + l as f64 + 0.5).ln();
                    }
                    let ln_pref = 0.5 * (2f64.ln() + ln_fact - ln_gamma)
                        + (l as f64 + 1.0) * x.ln()
                        - 0.5 * t;
                    row[q] = ln_pref.exp() * lk;
                }
            }
            table.push(per_n);
        }
        let dtable = table
            .iter()
            .enumerate()
            .map(|(l, per_n)| {
                (0..per_n.len())
                    .map(|n| {
                        let root = (n as f64 * (n as f64 + l as f64 + 0.5)).sqrt();
                        nodes
                            .iter()
                            .enumerate()
                            .map(|(q, &x)| {
                                let lower = if n > 0 { per_n[n - 1][q] } else { 0.0 };
                                ((2 * n + l + 1) as f64 / x - x) * per_n[n][q]
                                    - 2.0 / x * root * lower
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            n_max,
            nodes,
            weights,
            x_max,
            table,
            dtable,
        }
    }

    /// Number of radial states with angular momentum l: n = 0..=(N_max - l) / 2.
    pub fn dim(&self, l: usize) -> usize {
        (self.n_max - l) / 2 + 1
    }

    /// u_nl at every node.
    pub fn u(&self, n: usize, l: usize) -> &[f64] {
        &self.table[l][n]
    }

    /// du_nl/dx at every node.
    #[allow(dead_code)] // used by examples/scf_nuclei
    pub fn du(&self, n: usize, l: usize) -> &[f64] {
        &self.dtable[l][n]
    }

    /// d^2 u_nl / dx^2 at node `q`, from the radial equation of the oscillator.
    #[allow(dead_code)] // used by examples/scf_nuclei
    pub fn d2u(&self, n: usize, l: usize, q: usize) -> f64 {
        let x = self.nodes[q];
        let centrifugal = (l * (l + 1)) as f64 / (x * x);
        (x * x + centrifugal - (4 * n + 2 * l + 3) as f64) * self.table[l][n][q]
    }

    /// Kinetic-energy matrix element <n'l|T|nl> in units of hbar omega (tridiagonal in n).
    pub fn kinetic(n_row: usize, n_col: usize, l: usize) -> f64 {
        let (lo, hi) = (n_row.min(n_col), n_row.max(n_col));
        match hi - lo {
            0 => 0.5 * (2.0 * lo as f64 + l as f64 + 1.5),
            1 => 0.5 * ((lo as f64 + 1.0) * (lo as f64 + l as f64 + 1.5)).sqrt(),
            _ => 0.0,
        }
    }
}

/// ln Gamma(k + 1/2) for integer k >= 0.
fn ln_gamma_half_integer(k: usize) -> f64 {
    let mut s = 0.5 * std::f64::consts::PI.ln();
    for i in 0..k {
        s += (i as f64 + 0.5).ln();
    }
    s
}
