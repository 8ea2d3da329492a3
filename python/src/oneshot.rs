//! One-shot calls: a plan made for the input in hand, run once (`megabatch.eigh`,
//! `megabatch.eigvalsh`, `megabatch.eigh_ragged` wrap these).

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;

use crate::array::HostArray;
use crate::cache::PlanCache;
use crate::cuda::{place_of, Place};
use crate::dtype::Dtype;
use crate::exec::{refuse_strided, run, run_cuda, shape_str};
use crate::layout::Layout;
use crate::plan::{EighPlan, Shape, Uplo};

/// What a cached CUDA eigh plan was made for.
type EighKey = (Shape, Dtype, bool, Uplo, String);

/// The CUDA plans of one-shot calls (see `cache.rs`).
static CUDA_PLANS: PlanCache<EighKey, EighPlan> = PlanCache::new();

/// `[..., n, n]` in, `w` or `(w, v)` out: new numpy arrays for host input, new arrays of the
/// input's framework for CUDA input (on `stream`, see `EighPlan`).
#[pyfunction]
#[pyo3(name = "_eigh", signature = (a, *, uplo="L", vectors=true, backend="auto", stream=None, check_errors=false))]
pub fn eigh<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    uplo: &str,
    vectors: bool,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
    check_errors: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let uplo = Uplo::parse(uplo)?;
    if let Place::Cuda(_) = place_of(a, "a")? {
        crate::plan::cuda_auto(py, backend)?;
        let (shape, dtype) = cuda_shape(a)?;
        return eigh_cuda(
            py,
            a,
            Shape::uniform(shape)?,
            dtype,
            vectors,
            uplo,
            backend,
            stream,
            check_errors,
        );
    }
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
    let plan = EighPlan::create(
        py,
        shape,
        a.dtype,
        vectors,
        uplo,
        backend,
        a.layout,
        Place::Host,
    )?;
    run(py, &plan, a, None)
}

/// The shape and dtype of a CUDA array, from its attributes (`shape`, `dtype`: torch and
/// CuPy), without exporting it: the export happens once, for the call.
///
/// # Errors
/// `TypeError` for an array without them (pass it to an `EighPlan(device="cuda")`).
fn cuda_shape(a: &Bound<'_, PyAny>) -> PyResult<(Vec<usize>, Dtype)> {
    let py = a.py();
    let (Ok(shape), Ok(dtype)) = (
        a.getattr(intern!(py, "shape")),
        a.getattr(intern!(py, "dtype")),
    ) else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "a CUDA array without `shape` and `dtype` attributes: megabatch.eigh reads them to \
             pick its plan; call an EighPlan(device=\"cuda\") with out= instead",
        ));
    };
    Ok((shape.extract()?, Dtype::from_py(&dtype)?))
}

/// A one-shot call on a CUDA array: the cached plan for its shape (made on first use), run.
#[allow(clippy::too_many_arguments)]
fn eigh_cuda<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    shape: Shape,
    dtype: Dtype,
    vectors: bool,
    uplo: Uplo,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
    check_errors: bool,
) -> PyResult<Bound<'py, PyAny>> {
    dtype.check_real("a")?;
    let key = (
        shape.clone(),
        dtype,
        vectors,
        uplo,
        backend.to_ascii_lowercase(),
    );
    let layout = match uplo {
        Uplo::Lower => Layout::RowMajor,
        Uplo::Upper => Layout::Transposed,
    };
    let plan = CUDA_PLANS.get_or_make(py, key, || {
        EighPlan::create(
            py,
            shape,
            dtype,
            vectors,
            uplo,
            backend,
            layout,
            Place::Cuda(0),
        )
    })?;
    run_cuda(py, &plan, a, None, stream, check_errors)
}

/// Packed ragged batch in (`values`: every matrix row-major, one after another; `sizes`: their
/// orders), packed `w` or `(w, v)` out as new arrays (numpy, or the CUDA input's framework).
#[pyfunction]
#[pyo3(name = "_eigh_ragged", signature = (values, sizes, *, uplo="L", vectors=true, backend="auto", stream=None, check_errors=false))]
#[allow(clippy::too_many_arguments)]
pub fn eigh_ragged<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    sizes: Vec<i64>,
    uplo: &str,
    vectors: bool,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
    check_errors: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let uplo = Uplo::parse(uplo)?;
    let sizes = sizes
        .into_iter()
        .map(|s| {
            usize::try_from(s)
                .map_err(|_| PyValueError::new_err(format!("sizes must be >= 0, got {s}")))
        })
        .collect::<PyResult<Vec<usize>>>()?;
    if let Place::Cuda(_) = place_of(values, "values")? {
        crate::plan::cuda_auto(py, backend)?;
        let (_, dtype) = cuda_shape(values)?;
        let shape = Shape::Ragged { sizes };
        return eigh_cuda(
            py,
            values,
            shape,
            dtype,
            vectors,
            uplo,
            backend,
            stream,
            check_errors,
        );
    }
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
        Place::Host,
    )?;
    run(py, &plan, values, None)
}
