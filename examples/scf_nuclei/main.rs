//! Self-consistent spherical Skyrme Hartree-Fock + BCS for every even-even nucleus of AME2012,
//! the whole table in one batch: every Hamiltonian block of every nucleus goes through ONE
//! ragged `eigh` per iteration, and ONE scalar (max |rho_new - rho| over all nuclei) decides
//! convergence.
//!
//! Physics (details and sources in each module):
//! - SLy4 (skyrme.rs): effective mass, spin-orbit with the J density, no J^2 terms, one-body
//!   c.m. correction hbar^2/2m (1 - 1/A), direct Coulomb of the proton point density plus
//!   Slater exchange; hbar^2/2m = 20.73553 MeV fm^2 and e^2 = 1.4399784 MeV fm.
//! - Spherical oscillator basis 2n + l <= N_max (default [`DEFAULT_N_MAX`]) with
//!   hbar omega = 41 A^(-1/3) MeV for both species, one block per (nucleus, species, l, j);
//!   matrix elements by Gauss-Legendre quadrature on 20 + 2 N_max points in x = r/b on
//!   [0, 7 + N_max/4] (layout.rs, tables.rs, steps/hamiltonian.rs).
//! - Constant-G BCS (steps/bcs.rs): G = [`G0`] / A MeV for both species, chosen so that
//!   open-shell gaps come out near 12/sqrt(A) MeV (120Sn: 1.18 MeV for 1.10; 62Ni 1.31 for
//!   1.52; 140Ce 1.01 for 1.01) while 16O, 40Ca, 48Ca, 132Sn and 208Pb stay unpaired (90Zr's
//!   Z = 40 subshell keeps 0.07 MeV); levels within [`WINDOW`] MeV of a reference
//!   Fermi energy pair (smooth edges, 0.5 MeV); lambda by bisection on the particle number;
//!   collapse to Delta = 0 (sharp or filling-approximation occupations) when the gap equation
//!   has no non-trivial solution; E_pair = -Delta^2 / G.
//! - Start: the Woods-Saxon field of `nuclear_shells`; linear mixing of the densities with
//!   beta = [`MIXING`]; stop when max |rho_new - rho| < tol (default [`TOL`] fm^-3).
//!
//! Run: `cargo run --release --example scf_nuclei -- [--n-max N] [--backend cpu|cuda|wgpu]
//! [--step-times | --graph] [--nuclei all|16O,40Ca,...] [--max-iter K] [--tol X]`
//! (`--backend cuda` needs `--features cuda`; `--step-times` finishes every device step before
//! the next, so the printed step times are the steps' own; `--graph` replays a CUDA graph of
//! the iteration: see runner.rs's `Schedule` and cuda.rs). With `--features wgpu`,
//! `--backend wgpu` runs the whole loop on the GPU through WGSL, one scalar read per
//! iteration (`--step-times` as for CUDA; no `--graph`): wgpu.rs.

#[allow(dead_code)] // binding energies only; the separation energies serve nuclear_shells
#[path = "../nuclear_common/ame.rs"]
mod ame;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
#[path = "../../tests/common/cxx.rs"]
mod cxx;
mod elements;
#[allow(dead_code)] // the closed-form kinetic energy serves nuclear_shells (and tests.rs)
#[path = "../nuclear_common/ho_basis.rs"]
mod ho_basis;
mod layout;
mod levels;
mod report;
mod runner;
mod scf;
mod skyrme;
mod steps;
mod tables;
#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "cuda"))]
mod tests_cuda;
#[cfg(all(test, feature = "cuda"))]
mod tests_emulated;
#[cfg(feature = "wgpu")]
mod wgpu;
#[allow(dead_code)] // the Woods-Saxon start uses the potential, not the constants
#[path = "../nuclear_common/woods_saxon.rs"]
mod woods_saxon;

use std::time::Instant;

use ame::MassTable;
use layout::{BasisSize, Layout};
use runner::{Problem, Schedule};
use skyrme::Skyrme;
use steps::bcs::Pairing;
use tables::Tables;

/// Default oscillator shells. At 16 the binding energies of 16O, 40Ca, 48Ca and 208Pb lie
/// within 0.02, 0.12, 0.17 and 1.4 MeV of the published SLy4 values (tests.rs; 12 shells: 0.06,
/// 0.30, 0.52 and 3.3 MeV), and the whole table takes seconds on 2 cores.
pub const DEFAULT_N_MAX: usize = 16;
/// Pairing strength G = G0 / A, MeV (both species).
pub const G0: f64 = 28.0;
/// Half-width of the pairing window around the reference Fermi energy, MeV.
pub const WINDOW: f64 = 6.0;
/// Linear mixing factor of the densities.
pub const MIXING: f64 = 0.4;
/// Default tolerance on max |rho_new - rho|, fm^-3.
pub const TOL: f64 = 1e-6;
/// Default iteration limit.
pub const MAX_ITER: usize = 300;

const USAGE: &str =
    "usage: scf_nuclei [--n-max N] [--backend cpu|cuda|wgpu] [--step-times | --graph] \
                     [--nuclei all|16O,40Ca,...] [--max-iter K] [--tol X]";

/// Command-line options.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    n_max: usize,
    backend: String,
    /// `--step-times` or `--graph` (at most one), else eager.
    schedule: Schedule,
    /// None: every even-even nucleus of AME2012.
    nuclei: Option<Vec<(u32, u32)>>,
    max_iter: usize,
    tol: f64,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        n_max: DEFAULT_N_MAX,
        backend: "cpu".into(),
        schedule: Schedule::Eager,
        nuclei: None,
        max_iter: MAX_ITER,
        tol: TOL,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--n-max" => o.n_max = value()?.parse().map_err(|e| format!("--n-max: {e}"))?,
            "--backend" => o.backend = value()?,
            "--step-times" | "--graph" => {
                if o.schedule != Schedule::Eager {
                    return Err("--step-times and --graph exclude each other".into());
                }
                o.schedule = if flag == "--graph" {
                    Schedule::Graph
                } else {
                    Schedule::StepTimes
                };
            }
            "--nuclei" => {
                let v = value()?;
                o.nuclei = if v == "all" {
                    None
                } else {
                    Some(
                        v.split(',')
                            .map(elements::parse)
                            .collect::<Result<_, _>>()?,
                    )
                };
            }
            "--max-iter" => {
                o.max_iter = value()?.parse().map_err(|e| format!("--max-iter: {e}"))?
            }
            "--tol" => o.tol = value()?.parse().map_err(|e| format!("--tol: {e}"))?,
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if o.tol.is_nan() || o.tol <= 0.0 {
        return Err("--tol must be > 0".into());
    }
    Ok(o)
}

/// Every even-even nucleus with measured mass in AME2012 (Z, N >= 2), in file order.
pub fn even_even(table: &MassTable) -> Vec<(u32, u32)> {
    table
        .nuclides()
        .iter()
        .copied()
        .filter(|&(z, n)| z >= 2 && n >= 2 && z % 2 == 0 && n % 2 == 0)
        .collect()
}

/// Nuclei must be even-even (BCS without blocking); the basis must hold every nucleus with
/// room to spare and fit the BCS step's arrays.
fn check_basis(nuclei: &[(u32, u32)], n_max: usize) -> Result<(), String> {
    if let Some(&(z, n)) = nuclei
        .iter()
        .find(|&&(z, n)| z % 2 == 1 || n % 2 == 1 || z < 2 || n < 2)
    {
        return Err(format!(
            "{}: only even-even nuclei with Z, N >= 2",
            elements::name(z, n)
        ));
    }
    if n_max > layout::max_shells() {
        return Err(format!("--n-max {n_max}: at most {}", layout::max_shells()));
    }
    let room = layout::capacity(n_max);
    match nuclei.iter().find(|&&(z, n)| z.max(n) as usize + 2 > room) {
        Some(&(z, n)) => Err(format!(
            "--n-max {n_max} holds {room} nucleons per species, too few for {}",
            elements::name(z, n)
        )),
        None => Ok(()),
    }
}

/// The problem for `nuclei` at `n_max` with this example's physics choices.
pub fn problem(nuclei: &[(u32, u32)], n_max: usize) -> Problem {
    let size = BasisSize::for_shells(n_max);
    Problem {
        layout: Layout::new(nuclei, size),
        tables: Tables::new(size),
        coefficients: Skyrme::SLY4.coefficients(),
        pairing: Pairing {
            g0: G0,
            window: WINDOW,
        },
        mixing: MIXING,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = parse_args(std::env::args().skip(1))?;
    let table = MassTable::ame2012();
    let nuclei = match &opts.nuclei {
        Some(list) => list.clone(),
        None => even_even(&table),
    };
    check_basis(&nuclei, opts.n_max)?;
    let t0 = Instant::now();
    let p = problem(&nuclei, opts.n_max);
    let mut runner = runner::make(&opts.backend, p.clone())?;
    runner.set_schedule(opts.schedule)?;
    let setup = t0.elapsed().as_secs_f64();
    let outcome = scf::run(
        runner.as_mut(),
        scf::Stop {
            max_iter: opts.max_iter,
            tol: opts.tol,
        },
    )?;
    report::print(&p, &table, runner.name(), setup, &outcome);
    for note in runner.notes() {
        println!("{note}");
    }
    Ok(())
}
