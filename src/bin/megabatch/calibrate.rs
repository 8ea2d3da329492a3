//! `megabatch calibrate`: measure, save, print the crossover table.

use std::path::PathBuf;
use std::time::Instant;

use megabatch::{default_calibration_path, save_calibration, Auto, CalibrationOptions};

use crate::{crossover, CliError, CliResult, Format};

pub fn run(quick: bool, out: Option<PathBuf>, format: Format) -> CliResult {
    let mut auto = Auto::new()?;
    let start = Instant::now();
    auto.calibrate(CalibrationOptions { quick })?;
    let seconds = start.elapsed().as_secs_f64();
    let path = out
        .or_else(|| default_calibration_path(&auto.machine_key()))
        .ok_or_else(|| CliError::Usage("no cache directory: pass --out".into()))?;
    save_calibration(auto.model(), &path)?;
    eprintln!(
        "calibrated {} in {seconds:.2} s; saved to {}",
        auto.machine_key(),
        path.display()
    );
    if auto.backends().len() == 1 {
        eprintln!("no GPU backend present: every operation runs on the CPU");
    }
    crossover::table(&auto).print(format)
}
