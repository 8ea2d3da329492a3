//! Where everything lives: the flat arrays every step reads and writes, for the whole batch of
//! nuclei at once. This is the one place the layouts are defined; the CPU steps in `steps/`
//! and any GPU kernels index them the same way.
//!
//! Indices: `i` nucleus (0..nuclei), `s` species (0 = neutrons, 1 = protons), `q` grid point
//! (0..grid), `b` block (one per nucleus, species, l, j; 0..blocks), `k` state (eigenvalue
//! slot; 0..states), `row` radial basis function (0..basis_rows).
//!
//! | array | length | element | index |
//! |---|---|---|---|
//! | densities `rho`, `tau`, `sj`, `drho`, `lap_rho`, `div_j` (steps/densities.rs) | nuclei * 2 * grid | f64 | `(i * 2 + s) * grid + q` |
//! | weighted fields `f_b`, `f_l`, `f_u`, `f_w` (steps/fields.rs) | nuclei * 2 * grid | f64 | `(i * 2 + s) * grid + q` |
//! | Coulomb potential `v_coul` | nuclei * grid | f64 | `i * grid + q` |
//! | Hamiltonian `h`, eigenvectors `vecs` (ragged, row-major per block, as `EighSpec::ragged`) | h_len | f64 | `block_h_off[b] + r * dim + c` (`vecs`: component r of eigenvector c) |
//! | eigenvalues `energies`, occupations `v2` | states | f64 | `block_w_off[b] + c` = k |
//! | gap `delta`, Fermi level `lambda` | nuclei * 2 | f64 | `i * 2 + s` |
//! | basis tables `u`, `g`, `d2u` (tables.rs, x units) | basis_rows * grid | f64 | `row * grid + q` |
//! | grid `x`, weights `w` (tables.rs) | grid | f64 | `q` |
//! | integration matrix `cum` (tables.rs) | grid * grid | f64 | `q * grid + p` |
//!
//! Index tables (all nuclei):
//! - per block, u32: `block_nucleus`, `block_species`, `block_l`, `block_j2` (2j), `block_dim`,
//!   `block_h_off`, `block_w_off`, `block_row` (the basis row of n = 0 for the block's l;
//!   rows are ordered by l, then n);
//! - per (nucleus, species) `ns = i * 2 + s`, u32, length nuclei * 2 + 1: blocks
//!   `ns_block_off[ns]..ns_block_off[ns + 1]`, states `ns_state_off[ns]..ns_state_off[ns + 1]`;
//! - per state: `state_block[k]` (u32) and `state_deg[k]` (f64, 2j + 1);
//! - per nucleus: `mass_number`, `osc_length` (b, fm; f64); per (nucleus, species):
//!   `particles` (f64: N, then Z).
//!
//! Every nucleus has the same blocks (all l <= N_max, j = l + 1/2 then l - 1/2, as
//! `nuclear_shells` orders them), so each nucleus's share of `h`, `energies` and the per-grid
//! arrays is one contiguous range of the same length: the CPU steps split them per nucleus.
//! Units: lengths in fm, energies in MeV, densities in fm^-3 (tau, lap rho, div J fm^-5; J and
//! rho' fm^-4).

use crate::skyrme::HBAR2_2M;

/// Neutrons, then protons.
pub const SPECIES: usize = 2;

/// Oscillator shells and radial grid of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BasisSize {
    /// Oscillator shells 2n + l <= n_max.
    pub n_max: usize,
    /// Gauss-Legendre points in x = r / b.
    pub grid: usize,
    /// Upper end of the grid in x.
    pub x_max: f64,
}

impl BasisSize {
    /// The grid chosen for `n_max`: 20 + 2 n_max points on [0, 7 + n_max / 4] in x, where every
    /// oscillator function of the basis is below 1e-10 at the end. The grid test in tests.rs
    /// checks binding energies change by less than 1 keV with 50% more points.
    pub fn for_shells(n_max: usize) -> Self {
        Self {
            n_max,
            grid: 20 + 2 * n_max,
            x_max: 7.0 + n_max as f64 / 4.0,
        }
    }
}

/// hbar omega = 41 A^(-1/3) MeV (Bohr & Mottelson eq. 2-157), the same for both species.
pub fn hbar_omega(mass_number: f64) -> f64 {
    41.0 / mass_number.cbrt()
}

/// Oscillator length b = sqrt(hbar^2 / (m hbar omega)) = sqrt(2 (hbar^2/2m) / hbar omega), fm.
pub fn oscillator_length(mass_number: f64) -> f64 {
    (2.0 * HBAR2_2M / hbar_omega(mass_number)).sqrt()
}

/// Number of radial functions with angular momentum l: n = 0..=(n_max - l) / 2.
pub fn dim(n_max: usize, l: usize) -> usize {
    (n_max - l) / 2 + 1
}

/// Nucleons of one species the shells 2n + l <= n_max hold: (n_max + 1)(n_max + 2)(n_max + 3) / 3.
pub fn capacity(n_max: usize) -> usize {
    (n_max + 1) * (n_max + 2) * (n_max + 3) / 3
}

/// Largest n_max whose states per species fit the BCS step's arrays.
pub fn max_shells() -> usize {
    (0..)
        .take_while(|&n| row_of(n, n) * 2 < crate::steps::bcs::MAX_STATES)
        .last()
        .unwrap_or(0)
}

/// First basis-table row of angular momentum l (rows are ordered by l, then n).
pub fn row_of(n_max: usize, l: usize) -> usize {
    (0..l).map(|k| dim(n_max, k)).sum()
}

/// l.sigma = j(j+1) - l(l+1) - 3/4 in units of hbar: l for j = l + 1/2, -(l + 1) for l - 1/2.
pub fn l_dot_sigma(l: u32, j2: u32) -> f64 {
    if j2 > 2 * l {
        f64::from(l)
    } else {
        -f64::from(l + 1)
    }
}

/// The batch's sizes, offsets and index tables (see the module docs).
#[derive(Debug, Clone)]
pub struct Layout {
    pub basis: BasisSize,
    /// (Z, N) of each nucleus.
    pub nuclei: Vec<(u32, u32)>,
    pub mass_number: Vec<f64>,
    /// Oscillator length b per nucleus, fm.
    pub osc_length: Vec<f64>,
    /// Neutron and proton numbers, `[i * 2 + s]`.
    pub particles: Vec<f64>,
    pub block_nucleus: Vec<u32>,
    pub block_species: Vec<u32>,
    pub block_l: Vec<u32>,
    pub block_j2: Vec<u32>,
    pub block_dim: Vec<u32>,
    pub block_h_off: Vec<u32>,
    pub block_w_off: Vec<u32>,
    pub block_row: Vec<u32>,
    pub ns_block_off: Vec<u32>,
    pub ns_state_off: Vec<u32>,
    pub state_block: Vec<u32>,
    /// 2j + 1 of each state.
    pub state_deg: Vec<f64>,
    /// Total length of `h` and `vecs`.
    pub h_len: usize,
    /// Number of states (eigenvalues).
    pub states: usize,
    /// Number of basis-table rows (radial functions).
    pub basis_rows: usize,
}

impl Layout {
    pub fn new(nuclei: &[(u32, u32)], basis: BasisSize) -> Self {
        let n_max = basis.n_max;
        let mut lay = Layout {
            basis,
            nuclei: nuclei.to_vec(),
            mass_number: nuclei.iter().map(|&(z, n)| f64::from(z + n)).collect(),
            osc_length: nuclei
                .iter()
                .map(|&(z, n)| oscillator_length(f64::from(z + n)))
                .collect(),
            particles: nuclei
                .iter()
                .flat_map(|&(z, n)| [f64::from(n), f64::from(z)])
                .collect(),
            block_nucleus: Vec::new(),
            block_species: Vec::new(),
            block_l: Vec::new(),
            block_j2: Vec::new(),
            block_dim: Vec::new(),
            block_h_off: Vec::new(),
            block_w_off: Vec::new(),
            block_row: Vec::new(),
            ns_block_off: vec![0],
            ns_state_off: vec![0],
            state_block: Vec::new(),
            state_deg: Vec::new(),
            h_len: 0,
            states: 0,
            basis_rows: row_of(n_max, n_max) + 1,
        };
        for i in 0..nuclei.len() {
            for s in 0..SPECIES {
                for l in 0..=n_max {
                    let j2s: &[usize] = if l == 0 {
                        &[1]
                    } else {
                        &[2 * l + 1, 2 * l - 1]
                    };
                    for &j2 in j2s {
                        let d = dim(n_max, l);
                        let b = lay.block_l.len() as u32;
                        lay.block_nucleus.push(i as u32);
                        lay.block_species.push(s as u32);
                        lay.block_l.push(l as u32);
                        lay.block_j2.push(j2 as u32);
                        lay.block_dim.push(d as u32);
                        lay.block_h_off.push(lay.h_len as u32);
                        lay.block_w_off.push(lay.states as u32);
                        lay.block_row.push(row_of(n_max, l) as u32);
                        lay.state_block.extend(std::iter::repeat_n(b, d));
                        lay.state_deg
                            .extend(std::iter::repeat_n((j2 + 1) as f64, d));
                        lay.h_len += d * d;
                        lay.states += d;
                    }
                }
                lay.ns_block_off.push(lay.block_l.len() as u32);
                lay.ns_state_off.push(lay.states as u32);
            }
        }
        assert!(
            u32::try_from(lay.h_len).is_ok(),
            "batch too large for u32 offsets"
        );
        assert!(
            lay.states_per_species() <= crate::steps::bcs::MAX_STATES,
            "n_max too large for the BCS step's per-thread arrays"
        );
        lay
    }

    pub fn nuclei_count(&self) -> usize {
        self.nuclei.len()
    }

    pub fn grid(&self) -> usize {
        self.basis.grid
    }

    pub fn blocks(&self) -> usize {
        self.block_l.len()
    }

    /// Block orders, for `EighSpec::ragged`.
    pub fn block_sizes(&self) -> Vec<usize> {
        self.block_dim.iter().map(|&d| d as usize).collect()
    }

    /// Length of every per-grid array (nuclei * 2 * grid).
    pub fn grid_len(&self) -> usize {
        self.nuclei.len() * SPECIES * self.basis.grid
    }

    /// Blocks, `h` entries and states of one nucleus (the same for every nucleus).
    pub fn blocks_per_nucleus(&self) -> usize {
        self.blocks() / self.nuclei.len().max(1)
    }

    pub fn h_per_nucleus(&self) -> usize {
        self.h_len / self.nuclei.len().max(1)
    }

    /// States of one (nucleus, species).
    pub fn states_per_species(&self) -> usize {
        self.states_per_nucleus() / SPECIES
    }

    pub fn states_per_nucleus(&self) -> usize {
        self.states / self.nuclei.len().max(1)
    }

    /// Index of nucleus (z, n) in the batch.
    pub fn find(&self, z: u32, n: u32) -> Option<usize> {
        self.nuclei.iter().position(|&x| x == (z, n))
    }
}
