//! One call of an `EighPlan`: the arrays checked against the plan with the GIL held, then the
//! crate run on them in place with the GIL released.

use megabatch::{BatchedEigh, Error, Real};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::array::{check_disjoint, empty, HostArray, RawSlice};
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::layout::Layout;
use crate::plan::{zeroed, EighPlan, Shape, State, Typed};
use crate::trace::{record, Pointers};
use crate::transpose::transpose_each;

/// `plan(a, out=out)`.
pub fn call<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    a: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = HostArray::import(a, "a")?;
    run(py, plan, a, out)
}

/// Runs `plan` on the imported input `a`, writing `out` (`w`, or `(w, v)` with vectors) or new
/// numpy arrays; returns them as the plan's call does.
pub fn run<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    a: HostArray,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    plan.check_process()?;
    let batch_shape = check_input(plan, &a)?;
    let (w_shape, v_shape) = match &plan.shape {
        Shape::Uniform { .. } => (a.shape[..a.shape.len() - 1].to_vec(), a.shape.clone()),
        Shape::Ragged { .. } => (vec![plan.w_len], vec![plan.a_len]),
    };
    let (w_obj, v_obj) = outputs(py, plan, out, &w_shape, &v_shape)?;
    let w = import_output(&w_obj, "w", plan.dtype, &w_shape)?;
    let v = match &v_obj {
        Some(v_obj) => Some(import_output(v_obj, "v", plan.dtype, &v_shape)?),
        None => None,
    };
    let mut ranges = vec![(a.name.as_str(), a.bytes()), ("w", w.bytes())];
    if let Some(v) = &v {
        ranges.push(("v", v.bytes()));
    }
    check_disjoint(&ranges)?;

    let transpose = plan.needs_transpose(a.layout);
    let (ra, rw, rv) = (a.raw(), w.raw(), v.as_ref().map(HostArray::raw));
    let result = py.detach(|| {
        let mut state = plan.lock()?;
        // Why `execute` is sound here (both arms): `a`, `w` and `v` are alive until after
        // `detach` returns (they are dropped below), so are their producers' buffers; all
        // three hold the plan's dtype, which picks the arm (`check_input`, `import_output`);
        // `w` and `v` are writable (`import_output`) and no two of the three overlap
        // (`check_disjoint`), so the one shared and two mutable slices made from them alias
        // nothing. The plan's own buffers are behind the lock. Another Python thread writing
        // these arrays meanwhile is a race the caller owns, as with numpy's own
        // GIL-releasing routines.
        match &mut *state {
            // SAFETY: see above.
            State::F32(t) => unsafe { execute(plan, t, ra, rw, rv, transpose) },
            // SAFETY: see above.
            State::F64(t) => unsafe { execute(plan, t, ra, rw, rv, transpose) },
        }
    });
    drop((a, w, v));
    result.map_err(|e| to_py(py, e, batch_shape.as_deref()))?;
    Ok(match v_obj {
        Some(v_obj) => PyTuple::new(py, [w_obj, v_obj])?.into_any(),
        None => w_obj,
    })
}

/// Runs the crate on the arrays: in place, or on the plan's transposed copy of `a`.
///
/// # Safety
/// `a`, `w` and `v` come from live [`HostArray`]s of element type `T`, `w` and `v` writable,
/// no two overlapping.
unsafe fn execute<T: Real>(
    plan: &EighPlan,
    typed: &mut Typed<T>,
    a: RawSlice,
    w: RawSlice,
    v: Option<RawSlice>,
    transpose: bool,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let (a, w) = unsafe { (a.slice::<T>(), w.slice_mut::<T>()) };
    // SAFETY: the caller's contract.
    let v = v.map(|v| unsafe { v.slice_mut::<T>() });
    let input: &[T] = if transpose {
        if typed.scratch.len() != a.len() {
            // Only a plan made for the other layout gets here (see `EighPlan::create`): its
            // first such call allocates the buffer, later ones reuse it.
            typed.scratch = zeroed(a.len())?;
        }
        transpose_each(a, &mut typed.scratch, plan.shape.orders());
        &typed.scratch
    } else {
        a
    };
    let pointers = Pointers {
        a: input.as_ptr() as usize,
        w: w.as_ptr() as usize,
        v: v.as_ref().map(|v| v.as_ptr() as usize),
        a_copied: transpose,
    };
    let result = BatchedEigh::<T>::eigh_host(&*plan.auto, &mut typed.plan, input, w, v);
    record(pointers);
    result
}

/// Checks `a` against the plan: dtype, shape, layout. Returns the batch dimensions of a
/// uniform input (for error messages naming a matrix).
fn check_input(plan: &EighPlan, a: &HostArray) -> PyResult<Option<Vec<usize>>> {
    check_dtype(plan.dtype, a.dtype, &a.name)?;
    let name = &a.name;
    let batch_shape = match &plan.shape {
        Shape::Uniform { n, batch } => {
            let rank = a.shape.len();
            if rank < 2 || a.shape[rank - 1] != *n || a.shape[rank - 2] != *n {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}, the plan takes [..., {n}, {n}]",
                    shape_str(&a.shape)
                )));
            }
            let leading = &a.shape[..rank - 2];
            let count: usize = leading.iter().product();
            if count != *batch {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}: {count} matrices, the plan takes {batch}",
                    shape_str(&a.shape)
                )));
            }
            Some(leading.to_vec())
        }
        Shape::Ragged { sizes } => {
            if a.shape != [plan.a_len] {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}, the plan takes a 1-D array of {} values (the {} \
                     matrices packed row-major)",
                    shape_str(&a.shape),
                    plan.a_len,
                    sizes.len()
                )));
            }
            None
        }
    };
    refuse_strided(a)?;
    Ok(batch_shape)
}

/// `ValueError` for an input megabatch cannot read in place (checked before a one-shot call
/// makes its plan: a broadcast array can claim more matrices than memory holds).
pub fn refuse_strided(a: &HostArray) -> PyResult<()> {
    if a.layout != Layout::Strided {
        return Ok(());
    }
    Err(PyValueError::new_err(format!(
        "`{}` is not contiguous: megabatch reads arrays in place and takes C-contiguous ones \
         (or, for [..., n, n], their transposes a.mT); pass numpy.ascontiguousarray",
        a.name
    )))
}

/// The output arrays: `out` checked for its form, or new numpy arrays.
fn outputs<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    out: Option<&Bound<'py, PyAny>>,
    w_shape: &[usize],
    v_shape: &[usize],
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let Some(out) = out.filter(|o| !o.is_none()) else {
        let empty = |shape: &[usize]| empty(py, plan.dtype, shape);
        let v = if plan.vectors {
            Some(empty(v_shape)?)
        } else {
            None
        };
        return Ok((empty(w_shape)?, v));
    };
    let parts: Vec<Bound<'py, PyAny>> = match out.cast::<PyTuple>() {
        Ok(t) => t.iter().collect(),
        Err(_) => vec![out.clone()],
    };
    match (plan.vectors, parts.len()) {
        (true, 2) => Ok((parts[0].clone(), Some(parts[1].clone()))),
        (false, 1) => Ok((parts[0].clone(), None)),
        (true, _) => Err(PyValueError::new_err(
            "out must be a tuple (w, v) for a plan with vectors",
        )),
        (false, _) => Err(PyValueError::new_err(
            "out must be one array w (or (w,)) for a plan without vectors",
        )),
    }
}

/// Imports output `what`: the plan's dtype, exactly `shape`, C-contiguous, writable.
fn import_output(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dtype: Dtype,
    shape: &[usize],
) -> PyResult<HostArray> {
    let array = HostArray::import(obj, what)?;
    check_dtype(dtype, array.dtype, what)?;
    if array.shape != shape {
        return Err(PyValueError::new_err(format!(
            "`{what}` has shape {}, expected {}",
            shape_str(&array.shape),
            shape_str(shape)
        )));
    }
    if array.layout != Layout::RowMajor {
        return Err(PyValueError::new_err(format!(
            "`{what}` must be C-contiguous: megabatch writes outputs in place"
        )));
    }
    if array.read_only {
        return Err(PyValueError::new_err(format!("`{what}` is read-only")));
    }
    Ok(array)
}

fn check_dtype(expected: Dtype, got: Dtype, what: &str) -> PyResult<()> {
    if expected == got {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "`{what}` is {}, the plan is for {}",
        got.name(),
        expected.name()
    )))
}

/// `(2, 3, 4)` as numpy prints shapes.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}
