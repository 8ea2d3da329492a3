//! Hamiltonian blocks by quadrature: for block (nucleus i, species s, l, j) and oscillator
//! functions a = (n_a, l), b = (n_b, l),
//! ```text
//! H_ab = int dr { B(r) [g_a g_b + l(l+1)/r^2 u_a u_b] + [U(r) + l.sigma W(r)/r] u_a u_b }
//! ```
//! (g = u' - u/r; B [g_a g_b + l(l+1) u_a u_b / r^2] is B grad(phi_a).grad(phi_b) integrated
//! over angles, so the effective-mass term is symmetric as written), in MeV, evaluated as
//! sum_q { f_b g_a g_b + [l(l+1) f_l + f_u + l.sigma f_w] u_a u_b } with the weighted fields of
//! fields.rs. Every element of every block is written (both triangles; eigh reads the lower).

use rayon::prelude::*;

use super::fields::Fields;
use crate::layout::{l_dot_sigma, Layout, SPECIES};
use crate::tables::Tables;

/// One thread's work: element (r, c) of block `blk`.
pub fn element(lay: &Layout, tab: &Tables, f: &Fields, blk: usize, r: usize, c: usize) -> f64 {
    let grid = tab.grid;
    let i = lay.block_nucleus[blk] as usize;
    let s = lay.block_species[blk] as usize;
    let l = lay.block_l[blk];
    let ls = l_dot_sigma(l, lay.block_j2[blk]);
    let l_l1 = f64::from(l * (l + 1));
    let row0 = lay.block_row[blk] as usize;
    let (ra, rb) = ((row0 + r) * grid, (row0 + c) * grid);
    let f0 = (i * SPECIES + s) * grid;
    let (fb, fl) = (&f.f_b[f0..f0 + grid], &f.f_l[f0..f0 + grid]);
    let (fu, fw) = (&f.f_u[f0..f0 + grid], &f.f_w[f0..f0 + grid]);
    let (ga, gb) = (&tab.g[ra..ra + grid], &tab.g[rb..rb + grid]);
    let (ua, ub) = (&tab.u[ra..ra + grid], &tab.u[rb..rb + grid]);
    let mut sum = 0.0;
    for q in 0..grid {
        let local = l_l1 * fl[q] + fu[q] + ls * fw[q];
        sum += fb[q] * ga[q] * gb[q] + local * ua[q] * ub[q];
    }
    sum
}

/// Element (r, c) of the two blocks `blk` (j = l + 1/2) and `blk + 1` (j = l - 1/2) of one l:
/// the same integrals but for the spin-orbit sign, so the CPU computes them together.
pub fn element_pair(
    lay: &Layout,
    tab: &Tables,
    f: &Fields,
    blk: usize,
    r: usize,
    c: usize,
) -> (f64, f64) {
    let grid = tab.grid;
    let i = lay.block_nucleus[blk] as usize;
    let s = lay.block_species[blk] as usize;
    let l = lay.block_l[blk];
    let l_l1 = f64::from(l * (l + 1));
    let row0 = lay.block_row[blk] as usize;
    let (ra, rb) = ((row0 + r) * grid, (row0 + c) * grid);
    let f0 = (i * SPECIES + s) * grid;
    let (fb, fl) = (&f.f_b[f0..f0 + grid], &f.f_l[f0..f0 + grid]);
    let (fu, fw) = (&f.f_u[f0..f0 + grid], &f.f_w[f0..f0 + grid]);
    let (ga, gb) = (&tab.g[ra..ra + grid], &tab.g[rb..rb + grid]);
    let (ua, ub) = (&tab.u[ra..ra + grid], &tab.u[rb..rb + grid]);
    let (mut common, mut so) = (0.0, 0.0);
    for q in 0..grid {
        let uu = ua[q] * ub[q];
        common += fb[q] * ga[q] * gb[q] + (l_l1 * fl[q] + fu[q]) * uu;
        so += fw[q] * uu;
    }
    // l.sigma = l for j = l + 1/2, -(l + 1) for j = l - 1/2.
    let l = f64::from(l);
    (common + l * so, common - (l + 1.0) * so)
}

/// Every block of the batch (parallel over nuclei; each nucleus's blocks are one contiguous
/// range of `h`). The CPU computes the two j blocks of each l together ([`element_pair`]).
pub fn build(lay: &Layout, tab: &Tables, f: &Fields, h: &mut [f64]) {
    let per = lay.h_per_nucleus();
    let blocks = lay.blocks_per_nucleus();
    h.par_chunks_mut(per).enumerate().for_each(|(i, hi)| {
        let base = lay.block_h_off[i * blocks] as usize;
        let mut blk = i * blocks;
        while blk < (i + 1) * blocks {
            let dim = lay.block_dim[blk] as usize;
            let off = lay.block_h_off[blk] as usize - base;
            let paired = blk + 1 < (i + 1) * blocks
                && lay.block_l[blk] > 0
                && lay.block_l[blk + 1] == lay.block_l[blk];
            let off2 = if paired {
                lay.block_h_off[blk + 1] as usize - base
            } else {
                0
            };
            for r in 0..dim {
                for c in 0..=r {
                    if paired {
                        let (v1, v2) = element_pair(lay, tab, f, blk, r, c);
                        hi[off + r * dim + c] = v1;
                        hi[off + c * dim + r] = v1;
                        hi[off2 + r * dim + c] = v2;
                        hi[off2 + c * dim + r] = v2;
                    } else {
                        let v = element(lay, tab, f, blk, r, c);
                        hi[off + r * dim + c] = v;
                        hi[off + c * dim + r] = v;
                    }
                }
            }
            blk += if paired { 2 } else { 1 };
        }
    });
}
