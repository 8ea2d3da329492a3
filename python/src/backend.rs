//! The process's one `Auto` (CPU threads, CUDA context, wgpu device: started once, on first
//! use) and the `backend=` argument.

use std::sync::{Mutex, PoisonError};

use megabatch::{Auto, BackendKind, Error};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;

/// The shared `Auto`, with the id of the process that started it.
static AUTO: Mutex<Option<(u32, Result<Auto, Error>)>> = Mutex::new(None);

/// The shared `Auto` (a clone: clones share the threads and devices), started on first use
/// with the GIL released (a wgpu or CUDA start can take a second, and other Python threads
/// keep running meanwhile).
///
/// A child forked after its parent started the backends (`multiprocessing`'s default on
/// Linux) has none of the parent's worker threads, and CUDA contexts do not survive `fork`:
/// there the first use starts a new `Auto`. The parent's is leaked, never dropped (dropping
/// it would join threads that do not exist in the child).
///
/// # Errors
/// As [`Auto::new`]: `ValueError` for a bad `MEGABATCH_BACKEND`, `RuntimeError` if it names a
/// backend this machine lacks or the CPU threads cannot start.
pub fn shared(py: Python<'_>) -> PyResult<Auto> {
    let pid = std::process::id();
    py.detach(|| {
        let mut slot = AUTO.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(&*slot, Some((started_in, _)) if *started_in == pid) {
            std::mem::forget(slot.take());
            *slot = Some((pid, Auto::new()));
        }
        match &*slot {
            Some((_, auto)) => auto.clone(),
            None => unreachable!("filled above"),
        }
    })
    .map_err(|e| to_py(py, e, None))
}

/// Makes `auto` (a clone of the shared one with a new cost model, say) the process's shared
/// `Auto`: later calls and plans use it.
pub fn replace_shared(auto: Auto) {
    let mut slot = AUTO.lock().unwrap_or_else(PoisonError::into_inner);
    *slot = Some((std::process::id(), Ok(auto)));
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
        None => Ok(auto),
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
