//! The process's one `Auto` (CPU threads, CUDA context, wgpu device: started once, on first
//! use) and the `backend=` argument.

use std::sync::OnceLock;

use megabatch::{Auto, BackendKind, Error};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;

static AUTO: OnceLock<Result<Auto, Error>> = OnceLock::new();

/// The shared `Auto`, started on first use with the GIL released (a wgpu or CUDA start can
/// take a second, and other Python threads keep running meanwhile).
///
/// # Errors
/// As [`Auto::new`]: `ValueError` for a bad `MEGABATCH_BACKEND`, `RuntimeError` if it names a
/// backend this machine lacks or the CPU threads cannot start.
pub fn shared(py: Python<'_>) -> PyResult<&'static Auto> {
    py.detach(|| AUTO.get_or_init(Auto::new).as_ref())
        .map_err(|e| to_py(py, e.clone(), None))
}

/// The `Auto` for `backend=`: `"auto"` (the cost model picks, or `MEGABATCH_BACKEND` if set),
/// or `"cpu"`, `"wgpu"`, `"cuda"` to force one.
///
/// # Errors
/// `ValueError` for another name; `RuntimeError` for a backend this build or machine lacks,
/// with the reason the shared `Auto` noted when it started.
pub fn select(py: Python<'_>, backend: &str) -> PyResult<Auto> {
    let kind = match backend.to_ascii_lowercase().as_str() {
        "auto" => None,
        "cpu" => Some(BackendKind::Cpu),
        "wgpu" => Some(BackendKind::Wgpu),
        "cuda" => Some(BackendKind::Cuda),
        _ => {
            return Err(PyValueError::new_err(format!(
                "backend must be one of \"auto\", \"cpu\", \"wgpu\", \"cuda\"; got {backend:?}"
            )))
        }
    };
    let auto = shared(py)?;
    match kind {
        None => Ok(auto.clone()),
        Some(kind) => auto.clone().force(kind).map_err(|e| {
            let why: Vec<String> = auto
                .notes()
                .into_iter()
                .filter(|note| note.starts_with(kind.name()))
                .collect();
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            };
            PyRuntimeError::new_err(format!("{e}{why}"))
        }),
    }
}
