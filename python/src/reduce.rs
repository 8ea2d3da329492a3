//! Reductions (`megabatch.sum`, `max`, `max_abs_diff`, `weighted_mean`, `segment_sum` wrap
//! these): a plan of the crate's [`Reducer`] over `Auto` made for the arrays in hand, run once
//! on them where they lie with the GIL released, into a new numpy array. As the crate's
//! reductions: deterministic (one fixed pairwise tree whatever the backend's thread count)
//! and NaN-propagating (maxima included).

use megabatch::{Error, ReduceOp, ReduceSpec, Reducer, Reducible, RowReduceOp, SegmentReduceOp};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::array::{empty, HostArray, RawSlice};
use crate::backend::select;
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::exec::shape_str;
use crate::layout::Layout;

/// A whole array to one value: `op` names a [`ReduceOp`] as [`ReduceOp::name`] spells it
/// (`"sum"`, `"max"`, `"max-abs-diff"`, ...); `y`, of `x`'s shape and dtype, is the second
/// operand of those that take one. Returns a numpy scalar of `x`'s dtype.
#[pyfunction]
#[pyo3(name = "_reduce", signature = (op, x, y=None, *, backend="auto"))]
pub fn reduce<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = ReduceOp::ALL
        .into_iter()
        .find(|o| o.name() == op)
        .ok_or_else(|| PyValueError::new_err(format!("unknown reduction {op:?}")))?;
    let x = input(x, "x")?;
    let y = second(op.takes_y(), y, "y", &x)?;
    if let Some(y) = &y {
        if y.shape != x.shape {
            return Err(PyValueError::new_err(format!(
                "`y` has shape {}, `x` {}: they must be equal (no broadcasting)",
                shape_str(&y.shape),
                shape_str(&x.shape)
            )));
        }
    }
    let spec = ReduceSpec::Full {
        op,
        len: x.raw().len,
    };
    let out = run(py, backend, &spec, &x, y.as_ref(), &[])?;
    // The 0-d array's one element as a numpy scalar of its dtype (numpy.sum returns one).
    out.get_item(())
}

/// Over the rows of a `(rows, cols)` matrix `x`: `op` is `"sum"`, `"mean"`, `"max"` or
/// `"weighted-mean"` (with `y`, one weight per row). Returns a new `(cols,)` array.
#[pyfunction]
#[pyo3(name = "_reduce_rows", signature = (op, x, y=None, *, backend="auto"))]
pub fn reduce_rows<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = named(
        "row reduction",
        op,
        &[
            ("sum", RowReduceOp::Sum),
            ("mean", RowReduceOp::Mean),
            ("max", RowReduceOp::Max),
            ("weighted-mean", RowReduceOp::WeightedMean),
        ],
    )?;
    let x = input(x, "x")?;
    let &[rows, cols] = x.shape.as_slice() else {
        return Err(PyValueError::new_err(format!(
            "`x` has shape {}: a reduction over rows takes a 2-D (rows, cols) array",
            shape_str(&x.shape)
        )));
    };
    let y = second(op.takes_y(), y, "weights", &x)?;
    if let Some(y) = &y {
        if y.shape != [rows] {
            return Err(PyValueError::new_err(format!(
                "`weights` has shape {}, `x` has {rows} rows: it takes ({rows},)",
                shape_str(&y.shape)
            )));
        }
    }
    let spec = ReduceSpec::Rows { op, rows, cols };
    run(py, backend, &spec, &x, y.as_ref(), &[cols])
}

/// Over segments of a 1-D `x`: segment `s` is `x[offsets[s]:offsets[s + 1]]` (CSR row
/// pointers; `offsets[-1] == len(x)`). `op` is `"sum"`, `"mean"`, `"max"`, `"min"` or `"dot"`
/// (with `y`, of `x`'s shape). Returns a new `(len(offsets) - 1,)` array.
#[pyfunction]
#[pyo3(name = "_reduce_segments", signature = (op, x, offsets, y=None, *, backend="auto"))]
pub fn reduce_segments<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    offsets: Vec<i64>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = named(
        "segment reduction",
        op,
        &[
            ("sum", SegmentReduceOp::Sum),
            ("mean", SegmentReduceOp::Mean),
            ("max", SegmentReduceOp::Max),
            ("min", SegmentReduceOp::Min),
            ("dot", SegmentReduceOp::Dot),
        ],
    )?;
    let x = input(x, "values")?;
    let &[len] = x.shape.as_slice() else {
        return Err(PyValueError::new_err(format!(
            "`values` has shape {}: segment reductions take a 1-D array",
            shape_str(&x.shape)
        )));
    };
    let offsets = offsets
        .into_iter()
        .map(|o| {
            usize::try_from(o)
                .map_err(|_| PyValueError::new_err(format!("offsets must be >= 0, got {o}")))
        })
        .collect::<PyResult<Vec<usize>>>()?;
    match offsets.last() {
        None => {
            return Err(PyValueError::new_err(
                "offsets must have at least one entry (segments + 1)",
            ))
        }
        Some(&last) if last != len => {
            return Err(PyValueError::new_err(format!(
                "offsets[-1] is {last}, `values` has {len} elements: they must be equal"
            )))
        }
        Some(_) => {}
    }
    let y = second(op.takes_y(), y, "y", &x)?;
    if let Some(y) = &y {
        if y.shape != x.shape {
            return Err(PyValueError::new_err(format!(
                "`y` has shape {}, `values` {}: they must be equal",
                shape_str(&y.shape),
                shape_str(&x.shape)
            )));
        }
    }
    let segments = offsets.len() - 1;
    let spec = ReduceSpec::Segments { op, offsets };
    run(py, backend, &spec, &x, y.as_ref(), &[segments])
}

/// Imports a reduction input: float32 or float64, C-contiguous (read in place, in order).
fn input(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<HostArray> {
    let array = HostArray::import(obj, what)?;
    if array.layout != Layout::RowMajor {
        return Err(PyValueError::new_err(format!(
            "`{what}` is not C-contiguous: megabatch reads arrays in place, in order; pass \
             numpy.ascontiguousarray"
        )));
    }
    Ok(array)
}

/// The second operand `what` (of `x`'s dtype) if the operation takes one (`takes`).
fn second(
    takes: bool,
    y: Option<&Bound<'_, PyAny>>,
    what: &str,
    x: &HostArray,
) -> PyResult<Option<HostArray>> {
    let y = match (takes, y.filter(|y| !y.is_none())) {
        (true, Some(y)) => input(y, what)?,
        (false, None) => return Ok(None),
        (true, None) => {
            return Err(PyValueError::new_err(format!(
                "this reduction needs `{what}`"
            )))
        }
        (false, Some(_)) => {
            return Err(PyValueError::new_err(format!(
                "this reduction takes no `{what}`"
            )))
        }
    };
    if y.dtype != x.dtype {
        return Err(PyTypeError::new_err(format!(
            "`{what}` is {}, `{}` is {}: they must be equal",
            y.dtype.name(),
            x.name,
            x.dtype.name()
        )));
    }
    Ok(Some(y))
}

/// Runs `spec` on `x` (and `y`) on the backend `backend=` names, into a new numpy array of
/// `x`'s dtype and `out_shape`, and returns it.
fn run<'py>(
    py: Python<'py>,
    backend: &str,
    spec: &ReduceSpec,
    x: &HostArray,
    y: Option<&HostArray>,
    out_shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let auto = select(py, backend)?;
    let out_obj = empty(py, x.dtype, out_shape)?;
    let out = HostArray::import(&out_obj, "out")?;
    let (rx, ry, rout) = (x.raw(), y.map(HostArray::raw), out.raw());
    let result = py.detach(|| match x.dtype {
        // SAFETY: `x`, `y` and `out` are alive until after `detach` returns (borrowed here,
        // `out` dropped below) and hold `x`'s dtype (`second` checked `y`'s; `out` was made
        // with it); `out` is a new writable array no other slice covers, and `x` and `y` are
        // only read (they may overlap each other).
        Dtype::F32 => unsafe { execute::<f32>(&auto, spec, rx, ry, rout) },
        // SAFETY: as above.
        Dtype::F64 => unsafe { execute::<f64>(&auto, spec, rx, ry, rout) },
    });
    drop(out);
    result.map_err(|e| to_py(py, e, None))?;
    Ok(out_obj)
}

/// Plans `spec` over `auto` for host data and runs it once.
///
/// # Safety
/// `x`, `y` and `out` come from live [`HostArray`]s of element type `T`, `out` writable and
/// overlapping neither of the others.
unsafe fn execute<T: Reducible<Acc = T>>(
    auto: &megabatch::Auto,
    spec: &ReduceSpec,
    x: RawSlice,
    y: Option<RawSlice>,
    out: RawSlice,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let (x, out) = unsafe { (x.slice::<T>(), out.slice_mut::<T>()) };
    // SAFETY: the caller's contract.
    let y = y.map(|y| unsafe { y.slice::<T>() });
    let mut plan = Reducer::<T>::plan_reduce(auto, spec)?;
    Reducer::<T>::reduce_host(auto, &mut plan, x, y, out)
}

/// The operation `table` names `op` (`ValueError` naming the `kind` otherwise).
fn named<T: Copy>(kind: &str, op: &str, table: &[(&str, T)]) -> PyResult<T> {
    table
        .iter()
        .find(|(name, _)| *name == op)
        .map(|&(_, value)| value)
        .ok_or_else(|| PyValueError::new_err(format!("unknown {kind} {op:?}")))
}
