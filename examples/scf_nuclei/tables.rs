//! Plan-time tables: everything that depends on the basis and grid only, computed once before
//! the first iteration and read by every iteration (a GPU run uploads them once).
//!
//! All radial functions are tabulated in the dimensionless x = r / b, the same for every
//! nucleus; a step scales them by the nucleus's b: u(r) = u(x) / sqrt(b),
//! du/dr = u'(x) / b^(3/2), d2u/dr2 = u''(x) / b^(5/2).

use crate::ho_basis::HoBasis;
use crate::layout::{dim, row_of, BasisSize};

/// Basis functions and quadrature on the grid (layout: `row * grid + q`, see layout.rs).
#[derive(Debug, Clone)]
pub struct Tables {
    pub grid: usize,
    /// Nodes x_q and Gauss-Legendre weights w_q (integral over x = sum_q w_q f(x_q)).
    pub x: Vec<f64>,
    pub w: Vec<f64>,
    /// u_nl(x_q), normalised so that the integral of u^2 over x is 1.
    pub u: Vec<f64>,
    /// g = du/dx - u/x: r times the derivative of R = u/r, the radial part of the gradient.
    pub g: Vec<f64>,
    /// d^2 u/dx^2.
    pub d2u: Vec<f64>,
    /// Spectral integration matrix `cum[q * grid + p]`: the integral from 0 to x_q of a
    /// smooth f is sum_p cum[q * grid + p] f(x_p) (exact for polynomials of degree < grid).
    pub cum: Vec<f64>,
}

impl Tables {
    pub fn new(size: BasisSize) -> Self {
        let basis = HoBasis::with_grid(size.n_max, size.grid, size.x_max);
        let grid = size.grid;
        let rows = row_of(size.n_max, size.n_max) + 1;
        let (mut u, mut g, mut d2u) = (
            vec![0.0; rows * grid],
            vec![0.0; rows * grid],
            vec![0.0; rows * grid],
        );
        for l in 0..=size.n_max {
            for n in 0..dim(size.n_max, l) {
                let row = row_of(size.n_max, l) + n;
                let (un, dun) = (basis.u(n, l), basis.du(n, l));
                for q in 0..grid {
                    let x = basis.nodes[q];
                    u[row * grid + q] = un[q];
                    g[row * grid + q] = dun[q] - un[q] / x;
                    d2u[row * grid + q] = basis.d2u(n, l, q);
                }
            }
        }
        let cum = integration_matrix(&basis.nodes, &basis.weights, basis.x_max);
        Self {
            grid,
            x: basis.nodes,
            w: basis.weights,
            u,
            g,
            d2u,
            cum,
        }
    }
}

/// `S[i * m + j]` = integral from 0 to x_i of the Lagrange polynomial through the m
/// Gauss-Legendre nodes that is 1 at x_j, for nodes on [0, x_max]. With t = 2x/x_max - 1,
/// Gauss weights o_j on [-1, 1] and their discrete orthogonality of P_0..P_(m-1), that polynomial
/// is o_j sum_(k < m) (2k + 1)/2 P_k(t_j) P_k(t); the integral of P_k from -1 to t is
/// (P_(k+1)(t) - P_(k-1)(t)) / (2k + 1) for k >= 1 and t + 1 for k = 0. So, with the x weights
/// w_j = o_j x_max / 2,
/// S_ij = w_j [(t_i + 1)/2 + 1/2 sum_(k=1)^(m-1) P_k(t_j) (P_(k+1)(t_i) - P_(k-1)(t_i))]
/// (Legendre collocation; Canuto, Hussaini, Quarteroni & Zang, Spectral Methods, 2006, ch. 2).
pub fn integration_matrix(nodes: &[f64], weights: &[f64], x_max: f64) -> Vec<f64> {
    let m = nodes.len();
    // p[j * (m + 1) + k] = P_k(t_j), k = 0..=m.
    let mut p = vec![0.0; m * (m + 1)];
    for (j, &x) in nodes.iter().enumerate() {
        let t = 2.0 * x / x_max - 1.0;
        let row = &mut p[j * (m + 1)..(j + 1) * (m + 1)];
        row[0] = 1.0;
        if m > 0 {
            row[1] = t;
        }
        for k in 1..m {
            row[k + 1] = ((2 * k + 1) as f64 * t * row[k] - k as f64 * row[k - 1]) / (k + 1) as f64;
        }
    }
    let mut s = vec![0.0; m * m];
    for i in 0..m {
        let pi = &p[i * (m + 1)..(i + 1) * (m + 1)];
        let t_i = pi[1];
        for j in 0..m {
            let pj = &p[j * (m + 1)..(j + 1) * (m + 1)];
            let mut sum = 0.5 * (t_i + 1.0);
            for k in 1..m {
                sum += 0.5 * pj[k] * (pi[k + 1] - pi[k - 1]);
            }
            s[i * m + j] = weights[j] * sum;
        }
    }
    s
}
