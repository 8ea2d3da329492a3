//! Hamiltonian blocks for every nuclide, one per (species, l, j), and the single-particle
//! levels read back from the batched eigenvalues.

use crate::ho_basis::HoBasis;
use crate::woods_saxon::{l_dot_s, Species, WoodsSaxon, HBAR_C};

/// hbar omega = 41 A^(-1/3) MeV (Bohr & Mottelson eq. 2-157).
pub fn hbar_omega(a: u32) -> f64 {
    41.0 / f64::from(a).cbrt()
}

/// What one Hamiltonian block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLabel {
    pub nuclide: usize,
    pub species: Species,
    pub l: usize,
    /// 2j.
    pub j2: usize,
}

/// A single-particle level: spectroscopic label n l j and energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Radial quantum number counted from 1 (1s, 2s, ...).
    pub n: usize,
    pub l: usize,
    pub j2: usize,
    /// MeV.
    pub energy: f64,
}

impl Level {
    pub fn label(&self) -> String {
        const L: &[u8] = b"spdfghijklmnoqrtuvwxyz";
        let letter = L.get(self.l).map_or('?', |&c| c as char);
        format!("{}{}{}/2", self.n, letter, self.j2)
    }

    /// Occupancy 2j + 1.
    pub fn capacity(&self) -> usize {
        self.j2 + 1
    }
}

/// Appends the (species, l, j) blocks of nucleus (z, n) to `out` (row-major, full symmetric)
/// and their labels to `labels`, in the order l = 0..=N_max, j = l + 1/2 then l - 1/2.
pub fn push_blocks(
    basis: &HoBasis,
    nuclide: usize,
    (z, n): (u32, u32),
    species: Species,
    out: &mut Vec<f64>,
    sizes: &mut Vec<usize>,
    labels: &mut Vec<BlockLabel>,
) {
    let ws = WoodsSaxon::bohr_mottelson(z, n, species);
    push_blocks_for(
        basis,
        nuclide,
        z + n,
        species,
        |r| ws.central(r),
        |r| ws.spin_orbit(r),
        out,
        sizes,
        labels,
    );
}

/// As [`push_blocks`] for any central and spin-orbit radial potentials (MeV, r in fm).
#[allow(clippy::too_many_arguments)]
pub fn push_blocks_for(
    basis: &HoBasis,
    nuclide: usize,
    mass_number: u32,
    species: Species,
    central: impl Fn(f64) -> f64,
    spin_orbit: impl Fn(f64) -> f64,
    out: &mut Vec<f64>,
    sizes: &mut Vec<usize>,
    labels: &mut Vec<BlockLabel>,
) {
    let hw = hbar_omega(mass_number);
    let b = HBAR_C / (species.mass() * hw).sqrt();
    let wc: Vec<f64> = basis
        .nodes
        .iter()
        .zip(&basis.weights)
        .map(|(&x, &w)| w * central(b * x))
        .collect();
    let wso: Vec<f64> = basis
        .nodes
        .iter()
        .zip(&basis.weights)
        .map(|(&x, &w)| w * spin_orbit(b * x))
        .collect();
    let mut vc = Vec::new();
    let mut vso = Vec::new();
    for l in 0..=basis.n_max {
        let m = basis.dim(l);
        vc.clear();
        vso.clear();
        for row in 0..m {
            for col in 0..m {
                let (ur, uc) = (basis.u(row, l), basis.u(col, l));
                vc.push(
                    ur.iter()
                        .zip(uc)
                        .zip(&wc)
                        .map(|((a, b), w)| a * b * w)
                        .sum::<f64>(),
                );
                vso.push(if l == 0 {
                    0.0
                } else {
                    ur.iter()
                        .zip(uc)
                        .zip(&wso)
                        .map(|((a, b), w)| a * b * w)
                        .sum::<f64>()
                });
            }
        }
        let j_values: &[usize] = if l == 0 {
            &[1]
        } else {
            &[2 * l + 1, 2 * l - 1]
        };
        for &j2 in j_values {
            let ls = l_dot_s(l, j2);
            for row in 0..m {
                for col in 0..m {
                    out.push(
                        hw * HoBasis::kinetic(row, col, l)
                            + vc[row * m + col]
                            + ls * vso[row * m + col],
                    );
                }
            }
            sizes.push(m);
            labels.push(BlockLabel {
                nuclide,
                species,
                l,
                j2,
            });
        }
    }
}

/// Levels of one (nuclide, species) from its blocks' eigenvalues, ascending in energy.
pub fn levels(blocks: &[(BlockLabel, &[f64])]) -> Vec<Level> {
    let mut out: Vec<Level> = blocks
        .iter()
        .flat_map(|(label, w)| {
            w.iter().enumerate().map(|(k, &energy)| Level {
                n: k + 1,
                l: label.l,
                j2: label.j2,
                energy,
            })
        })
        .collect();
    out.sort_by(|a, b| a.energy.total_cmp(&b.energy));
    out
}

/// Index of the level that holds the `particles`-th nucleon when levels fill from the bottom,
/// or `None` for zero particles.
pub fn last_filled(levels: &[Level], particles: usize) -> Option<usize> {
    let mut filled = 0;
    for (i, level) in levels.iter().enumerate() {
        filled += level.capacity();
        if filled >= particles && particles > 0 {
            return Some(i);
        }
    }
    None
}
