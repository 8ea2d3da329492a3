//! The test hook that proves zero-copy: the addresses the last eigh call handed the crate.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What one call gave `eigh_host`: the address of the matrices it read (the caller's array,
/// or the plan's transpose buffer) and of the outputs it wrote.
#[derive(Debug, Clone, Copy)]
pub struct Pointers {
    pub a: usize,
    pub w: usize,
    pub v: Option<usize>,
    /// Whether `a` is the plan's transposed copy rather than the caller's array.
    pub a_copied: bool,
}

static LAST: Mutex<Option<Pointers>> = Mutex::new(None);

/// Records the last call's addresses (process-wide; written after the crate returns).
pub fn record(pointers: Pointers) {
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some(pointers);
}

/// `{"a": int, "w": int, "v": int | None, "a_copied": bool}` of the last eigh call in this
/// process that reached the crate (`None` before the first): the data addresses the Rust side
/// read and wrote, to compare with `x.__array_interface__["data"][0]` or `t.data_ptr()`.
/// A test hook, not API.
#[pyfunction]
#[pyo3(name = "_last_pointers")]
pub fn last_pointers(py: Python<'_>) -> PyResult<Option<Bound<'_, PyDict>>> {
    let last = *LAST.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = last else {
        return Ok(None);
    };
    let dict = PyDict::new(py);
    dict.set_item("a", p.a)?;
    dict.set_item("w", p.w)?;
    dict.set_item("v", p.v)?;
    dict.set_item("a_copied", p.a_copied)?;
    Ok(Some(dict))
}
