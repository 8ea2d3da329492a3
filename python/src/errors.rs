//! megabatch's errors as Python exceptions, with the crate's messages.
//!
//! | `megabatch::Error` | Python |
//! |---|---|
//! | `NonFinite`, `NoConvergence` | `megabatch.LinAlgError` (a `numpy.linalg.LinAlgError`, so a `ValueError`) |
//! | `TooLarge`, `Device { kind: OutOfMemory }` | `MemoryError` |
//! | `Shape`, `PlanMismatch`, `InvalidArgument`, `BadOffsets`, `Mask`, `KernelArguments` | `ValueError` |
//! | `Device` (other kinds), `Unsupported`, `Calibration`, anything newer | `RuntimeError` |

use megabatch::{DeviceErrorKind, Error};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static LINALG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `megabatch.LinAlgError`: made once, as a subclass of `numpy.linalg.LinAlgError` (itself a
/// `ValueError`), so `except numpy.linalg.LinAlgError` catches megabatch's too.
pub fn linalg_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    LINALG_ERROR
        .get_or_try_init(py, || {
            let base = py
                .import("numpy.linalg")?
                .getattr("LinAlgError")?
                .cast_into::<PyType>()?;
            PyErr::new_type(
                py,
                c"megabatch.LinAlgError",
                Some(
                    c"A matrix megabatch cannot decompose: NaN or Inf in the triangle read \
                      (`uplo`), or an iteration that did not converge. The message names the \
                      matrix by its index in the batch.",
                ),
                Some(&base),
                None,
            )
        })
        .map(|t| t.bind(py))
}

/// `err` as the Python exception of the table above. `batch_shape` (the leading dimensions
/// of a `[..., n, n]` input) turns a matrix number into its index there.
pub fn to_py(py: Python<'_>, err: Error, batch_shape: Option<&[usize]>) -> PyErr {
    match &err {
        Error::NonFinite { matrix } | Error::NoConvergence { matrix } => {
            let message = format!("{err}{}", batch_index(*matrix, batch_shape));
            match linalg_error_type(py) {
                Ok(ty) => PyErr::from_type(ty.clone(), message),
                Err(e) => e,
            }
        }
        Error::TooLarge(_) => PyMemoryError::new_err(err.to_string()),
        Error::Device {
            kind: DeviceErrorKind::OutOfMemory,
            ..
        } => PyMemoryError::new_err(err.to_string()),
        Error::Shape { .. }
        | Error::PlanMismatch(_)
        | Error::InvalidArgument(_)
        | Error::BadOffsets { .. }
        | Error::Mask { .. }
        | Error::KernelArguments { .. } => PyValueError::new_err(err.to_string()),
        _ => PyRuntimeError::new_err(err.to_string()),
    }
}

/// `" (batch index (1, 2))"` for matrix 5 of a `[2, 3, n, n]` input; nothing for a flat batch.
fn batch_index(matrix: usize, batch_shape: Option<&[usize]>) -> String {
    let Some(shape) = batch_shape.filter(|s| s.len() > 1) else {
        return String::new();
    };
    let mut rest = matrix;
    let mut index = vec![0; shape.len()];
    for (slot, &len) in index.iter_mut().zip(shape).rev() {
        *slot = rest % len.max(1);
        rest /= len.max(1);
    }
    let parts: Vec<String> = index.iter().map(usize::to_string).collect();
    format!(" (batch index ({}))", parts.join(", "))
}
