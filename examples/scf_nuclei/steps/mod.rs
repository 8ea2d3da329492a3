//! The steps of one self-consistent iteration, each a function over the flat arrays of the
//! WHOLE batch (layouts in layout.rs). Each step is split into a body (a plain function of its
//! indices: one GPU thread's work) and a batch driver that runs the bodies in parallel over
//! nuclei with rayon. The bodies of the loop use only arithmetic, sqrt and cbrt (rho^(1/6) =
//! sqrt(cbrt(rho))), so CUDA C and WGSL ports are line-for-line translations; only the
//! Woods-Saxon start, run once, calls exp.
//!
//! | step (batch driver) | body: one thread's work | reads | writes |
//! |---|---|---|---|
//! | `woods_saxon::start_fields` | `start_point` + `fields::weighted`: (nucleus, q), both species | layout, x, w | f_b, f_l, f_u, f_w |
//! | `hamiltonian::build` | `element`: (block, row, col); the CPU runs `element_pair`, both j of one l | f_b, f_l, f_u, f_w, u, g | h |
//! | eigh (the crate, `EighSpec::ragged(sizes).with_vectors(true)`) | block | h | energies, vecs |
//! | `bcs::occupations` | `solve`: (nucleus, species) | energies, state_deg, particles, delta (previous, as a start) | v2, delta, lambda |
//! | `densities::compute` | `density_point`: (nucleus, q), both species | vecs, v2, u, g, d2u | rho, tau, sj, drho, lap_rho, div_j |
//! | max-diff (the crate, `Reducer`, `ReduceOp::MaxAbsDiff`) | - | rho new, rho mixed | one scalar |
//! | `mixing::mix` | `mix_one`: element | new and mixed densities | mixed densities |
//! | `coulomb::potential` | `potential_point`: (nucleus, q) | rho (protons), x, w, cum | v_coul |
//! | `fields::compute` | `fields_point` (`mean_fields` + `weighted`): (nucleus, q), both species | mixed densities, v_coul | f_b, f_l, f_u, f_w |
//! | `energy::per_nucleus` (after the loop) | `nucleus_energy`: nucleus | new densities, v_coul, delta | energy parts |

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
