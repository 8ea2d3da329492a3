//! The starting point: the Woods-Saxon mean field of `nuclear_shells` (Bohr & Mottelson
//! parameters, spin-orbit, Coulomb of a uniform sphere for protons) written as weighted fields,
//! so the first Hamiltonian goes through the same quadrature step as every later one. The
//! effective mass is the bare one with the c.m. factor, hb (1 - 1/A).

use rayon::prelude::*;

use super::fields::{weighted, Fields};
use crate::layout::{Layout, SPECIES};
use crate::skyrme::HBAR2_2M;
use crate::tables::Tables;
use crate::woods_saxon::{Species, WoodsSaxon};

/// One thread's work: B, U, W of species `s` of nucleus `i` at r (fm). WoodsSaxon's spin-orbit
/// factor multiplies l.s = l.sigma / 2, so W / r is half of it.
pub fn start_point(lay: &Layout, i: usize, s: usize, r: f64) -> [f64; 3] {
    let (z, n) = lay.nuclei[i];
    let species = [Species::Neutron, Species::Proton][s];
    let ws = WoodsSaxon::bohr_mottelson(z, n, species);
    let hb = HBAR2_2M * (1.0 - 1.0 / lay.mass_number[i]);
    [hb, ws.central(r), 0.5 * r * ws.spin_orbit(r)]
}

/// Woods-Saxon fields for every nucleus (parallel over nuclei).
pub fn start_fields(lay: &Layout, tab: &Tables, out: &mut Fields) {
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
            let b = lay.osc_length[i];
            for q in 0..grid {
                let r = b * tab.x[q];
                let mf = [start_point(lay, i, 0, r), start_point(lay, i, 1, r)];
                let f = weighted(mf, b, tab.x[q], tab.w[q]);
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
