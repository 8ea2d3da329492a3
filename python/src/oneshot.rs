//! One-shot calls: a plan made for the input in hand, run once (`megabatch.eigh`,
//! `megabatch.eigvalsh`, `megabatch.eigh_ragged` wrap these).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::array::HostArray;
use crate::exec::{refuse_strided, run, shape_str};
use crate::plan::{EighPlan, Shape, Uplo};

/// `[..., n, n]` in, `w` or `(w, v)` out as new numpy arrays.
#[pyfunction]
#[pyo3(name = "_eigh", signature = (a, *, uplo="L", vectors=true, backend="auto"))]
pub fn eigh<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    uplo: &str,
    vectors: bool,
    backend: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let uplo = Uplo::parse(uplo)?;
    let a = HostArray::import(a, "a")?;
    let rank = a.shape.len();
    if rank < 2 {
        return Err(PyValueError::new_err(format!(
            "`a` has shape {}: eigh takes [..., n, n], at least 2 dimensions",
            shape_str(&a.shape)
        )));
    }
    let n = a.shape[rank - 1];
    if a.shape[rank - 2] != n {
        return Err(PyValueError::new_err(format!(
            "`a` has shape {}: the last 2 dimensions must be square",
            shape_str(&a.shape)
        )));
    }
    refuse_strided(&a)?;
    let batch = a.shape[..rank - 2].iter().product();
    let shape = Shape::Uniform { n, batch };
    let plan = EighPlan::create(py, shape, a.dtype, vectors, uplo, backend, a.layout)?;
    run(py, &plan, a, None)
}

/// Packed ragged batch in (`values`: every matrix row-major, one after another; `sizes`: their
/// orders), packed `w` or `(w, v)` out as new numpy arrays.
#[pyfunction]
#[pyo3(name = "_eigh_ragged", signature = (values, sizes, *, uplo="L", vectors=true, backend="auto"))]
pub fn eigh_ragged<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    sizes: Vec<i64>,
    uplo: &str,
    vectors: bool,
    backend: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let uplo = Uplo::parse(uplo)?;
    let sizes = sizes
        .into_iter()
        .map(|s| {
            usize::try_from(s)
                .map_err(|_| PyValueError::new_err(format!("sizes must be >= 0, got {s}")))
        })
        .collect::<PyResult<Vec<usize>>>()?;
    let values = HostArray::import(values, "values")?;
    refuse_strided(&values)?;
    let shape = Shape::Ragged { sizes };
    let plan = EighPlan::create(
        py,
        shape,
        values.dtype,
        vectors,
        uplo,
        backend,
        values.layout,
    )?;
    run(py, &plan, values, None)
}
