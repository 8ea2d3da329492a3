//! `megabatch calibrate`: measure, save, print the crossover table.

use std::path::PathBuf;
use std::time::Instant;

use megabatch::cost::{default_calibration_path, save_calibration, CalibrationOptions};
use megabatch::{Auto, BackendKind};

use crate::outputs::Outputs;
use crate::{crossover, CliError, CliResult, Format};

/// What a machine without a GPU backend gets instead of an empty crossover table.
pub const NO_GPU: &str = "no GPU backend found (built without the cuda/wgpu features, or no \
                          device): the CPU runs everything; nothing to calibrate against";

/// Runs `megabatch calibrate`.
pub fn run(quick: bool, out: Option<PathBuf>, format: Format) -> CliResult {
    let mut auto = Auto::new()?;
    let path = match out {
        Some(path) => path,
        None => {
            let path = default_calibration_path(&auto.machine_key())
                .ok_or_else(|| CliError::Usage("no cache directory: pass --out".into()))?;
            // The cache folder is the tool's own: made on first use.
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).map_err(|e| {
                    CliError::Usage(format!("cache folder {}: {e}", folder.display()))
                })?;
            }
            path
        }
    };
    // Checked before the measurement, which takes seconds to minutes.
    let mut outputs = Outputs::new();
    let saved = outputs.add("--out", &path)?;
    let start = Instant::now();
    auto.calibrate(CalibrationOptions { quick })?;
    let seconds = start.elapsed().as_secs_f64();
    save_calibration(auto.model(), outputs.temp(saved))?;
    outputs.commit()?;
    eprintln!(
        "calibrated {} in {seconds:.2} s; saved to {}",
        auto.machine_key(),
        path.display()
    );
    let has_gpu = auto.backends().iter().any(|&k| k != BackendKind::Cpu);
    match (has_gpu, format) {
        (true, _) => {}
        // In place of a table without rows, which says nothing to a reader.
        (false, Format::Table) => {
            println!("{NO_GPU}");
            return Ok(());
        }
        // CSV and JSON keep their (empty) machine-readable form on stdout.
        (false, _) => eprintln!("{NO_GPU}"),
    }
    crossover::table(&auto).print(format)
}
