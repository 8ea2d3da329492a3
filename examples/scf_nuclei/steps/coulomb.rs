//! Direct Coulomb potential of the proton point density.
//!
//! For a spherical density (Gauss's law):
//! V_C(r) = 4 pi e^2 [ (1/r) int_0^r rho_p(r') r'^2 dr' + int_r^inf rho_p(r') r' dr' ], MeV.
//! Both radial integrals use the plan-time spectral integration matrix `Tables::cum` on the
//! Gauss-Legendre grid (the integrands rho r^2 and rho r are smooth), so one grid point costs
//! O(grid) and the whole nucleus O(grid^2).

use rayon::prelude::*;

use crate::layout::{Layout, SPECIES};
use crate::tables::Tables;

/// One thread's work: V_C at grid point `q` of a nucleus with oscillator length `b` (fm),
/// whose proton density on the grid is `rho_p` (fm^-3, `grid` values). `e2` in MeV fm.
pub fn potential_point(tab: &Tables, rho_p: &[f64], b: f64, e2: f64, q: usize) -> f64 {
    let grid = tab.grid;
    let (mut inner, mut outer) = (0.0, 0.0);
    for p in 0..grid {
        let r = b * tab.x[p];
        let s = tab.cum[q * grid + p];
        inner += s * rho_p[p] * r * r;
        outer += (tab.w[p] - s) * rho_p[p] * r;
    }
    // dr = b dx.
    4.0 * std::f64::consts::PI * e2 * b * (inner / (b * tab.x[q]) + outer)
}

/// V_C for every nucleus (parallel over nuclei): `v_coul[i * grid + q]`.
pub fn potential(lay: &Layout, tab: &Tables, rho: &[f64], e2: f64, v_coul: &mut [f64]) {
    let grid = tab.grid;
    v_coul
        .par_chunks_mut(grid)
        .enumerate()
        .for_each(|(i, out)| {
            let rho_p = &rho[(i * SPECIES + 1) * grid..(i * SPECIES + 2) * grid];
            for (q, v) in out.iter_mut().enumerate() {
                *v = potential_point(tab, rho_p, lay.osc_length[i], e2, q);
            }
        });
}
