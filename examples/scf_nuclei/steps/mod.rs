//! The steps of one self-consistent iteration, each a function over the flat arrays of the
//! WHOLE batch (layouts in layout.rs). Each step is split into a per-work-item body (a plain
//! function of its indices: one GPU thread's work) and a batch driver that runs the bodies in
//! parallel over nuclei with rayon. The bodies use only arithmetic, sqrt and cbrt, so CUDA C
//! and WGSL ports are line-for-line translations.
//!
//! | step | body (one thread) | reads | writes |
//! |---|---|---|---|
//! | `woods_saxon::start_fields` | (nucleus, species, q) | layout, tables | f_b, f_l, f_u, f_w |
//! | `hamiltonian::build` | (block, row, col) | f_b, f_l, f_u, f_w, tables | h |
//! | eigh (the crate) | block | h | energies, vecs |
//! | `bcs::occupations` | (nucleus, species) | energies | v2, delta, lambda |
//! | `densities::compute` | (nucleus, q), both species | vecs, v2, tables | rho, tau, sj, drho, lap_rho, div_j |
//! | `mixing::mix` | element | new and old densities | old densities |
//! | `coulomb::potential` | (nucleus, q) | rho (protons), tables.cum | v_coul |
//! | `fields::compute` | (nucleus, q), both species | densities, v_coul | f_b, f_l, f_u, f_w |
//! | `energy::per_nucleus` | nucleus | densities, v_coul, delta | energy parts |

// The bodies index arrays the way their CUDA and WGSL ports will, so index loops stay.
#![allow(clippy::needless_range_loop)]

pub mod bcs;
pub mod coulomb;
pub mod densities;
pub mod energy;
pub mod fields;
pub mod hamiltonian;
pub mod mixing;
pub mod woods_saxon;

pub use densities::Densities;
pub use fields::Fields;

/// 1 / (4 pi).
pub const INV_4PI: f64 = 0.25 / std::f64::consts::PI;
