//! One call of an `EighPlan`: the arrays checked against the plan with the GIL held, then the
//! crate run on them in place with the GIL released: host arrays through `eigh_host`, CUDA
//! arrays through `eigh_on` on the caller's stream (`cuda.rs`).

use std::any::Any;

use megabatch::{AutoEighPlan, BatchedEigh, Error, Real, EIGH_SOLVED};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::array::{check_disjoint, empty, HostArray, RawSlice};
use crate::cuda::{check_output, place_of, CudaCall, DeviceArray, Idle, Place};
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::layout::Layout;
use crate::plan::{zeroed, EighPlan, Shape, State, Typed};
use crate::trace::{record, Pointers};
use crate::transpose::transpose_each;

/// `plan(a, out=out, stream=stream, check_errors=check_errors)`: host arrays or CUDA arrays,
/// as the plan's `place` takes them.
pub fn call<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    a: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    stream: Option<&Bound<'py, PyAny>>,
    check_errors: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match (place_of(a, "a")?, plan.place) {
        (Place::Host, Place::Host) => {
            let a = HostArray::import(a, "a")?;
            run(py, plan, a, out)
        }
        (Place::Cuda(_), Place::Cuda(_)) => run_cuda(py, plan, a, out, stream, check_errors),
        (got, _) => Err(got.mismatch("a", "EighPlan")),
    }
}

/// Runs a CUDA plan on CUDA arrays: `a` read, `out` (or new arrays of `a`'s framework)
/// written in place on the call's queue, without waiting (see `cuda.rs`). With
/// `check_errors`, waits for the call and raises `LinAlgError` for the first bad matrix.
pub fn run_cuda<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    a_obj: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    stream: Option<&Bound<'py, PyAny>>,
    check_errors: bool,
) -> PyResult<Bound<'py, PyAny>> {
    plan.owned.check_process()?;
    let mut call = CudaCall::begin(py, &plan.owned.auto, a_obj, stream)?;
    let a = call.import(a_obj, "a")?;
    let batch_shape = check_shape(plan, &a.name, &a.shape, a.dtype)?;
    if a.layout == Layout::Strided || plan.needs_transpose(a.layout) {
        return Err(PyValueError::new_err(format!(
            "`a` must be C-contiguous for uplo=\"L\", or a.mT of a C-contiguous array for \
             uplo=\"U\", on CUDA (megabatch reads CUDA arrays in place and does not transpose \
             them); got {}",
            match a.layout {
                Layout::RowMajor => "a C-contiguous array for uplo=\"U\"",
                Layout::Transposed => "a.mT of a C-contiguous array for uplo=\"L\"",
                Layout::Strided => "a non-contiguous array (pass .contiguous())",
            }
        )));
    }
    let (w_shape, v_shape) = match &plan.shape {
        Shape::Uniform { .. } => (a.shape[..a.shape.len() - 1].to_vec(), a.shape.clone()),
        Shape::Ragged { .. } => (vec![plan.w_len], vec![plan.a_len]),
    };
    let (w_obj, v_obj, w, v) = match out.filter(|o| !o.is_none()) {
        Some(out) => {
            let (w_obj, v_obj) = split_out(plan, out)?;
            let w = call.import(&w_obj, "w")?;
            let v = match &v_obj {
                Some(v_obj) => Some(call.import(v_obj, "v")?),
                None => None,
            };
            (w_obj, v_obj, w, v)
        }
        None => {
            let (w_obj, w) = call.output(a_obj, "w", plan.dtype, &w_shape)?;
            let (v_obj, v) = match plan.vectors {
                true => {
                    let (o, v) = call.output(a_obj, "v", plan.dtype, &v_shape)?;
                    (Some(o), Some(v))
                }
                false => (None, None),
            };
            (w_obj, v_obj, w, v)
        }
    };
    check_device_output(&w, plan.dtype, &w_shape)?;
    if let Some(v) = &v {
        check_device_output(v, plan.dtype, &v_shape)?;
    }
    let mut ranges = vec![("a", a.bytes()), ("w", w.bytes())];
    if let Some(v) = &v {
        ranges.push(("v", v.bytes()));
    }
    check_disjoint(&ranges)?;
    record(Pointers {
        a: a.ptr as usize,
        w: w.ptr as usize,
        v: v.as_ref().map(|v| v.ptr as usize),
        a_copied: false,
    });
    let result = py.detach(|| -> Result<Vec<Box<dyn Idle>>, Error> {
        let mut state = plan.owned.lock()?;
        match &mut *state {
            // SAFETY: `a`, `w`, `v` hold the plan's dtype (checked above), which picks the arm;
            // they stay alive in `call`'s pending entry until the buffers are idle.
            State::F32(t) => unsafe { execute_cuda(plan, &call, &mut t.plan, &a, &w, v.as_ref()) },
            // SAFETY: as above.
            State::F64(t) => unsafe { execute_cuda(plan, &call, &mut t.plan, &a, &w, v.as_ref()) },
        }
    });
    let buffers = result.map_err(|e| to_py(py, e, batch_shape.as_deref()))?;
    let mut arrays = vec![a, w];
    arrays.extend(v);
    call.finish(arrays, buffers, Vec::<Box<dyn Any + Send>>::new());
    if check_errors {
        check_info(py, plan, batch_shape.as_deref())?;
    }
    Ok(match v_obj {
        Some(v_obj) => PyTuple::new(py, [w_obj, v_obj])?.into_any(),
        None => w_obj,
    })
}

/// Borrows the arrays as crate buffers and queues `plan` on the call's queue.
///
/// # Safety
/// `a`, `w`, `v` hold elements of `T` and stay alive until the returned buffers are idle.
unsafe fn execute_cuda<T: Real>(
    eigh: &EighPlan,
    call: &CudaCall,
    plan: &mut AutoEighPlan<T>,
    a: &DeviceArray,
    w: &DeviceArray,
    v: Option<&DeviceArray>,
) -> Result<Vec<Box<dyn Idle>>, Error> {
    // SAFETY: the caller's contract.
    let (ab, mut wb) = unsafe { (call.borrow::<T>(a)?, call.borrow::<T>(w)?) };
    let mut vb = match v {
        // SAFETY: the caller's contract.
        Some(v) => Some(unsafe { call.borrow::<T>(v)? }),
        None => None,
    };
    eigh.owned
        .auto
        .eigh_on(&call.auto_queue(), plan, &ab, &mut wb, vb.as_mut())?;
    let mut keep: Vec<Box<dyn Idle>> = vec![Box::new(ab), Box::new(wb)];
    if let Some(vb) = vb {
        keep.push(Box::new(vb));
    }
    Ok(keep)
}

/// Each matrix's status in the plan's last call (waits for a GPU plan's last call).
pub fn info(py: Python<'_>, plan: &EighPlan) -> PyResult<Vec<i32>> {
    let batch = plan.shape.orders().count();
    py.detach(|| -> Result<Vec<i32>, Error> {
        let mut codes = vec![EIGH_SOLVED; batch];
        let mut state = plan.owned.lock()?;
        match &mut *state {
            State::F32(t) => plan.owned.auto.eigh_info(&mut t.plan, &mut codes)?,
            State::F64(t) => plan.owned.auto.eigh_info(&mut t.plan, &mut codes)?,
        }
        Ok(codes)
    })
    .map_err(|e| to_py(py, e, None))
}

/// `LinAlgError` for the first matrix the last call could not solve.
fn check_info(py: Python<'_>, plan: &EighPlan, batch_shape: Option<&[usize]>) -> PyResult<()> {
    let codes = info(py, plan)?;
    let Some((matrix, &code)) = codes.iter().enumerate().find(|(_, &c)| c != EIGH_SOLVED) else {
        return Ok(());
    };
    let err = if code == megabatch::EIGH_NON_FINITE {
        Error::NonFinite { matrix }
    } else {
        Error::NoConvergence { matrix }
    };
    Err(to_py(py, err, batch_shape))
}

/// The outputs `out=` names: `(w, v)` with vectors, `w` (or `(w,)`) without.
fn split_out<'py>(
    plan: &EighPlan,
    out: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
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

/// A CUDA output: the plan's dtype, exactly `shape`, C-contiguous, writable.
fn check_device_output(array: &DeviceArray, dtype: Dtype, shape: &[usize]) -> PyResult<()> {
    check_dtype(dtype, array.dtype, &array.name)?;
    if array.shape != shape {
        return Err(PyValueError::new_err(format!(
            "`{}` has shape {}, expected {}",
            array.name,
            shape_str(&array.shape),
            shape_str(shape)
        )));
    }
    check_output(array)
}

/// Runs `plan` on the imported input `a`, writing `out` (`w`, or `(w, v)` with vectors) or new
/// numpy arrays; returns them as the plan's call does.
pub fn run<'py>(
    py: Python<'py>,
    plan: &EighPlan,
    a: HostArray,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    plan.owned.check_process()?;
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
        let mut state = plan.owned.lock()?;
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
    let result = plan.owned.auto.eigh_host(&mut typed.plan, input, w, v);
    record(pointers);
    result
}

/// Checks `a` against the plan: dtype, shape, layout. Returns the batch dimensions of a
/// uniform input (for error messages naming a matrix).
fn check_input(plan: &EighPlan, a: &HostArray) -> PyResult<Option<Vec<usize>>> {
    let batch_shape = check_shape(plan, &a.name, &a.shape, a.dtype)?;
    refuse_strided(a)?;
    Ok(batch_shape)
}

/// Checks an input's dtype and shape against the plan. Returns the batch dimensions of a
/// uniform input.
fn check_shape(
    plan: &EighPlan,
    name: &str,
    shape: &[usize],
    dtype: Dtype,
) -> PyResult<Option<Vec<usize>>> {
    dtype.check_real(name)?;
    check_dtype(plan.dtype, dtype, name)?;
    let a_shape = shape;
    let batch_shape = match &plan.shape {
        Shape::Uniform { n, batch } => {
            let rank = a_shape.len();
            if rank < 2 || a_shape[rank - 1] != *n || a_shape[rank - 2] != *n {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}, the plan takes [..., {n}, {n}]",
                    shape_str(a_shape)
                )));
            }
            let leading = &a_shape[..rank - 2];
            let count: usize = leading.iter().product();
            if count != *batch {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}: {count} matrices, the plan takes {batch}",
                    shape_str(a_shape)
                )));
            }
            Some(leading.to_vec())
        }
        Shape::Ragged { sizes } => {
            if a_shape != [plan.a_len] {
                return Err(PyValueError::new_err(format!(
                    "`{name}` has shape {}, the plan takes a 1-D array of {} values (the {} \
                     matrices packed row-major)",
                    shape_str(a_shape),
                    plan.a_len,
                    sizes.len()
                )));
            }
            None
        }
    };
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
    split_out(plan, out)
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
