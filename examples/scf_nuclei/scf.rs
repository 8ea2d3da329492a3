//! The self-consistent loop, backend-independent: Woods-Saxon start, then per iteration
//! fields -> Hamiltonian -> eigh -> BCS -> densities -> max-diff + mixing, until
//! max |rho_new - rho| over every nucleus, species and grid point is below the tolerance.

use std::time::Instant;

use megabatch::Error;

use crate::runner::{Results, Runner};

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    pub max_iter: usize,
    /// On max |rho_new - rho|, fm^-3.
    pub tol: f64,
}

/// Seconds spent in each step, summed over the iterations (the start excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    pub fields: f64,
    pub hamiltonian: f64,
    pub eigh: f64,
    pub bcs: f64,
    pub densities: f64,
    pub mixing: f64,
}

impl StepTimes {
    pub fn total(&self) -> f64 {
        self.fields + self.hamiltonian + self.eigh + self.bcs + self.densities + self.mixing
    }

    /// (name, seconds) of each step, in loop order.
    pub fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("build fields", self.fields),
            ("build H", self.hamiltonian),
            ("eigh", self.eigh),
            ("BCS", self.bcs),
            ("densities", self.densities),
            ("mixing + max-diff", self.mixing),
        ]
    }
}

/// How the loop went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub iterations: usize,
    pub converged: bool,
    /// max |rho_new - rho| of each iteration.
    pub history: Vec<f64>,
    pub times: StepTimes,
    /// Seconds of the start (Woods-Saxon fields, first diagonalisation, first densities).
    pub start_seconds: f64,
    /// Seconds of the whole loop, iterations only.
    pub loop_seconds: f64,
    pub results: Results,
}

fn timed(acc: &mut f64, step: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    let t = Instant::now();
    step()?;
    *acc += t.elapsed().as_secs_f64();
    Ok(())
}

/// Runs the loop on `runner`.
pub fn run(runner: &mut dyn Runner, stop: Stop) -> Result<Outcome, Error> {
    let t0 = Instant::now();
    runner.start_fields()?;
    runner.build_hamiltonian()?;
    runner.eigh()?;
    runner.bcs()?;
    runner.densities()?;
    runner.mix(true)?;
    let start_seconds = t0.elapsed().as_secs_f64();

    let mut times = StepTimes::default();
    let mut history = Vec::with_capacity(stop.max_iter);
    let mut converged = false;
    let t1 = Instant::now();
    for _ in 0..stop.max_iter {
        timed(&mut times.fields, || runner.build_fields())?;
        timed(&mut times.hamiltonian, || runner.build_hamiltonian())?;
        timed(&mut times.eigh, || runner.eigh())?;
        timed(&mut times.bcs, || runner.bcs())?;
        timed(&mut times.densities, || runner.densities())?;
        let mut diff = f64::NAN;
        timed(&mut times.mixing, || {
            diff = runner.mix(false)?;
            Ok(())
        })?;
        history.push(diff);
        if diff < stop.tol {
            converged = true;
            break;
        }
    }
    let loop_seconds = t1.elapsed().as_secs_f64();
    Ok(Outcome {
        iterations: history.len(),
        converged,
        history,
        times,
        start_seconds,
        loop_seconds,
        results: runner.results()?,
    })
}
