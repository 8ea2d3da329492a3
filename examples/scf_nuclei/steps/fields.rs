//! Mean fields of both species from the densities (formulas in skyrme.rs), folded with the
//! quadrature weights into the four per-point factors the Hamiltonian step integrates:
//! ```text
//! H_ab = int dr { B [g_a g_b + l(l+1)/r^2 u_a u_b] + [U + (W / r) l.sigma] u_a u_b }
//!      = sum_q { f_b g_a g_b + [l(l+1) f_l + f_u + l.sigma f_w] u_a u_b }   (x units)
//! f_b = w_q B / b^2,  f_l = w_q B / (b x_q)^2,  f_u = w_q U,  f_w = w_q W / (b x_q)
//! ```
//! B in MeV fm^2, U in MeV, W in MeV fm; the f's in MeV.

use rayon::prelude::*;

use super::densities::{Densities, QUANTITIES};
use crate::layout::{Layout, SPECIES};
use crate::skyrme::{pow_sixth, Coefficients};
use crate::tables::Tables;

/// The weighted mean fields of every nucleus, species and grid point, `(i * 2 + s) * grid + q`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    pub f_b: Vec<f64>,
    pub f_l: Vec<f64>,
    pub f_u: Vec<f64>,
    pub f_w: Vec<f64>,
}

impl Fields {
    pub fn zeros(len: usize) -> Self {
        Self {
            f_b: vec![0.0; len],
            f_l: vec![0.0; len],
            f_u: vec![0.0; len],
            f_w: vec![0.0; len],
        }
    }
}

/// B_q, U_q and W_q (MeV fm^2, MeV, MeV fm) of both species at one point, from the densities
/// `d[species][quantity]` (rho, tau, J, rho', lap rho, div J), the direct Coulomb potential
/// `v_coul` (MeV) and the mass number `a`.
pub fn mean_fields(
    c: &Coefficients,
    a: f64,
    d: &[[f64; QUANTITIES]; SPECIES],
    v_coul: f64,
) -> [[f64; 3]; SPECIES] {
    let rho = d[0][0] + d[1][0];
    let tau = d[0][1] + d[1][1];
    let lap = d[0][4] + d[1][4];
    let div_j = d[0][5] + d[1][5];
    let drho = d[0][3] + d[1][3];
    let rho_alpha = pow_sixth(rho);
    let sum_sq = d[0][0] * d[0][0] + d[1][0] * d[1][0];
    // alpha sum_q rho_q^2 / rho, 0 where the density vanishes.
    let sq_over_rho = if rho > 0.0 { sum_sq / rho } else { 0.0 };
    let hb = c.hb * (1.0 - 1.0 / a);
    let mut out = [[0.0; 3]; SPECIES];
    for (s, f) in out.iter_mut().enumerate() {
        let dq = &d[s];
        let b_q = hb + c.b0 * rho + c.b1 * dq[0];
        let mut u_q = c.c0a * rho - c.c0b * dq[0]
            + rho_alpha * (c.c3a * rho - c.c3b * (2.0 * dq[0] + c.alpha * sq_over_rho))
            + c.b0 * tau
            + c.b1 * dq[1]
            - 2.0 * c.d0 * lap
            - 2.0 * c.d1 * dq[4]
            - c.w0_half * (div_j + dq[5]);
        if s == 1 {
            u_q += v_coul - c.slater * dq[0].cbrt();
        }
        let w_q = c.w0_half * (drho + dq[3]);
        *f = [b_q, u_q, w_q];
    }
    out
}

/// One thread's work: the four weighted factors of both species at point `q` of nucleus `i`.
pub fn fields_point(
    c: &Coefficients,
    lay: &Layout,
    tab: &Tables,
    dens: &Densities,
    v_coul: &[f64],
    i: usize,
    q: usize,
) -> [[f64; 4]; SPECIES] {
    let grid = tab.grid;
    let d = [
        dens.at(i * SPECIES * grid + q),
        dens.at((i * SPECIES + 1) * grid + q),
    ];
    let mf = mean_fields(c, lay.mass_number[i], &d, v_coul[i * grid + q]);
    weighted(mf, lay.osc_length[i], tab.x[q], tab.w[q])
}

/// Folds B, U, W with the weight `w` at x (oscillator length `b`) into f_b, f_l, f_u, f_w.
pub fn weighted(mf: [[f64; 3]; SPECIES], b: f64, x: f64, w: f64) -> [[f64; 4]; SPECIES] {
    mf.map(|[bq, uq, wq]| {
        let fb = w * bq / (b * b);
        [fb, fb / (x * x), w * uq, w * wq / (b * x)]
    })
}

/// Fields of the whole batch (parallel over nuclei).
pub fn compute(
    c: &Coefficients,
    lay: &Layout,
    tab: &Tables,
    dens: &Densities,
    v_coul: &[f64],
    out: &mut Fields,
) {
    let grid = tab.grid;
    let chunk = SPECIES * grid;
    let Fields { f_b, f_l, f_u, f_w } = out;
    (
        f_b.par_chunks_mut(chunk),
        f_l.par_chunks_mut(chunk),
        f_u.par_chunks_mut(chunk),
        f_w.par_chunks_mut(chunk),
    )
        .into_par_iter()
        .enumerate()
        .for_each(|(i, (fb, fl, fu, fw))| {
            for q in 0..grid {
                let f = fields_point(c, lay, tab, dens, v_coul, i, q);
                for (s, v) in f.iter().enumerate() {
                    let at = s * grid + q;
                    fb[at] = v[0];
                    fl[at] = v[1];
                    fu[at] = v[2];
                    fw[at] = v[3];
                }
            }
        });
}
