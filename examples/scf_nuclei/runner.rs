//! The step runner: one implementation per backend, each one file (`cpu.rs`, `cuda.rs` with
//! the feature `cuda`, `wgpu.rs` with the feature `wgpu`), joined by one line in [`RUNNERS`].
//!
//! A runner owns the batch's arrays where its backend keeps them (host vectors for the CPU,
//! device buffers for a GPU) and runs one step per call; the driver (scf.rs) calls the steps
//! in order and times each call, so a GPU runner that queues work asynchronously should
//! finish a step before returning when per-step times are wanted. From `start_fields` to
//! `results`, only [`Runner::mix`] returns data to the host: one scalar per iteration.

use megabatch::Error;

use crate::layout::Layout;
use crate::skyrme::Coefficients;
use crate::steps::bcs::Pairing;
use crate::steps::energy::EnergyParts;
use crate::tables::Tables;

/// Everything a runner needs to set up: the layout, the plan-time tables and the parameters.
#[derive(Debug, Clone)]
pub struct Problem {
    pub layout: Layout,
    pub tables: Tables,
    pub coefficients: Coefficients,
    pub pairing: Pairing,
    /// Linear mixing factor beta: rho <- rho + beta (rho_new - rho).
    pub mixing: f64,
}

/// What the driver reads back once the loop has ended (host copies).
#[derive(Debug, Clone)]
pub struct Results {
    /// Single-particle energies, MeV, in the state layout (layout.rs).
    pub energies: Vec<f64>,
    /// Occupations v^2, same layout.
    pub v2: Vec<f64>,
    /// Gaps and Fermi levels, MeV, `[i * 2 + s]`.
    pub delta: Vec<f64>,
    pub lambda: Vec<f64>,
    /// Energy of every nucleus from its last computed (unmixed) densities.
    pub energy: Vec<EnergyParts>,
    /// rho of the last computed densities, `(i * 2 + s) * grid + q`, fm^-3.
    pub rho: Vec<f64>,
}

/// How a runner schedules its device work (`--step-times`, `--graph`; the default `Eager`).
/// Host runners run every step to completion anyway, so the first two are the same there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Queue each step and return; the one scalar read per iteration is the only wait, so the
    /// per-step times of a device runner are mostly queueing times and the wait lands on the
    /// mixing step.
    #[default]
    Eager,
    /// As `Eager`, but finish every step before returning, so each step's time is its own.
    StepTimes,
    /// Replay a graph of the whole iteration (after one eager iteration): its time lands on
    /// the fields step (the replay) and the mixing step (the wait for the scalar).
    Graph,
}

/// The steps of the self-consistent loop (steps/mod.rs lists what each reads and writes).
pub trait Runner {
    /// Short name, as on the command line.
    fn name(&self) -> &'static str;
    /// Starting fields (Woods-Saxon) in place of `build_fields` for the first Hamiltonian.
    fn start_fields(&mut self) -> Result<(), Error>;
    /// Coulomb potential and mean fields from the mixed densities.
    fn build_fields(&mut self) -> Result<(), Error>;
    /// Every Hamiltonian block by quadrature.
    fn build_hamiltonian(&mut self) -> Result<(), Error>;
    /// ONE ragged eigh of every block of every nucleus, with eigenvectors.
    fn eigh(&mut self) -> Result<(), Error>;
    /// BCS occupations, gaps and Fermi levels.
    fn bcs(&mut self) -> Result<(), Error>;
    /// New densities from eigenvectors and occupations.
    fn densities(&mut self) -> Result<(), Error>;
    /// max |rho_new - rho_mixed| over the whole batch (the one scalar read back), then
    /// mixing of the new densities into the mixed ones; with `first`, the mixed densities are
    /// set to the new ones and the difference is +inf.
    fn mix(&mut self, first: bool) -> Result<f64, Error>;
    /// Energies from the last computed densities, and host copies of the results.
    fn results(&mut self) -> Result<Results, Error>;
    /// Chooses the schedule before the first step. Runners without device queues run every
    /// step to completion whatever the choice, and have no graphs.
    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), Error> {
        match schedule {
            Schedule::Eager | Schedule::StepTimes => Ok(()),
            Schedule::Graph => Err(Error::InvalidArgument(
                "this backend has no graph replay (--graph needs --backend cuda)",
            )),
        }
    }
    /// Lines the report prints after the timing: the device, the schedule, one-time costs.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A constructor of a backend's runner.
pub type MakeRunner = fn(Problem) -> Result<Box<dyn Runner>, Error>;

/// The registry: one line per backend (`--backend NAME`).
pub const RUNNERS: &[(&str, MakeRunner)] = &[
    ("cpu", crate::cpu::CpuRunner::boxed),
    #[cfg(feature = "cuda")]
    ("cuda", crate::cuda::CudaRunner::boxed),
    #[cfg(feature = "wgpu")]
    ("wgpu", crate::wgpu::WgpuRunner::boxed),
];

/// The runner called `name`.
pub fn make(name: &str, problem: Problem) -> Result<Box<dyn Runner>, String> {
    let names: Vec<&str> = RUNNERS.iter().map(|r| r.0).collect();
    let (_, make) = RUNNERS.iter().find(|r| r.0 == name).ok_or_else(|| {
        let cuda = if cfg!(feature = "cuda") {
            ""
        } else {
            " (cuda needs --features cuda)"
        };
        format!(
            "unknown backend {name:?}; available: {}{cuda}",
            names.join(", ")
        )
    })?;
    make(problem).map_err(|e| e.to_string())
}
