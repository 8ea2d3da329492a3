//! `megabatch.info()`: which backends this process found, and why the others are missing.

use megabatch::BackendKind;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::backend::shared;

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
