//! Densities of both species on the radial grid from the eigenvectors and BCS occupations.
//!
//! For orbitals psi_k = (u_k(r)/r) [Y_l x chi]_jm with occupation v_k^2, summed over m
//! (the spherical forms of Vautherin & Brink, Phys. Rev. C 5 (1972) 626):
//! ```text
//! rho   = sum_k (2j+1) v^2 u^2 / (4 pi r^2)
//! tau   = sum_k (2j+1) v^2 [g^2 + l(l+1) u^2 / r^2] / (4 pi r^2),   g = u' - u/r
//! J     = sum_k (2j+1) v^2 (l.sigma) u^2 / (4 pi r^3)                (radial component)
//! rho'  = sum_k (2j+1) v^2 2 u g / (4 pi r^2)
//! lap rho = sum_k (2j+1) v^2 (2 g^2 + 2 u u'') / (4 pi r^2)
//! div J = sum_k (2j+1) v^2 (l.sigma) (2 u g / r^3 + u^2 / r^4) / (4 pi)
//! ```
//! with u_k = sum_a V_ak u_a over the block's oscillator functions. Units: rho fm^-3, tau and
//! lap rho fm^-5, J and rho' fm^-4, div J fm^-5.

use rayon::prelude::*;

use super::INV_4PI;
use crate::layout::{l_dot_sigma, Layout, SPECIES};
use crate::tables::Tables;

/// Number of density arrays.
pub const QUANTITIES: usize = 6;

/// The densities of every nucleus, species and grid point, one array per quantity, each laid
/// out `(i * 2 + s) * grid + q`.
#[derive(Debug, Clone, PartialEq)]
pub struct Densities {
    /// rho, fm^-3.
    pub rho: Vec<f64>,
    /// tau (kinetic), fm^-5.
    pub tau: Vec<f64>,
    /// J (spin-orbit, radial component), fm^-4.
    pub sj: Vec<f64>,
    /// d rho / dr, fm^-4.
    pub drho: Vec<f64>,
    /// Laplacian of rho, fm^-5.
    pub lap_rho: Vec<f64>,
    /// div J, fm^-5.
    pub div_j: Vec<f64>,
}

impl Densities {
    pub fn zeros(len: usize) -> Self {
        Self {
            rho: vec![0.0; len],
            tau: vec![0.0; len],
            sj: vec![0.0; len],
            drho: vec![0.0; len],
            lap_rho: vec![0.0; len],
            div_j: vec![0.0; len],
        }
    }

    /// The six arrays, in the order of [`density_point`]'s output.
    pub fn arrays(&self) -> [&Vec<f64>; QUANTITIES] {
        [
            &self.rho,
            &self.tau,
            &self.sj,
            &self.drho,
            &self.lap_rho,
            &self.div_j,
        ]
    }

    pub fn arrays_mut(&mut self) -> [&mut Vec<f64>; QUANTITIES] {
        [
            &mut self.rho,
            &mut self.tau,
            &mut self.sj,
            &mut self.drho,
            &mut self.lap_rho,
            &mut self.div_j,
        ]
    }

    /// The six values at flat index `at`.
    pub fn at(&self, at: usize) -> [f64; QUANTITIES] {
        self.arrays().map(|a| a[at])
    }

    /// Copies every array from `other` (same lengths; no allocation).
    pub fn copy_from(&mut self, other: &Densities) {
        for (dst, src) in self.arrays_mut().into_iter().zip(other.arrays()) {
            dst.copy_from_slice(src);
        }
    }
}

/// One thread's work: all six densities of both species at grid point `q` of nucleus `i`.
/// Returns `[species][quantity]` in the order rho, tau, J, rho', lap rho, div J.
pub fn density_point(
    lay: &Layout,
    tab: &Tables,
    vecs: &[f64],
    v2: &[f64],
    i: usize,
    q: usize,
) -> [[f64; QUANTITIES]; SPECIES] {
    let grid = tab.grid;
    let b = lay.osc_length[i];
    let r = b * tab.x[q];
    let mut out = [[0.0; QUANTITIES]; SPECIES];
    for (s, dens) in out.iter_mut().enumerate() {
        let ns = i * SPECIES + s;
        // Sums over occupied orbitals of (2j+1) v^2 times products of u, g = u' - u/x and u''
        // in x units.
        let (mut uu, mut gg, mut ll, mut so, mut ug, mut uu2, mut sog) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for blk in lay.ns_block_off[ns] as usize..lay.ns_block_off[ns + 1] as usize {
            let dim = lay.block_dim[blk] as usize;
            let l = lay.block_l[blk];
            let j2 = lay.block_j2[blk];
            let ls = l_dot_sigma(l, j2);
            let l_l1 = f64::from(l * (l + 1));
            let h0 = lay.block_h_off[blk] as usize;
            let w0 = lay.block_w_off[blk] as usize;
            let row0 = lay.block_row[blk] as usize;
            for c in 0..dim {
                let occ = v2[w0 + c];
                if occ == 0.0 {
                    continue;
                }
                let weight = f64::from(j2 + 1) * occ;
                let (mut pu, mut pg, mut p2) = (0.0, 0.0, 0.0);
                for a in 0..dim {
                    let coef = vecs[h0 + a * dim + c];
                    let at = (row0 + a) * grid + q;
                    pu += coef * tab.u[at];
                    pg += coef * tab.g[at];
                    p2 += coef * tab.d2u[at];
                }
                uu += weight * pu * pu;
                gg += weight * pg * pg;
                ll += weight * l_l1 * pu * pu;
                so += weight * ls * pu * pu;
                ug += weight * pu * pg;
                uu2 += weight * pu * p2;
                sog += weight * ls * pu * pg;
            }
        }
        // Back to r: u^2 -> u^2 / b, u g and u u'' pick up 1/b^2 and 1/b^3 (x derivatives).
        let (b2, b3) = (b * b, b * b * b);
        let r2 = r * r;
        let x2 = tab.x[q] * tab.x[q];
        *dens = [
            INV_4PI * uu / (b * r2),
            INV_4PI * (gg / b3 + ll / (b3 * x2)) / r2,
            INV_4PI * so / (b * r2 * r),
            INV_4PI * 2.0 * ug / (b2 * r2),
            INV_4PI * 2.0 * (gg + uu2) / (b3 * r2),
            INV_4PI * (2.0 * sog / (b2 * r2 * r) + so / (b * r2 * r2)),
        ];
    }
    out
}

/// All densities of the batch (parallel over nuclei).
pub fn compute(lay: &Layout, tab: &Tables, vecs: &[f64], v2: &[f64], out: &mut Densities) {
    let grid = tab.grid;
    let chunk = SPECIES * grid;
    let Densities {
        rho,
        tau,
        sj,
        drho,
        lap_rho,
        div_j,
    } = out;
    (
        rho.par_chunks_mut(chunk),
        tau.par_chunks_mut(chunk),
        sj.par_chunks_mut(chunk),
        drho.par_chunks_mut(chunk),
        lap_rho.par_chunks_mut(chunk),
        div_j.par_chunks_mut(chunk),
    )
        .into_par_iter()
        .enumerate()
        .for_each(|(i, (rho, tau, sj, drho, lap, divj))| {
            for q in 0..grid {
                let d = density_point(lay, tab, vecs, v2, i, q);
                for (s, v) in d.iter().enumerate() {
                    let at = s * grid + q;
                    rho[at] = v[0];
                    tau[at] = v[1];
                    sj[at] = v[2];
                    drho[at] = v[3];
                    lap[at] = v[4];
                    divj[at] = v[5];
                }
            }
        });
}
