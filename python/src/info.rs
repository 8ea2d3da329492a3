//! `megabatch.info()`: which backends this process found, and why the others are missing.

use std::path::PathBuf;
use std::time::Instant;

use megabatch::cost::{default_calibration_path, save_calibration, CalibrationOptions};
use megabatch::{BackendKind, Error};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::backend::{replace_shared, shared};
use crate::errors::to_py;

/// The backends this process uses, as a dict (see the package's `info` for the keys).
#[pyfunction]
#[pyo3(name = "_info")]
pub fn info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let auto = shared(py)?;
    let dict = PyDict::new(py);
    dict.set_item("version", env!("CARGO_PKG_VERSION"))?;
    dict.set_item("built_with", ["cpu", "wgpu", "cuda"])?;
    let names: Vec<&str> = auto.backends().into_iter().map(BackendKind::name).collect();
    dict.set_item("backends", names)?;
    dict.set_item("forced", auto.forced().map(BackendKind::name))?;
    dict.set_item("cpu_threads", auto.cpu().threads())?;

    let cuda = match auto.cuda() {
        Some(cuda) => {
            let info = cuda.info();
            let d = PyDict::new(py);
            d.set_item("name", &info.name)?;
            d.set_item("compute_capability", info.compute_capability)?;
            d.set_item("multiprocessors", info.multiprocessors)?;
            d.set_item("total_memory", info.total_memory)?;
            d.set_item("driver_version", info.driver_version)?;
            Some(d)
        }
        None => None,
    };
    dict.set_item("cuda", cuda)?;

    let wgpu = match auto.wgpu() {
        Some(wgpu) => {
            let adapter = wgpu.adapter();
            let d = PyDict::new(py);
            d.set_item("name", &adapter.name)?;
            d.set_item("backend", &adapter.backend)?;
            d.set_item("device_type", &adapter.device_type)?;
            d.set_item("driver", &adapter.driver)?;
            d.set_item("f64", adapter.f64)?;
            Some(d)
        }
        None => None,
    };
    dict.set_item("wgpu", wgpu)?;
    dict.set_item("notes", auto.notes())?;
    Ok(dict)
}

/// Measures this process's backends for the cost model, saves the calibration and makes it the
/// model of the shared `Auto` (see the package's `calibrate` for the docs). Returns a dict:
/// `path`, `seconds`, `machine`, `backends`.
#[pyfunction]
#[pyo3(name = "_calibrate", signature = (*, quick=false, path=None))]
pub fn calibrate(
    py: Python<'_>,
    quick: bool,
    path: Option<PathBuf>,
) -> PyResult<Bound<'_, PyDict>> {
    let mut auto = shared(py)?;
    let machine = auto.machine_key();
    let path = match path.or_else(|| default_calibration_path(&machine)) {
        Some(path) => path,
        None => {
            return Err(PyRuntimeError::new_err(
                "no cache directory on this platform: pass path=",
            ))
        }
    };
    let (auto, seconds) = py
        .detach(|| -> Result<_, Error> {
            let start = Instant::now();
            auto.calibrate(CalibrationOptions { quick })?;
            let seconds = start.elapsed().as_secs_f64();
            save_calibration(auto.model(), &path)?;
            Ok((auto, seconds))
        })
        .map_err(|e| to_py(py, e, None))?;
    let backends: Vec<&str> = auto.backends().into_iter().map(BackendKind::name).collect();
    replace_shared(auto);
    let dict = PyDict::new(py);
    dict.set_item("path", path.display().to_string())?;
    dict.set_item("seconds", seconds)?;
    dict.set_item("machine", machine)?;
    dict.set_item("backends", backends)?;
    Ok(dict)
}
