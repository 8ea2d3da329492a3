//! Reductions: `ReducePlan` (a spec, dtype and backend fixed once, calls with `out=` that
//! allocate nothing) and the one-shot functions `megabatch.sum`, `max`, `max_abs_diff`,
//! `weighted_mean`, `segment_sum` wrap (`_reduce`, `_reduce_rows`, `_reduce_segments`: a plan
//! made for the arrays in hand, kept between calls for CUDA arrays). As the crate's
//! reductions: deterministic (one fixed pairwise tree whatever the backend's thread count) and
//! NaN-propagating (maxima included); float16 and bfloat16 inputs accumulate and return
//! float32.

use std::any::Any;

use half::{bf16, f16};
use megabatch::{
    Auto, AutoReducePlan, BackendKind, Error, ReduceOp, ReduceSpec, Reducer, Reducible, Residency,
    RowReduceOp, SegmentReduceOp,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::array::{check_disjoint, empty, HostArray, RawSlice};
use crate::backend::select;
use crate::cache::PlanCache;
use crate::cuda::{check_output, place_of, CudaCall, DeviceArray, Idle, Place};
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::exec::shape_str;
use crate::layout::Layout;
use crate::owned::Owned;
use crate::plan::cuda_auto;

/// A plan of one input dtype.
enum State {
    F32(AutoReducePlan<f32>),
    F64(AutoReducePlan<f64>),
    F16(AutoReducePlan<f16>),
    BF16(AutoReducePlan<bf16>),
}

/// A reduction planned once and called many times without allocating (with ``out=``).
///
/// ``ReducePlan(op, *, len=None, rows=None, cols=None, offsets=None, dtype="float64",
/// backend="auto", device="cpu")``; the size arguments choose the kind:
///
/// - ``len``: the whole array to one value. ``op``: ``"sum"``, ``"mean"``, ``"min"``,
///   ``"max"``, ``"max_abs"``, ``"dot"``, ``"max_abs_diff"``, ``"max_rel_diff"``. ``x``: any
///   shape with ``len`` elements; ``y`` (``dot``, ``max_abs_diff``, ``max_rel_diff``): ``x``'s
///   shape. Output: shape ``()``.
/// - ``rows`` and ``cols``: over the rows of a ``(rows, cols)`` matrix, one value per
///   column. ``op``: ``"sum"``, ``"mean"``, ``"max"``, ``"weighted_mean"`` (``y``: ``(rows,)``
///   weights). Output: ``(cols,)``.
/// - ``offsets``: over ragged segments of a 1-D array of ``offsets[-1]`` elements, segment
///   ``s`` being ``x[offsets[s]:offsets[s + 1]]`` (CSR row pointers). ``op``: ``"sum"``,
///   ``"mean"``, ``"max"``, ``"min"``, ``"dot"`` (``y``: ``x``'s shape). Output:
///   ``(len(offsets) - 1,)``.
///
/// ``dtype``: of the inputs, ``float32``, ``float64``, ``float16`` or ``bfloat16``; the output
/// is float32 for the half types (they accumulate in float32), else the input's. ``backend``:
/// ``"auto"`` (the cost model picks), ``"cpu"``, ``"wgpu"``, ``"cuda"``. ``device``:
/// ``"cpu"`` for host arrays, ``"cuda"`` for CUDA arrays (torch, CuPy; run on the CUDA
/// backend in place, on the caller's stream, without waiting, as :class:`EighPlan`).
///
/// Calling ``plan(x, y=None, *, out=None, stream=None)``
/// ------------------------------------------------------
/// Reads ``x`` (and ``y``) in place: C-contiguous arrays of the plan's dtype on its device.
/// Writes ``out`` (C-contiguous, writable, of the output's shape and dtype, not overlapping
/// the inputs) and returns it; without ``out`` a new array (numpy, or of ``x``'s framework
/// on its device). The GIL is released while it computes; calls on one plan take turns.
///
/// Raises
/// ------
/// TypeError
///     Inputs or outputs of another dtype than the plan's.
/// ValueError
///     Shapes that do not match the plan, non-contiguous arrays, arrays on another device
///     than the plan's, unknown ``op`` or bad sizes (decreasing offsets).
/// MemoryError
///     A plan that does not fit in memory.
/// RuntimeError
///     An unavailable backend, a device failure; use in a process forked from the maker's.
#[pyclass(frozen, module = "megabatch", name = "ReducePlan")]
pub struct ReducePlan {
    spec: ReduceSpec,
    dtype: Dtype,
    place: Place,
    backend: BackendKind,
    owned: Owned<State>,
}

/// Lengths of one call's operands, from the spec.
struct Lens {
    y: Option<usize>,
    out_shape: Vec<usize>,
}

fn lens(spec: &ReduceSpec) -> PyResult<Lens> {
    let shape = spec
        .shape()
        .map_err(|e| Python::attach(|py| to_py(py, e, None)))?;
    let out_shape = match spec {
        ReduceSpec::Full { .. } => vec![],
        _ => vec![shape.out_len],
    };
    Ok(Lens {
        y: shape.y_len,
        out_shape,
    })
}

impl ReducePlan {
    /// Makes the plan (the GIL released while it is made).
    pub fn create(
        py: Python<'_>,
        spec: ReduceSpec,
        dtype: Dtype,
        backend: &str,
        place: Place,
    ) -> PyResult<Self> {
        lens(&spec)?;
        let (auto, residency) = match place {
            Place::Host => (select(py, backend)?, Residency::Host),
            Place::Cuda(_) => (
                cuda_auto(py, backend)?,
                Residency::Device(BackendKind::Cuda),
            ),
        };
        let state = py
            .detach(|| -> Result<State, Error> {
                Ok(match dtype {
                    Dtype::F32 => State::F32(auto.plan_reduce_for(&spec, residency)?),
                    Dtype::F64 => State::F64(auto.plan_reduce_for(&spec, residency)?),
                    Dtype::F16 => State::F16(auto.plan_reduce_for(&spec, residency)?),
                    Dtype::BF16 => State::BF16(auto.plan_reduce_for(&spec, residency)?),
                })
            })
            .map_err(|e| to_py(py, e, None))?;
        let backend = match &state {
            State::F32(p) => p.backend(),
            State::F64(p) => p.backend(),
            State::F16(p) => p.backend(),
            State::BF16(p) => p.backend(),
        };
        Ok(ReducePlan {
            spec,
            dtype,
            place,
            backend,
            owned: Owned::new(auto, state, "ReducePlan"),
        })
    }

    /// `ValueError`/`TypeError` unless an input of `shape` and `dtype` (argument `what`, the
    /// second operand if `second`) fits the plan.
    fn check_input(
        &self,
        what: &str,
        shape: &[usize],
        dtype: Dtype,
        layout: Layout,
        second: bool,
    ) -> PyResult<()> {
        if dtype != self.dtype {
            return Err(PyTypeError::new_err(format!(
                "`{what}` is {}, the plan is for {}",
                dtype.name(),
                self.dtype.name()
            )));
        }
        if layout != Layout::RowMajor {
            return Err(PyValueError::new_err(format!(
                "`{what}` is not C-contiguous: megabatch reads arrays in place, in order; pass \
                 numpy.ascontiguousarray (torch: .contiguous())"
            )));
        }
        let wanted: Option<Vec<usize>> = match (&self.spec, second) {
            (ReduceSpec::Full { len, .. }, _) => {
                let count: usize = shape.iter().product();
                if count != *len {
                    return Err(PyValueError::new_err(format!(
                        "`{what}` has shape {} ({count} elements), the plan takes {len}",
                        shape_str(shape)
                    )));
                }
                None
            }
            (ReduceSpec::Rows { rows, cols, .. }, false) => Some(vec![*rows, *cols]),
            (ReduceSpec::Rows { rows, .. }, true) => Some(vec![*rows]),
            (ReduceSpec::Segments { offsets, .. }, _) => {
                Some(vec![offsets.last().copied().unwrap_or(0)])
            }
            _ => None,
        };
        match wanted {
            Some(w) if w != shape => Err(PyValueError::new_err(format!(
                "`{what}` has shape {}, the plan takes {}",
                shape_str(shape),
                shape_str(&w)
            ))),
            _ => Ok(()),
        }
    }

    /// `y` as the operation needs it: present for two-operand reductions, absent otherwise.
    fn check_y(&self, has_y: bool) -> PyResult<()> {
        let takes = lens(&self.spec)?.y.is_some();
        let name = match &self.spec {
            ReduceSpec::Rows { .. } => "weights",
            _ => "y",
        };
        match (takes, has_y) {
            (true, false) => Err(PyValueError::new_err(format!(
                "this reduction needs `{name}`"
            ))),
            (false, true) => Err(PyValueError::new_err(format!(
                "this reduction takes no `{name}`"
            ))),
            _ => Ok(()),
        }
    }

    /// A call: host or CUDA arrays, as the plan's place takes them.
    pub fn call<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
        stream: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.owned.check_process()?;
        let y = y.filter(|y| !y.is_none());
        let out = out.filter(|o| !o.is_none());
        self.check_y(y.is_some())?;
        match (place_of(x, "x")?, self.place) {
            (Place::Host, Place::Host) => self.call_host(py, x, y, out),
            (Place::Cuda(_), Place::Cuda(_)) => self.call_cuda(py, x, y, out, stream),
            (got, _) => Err(got.mismatch("x", "ReducePlan")),
        }
    }

    fn call_host<'py>(
        &self,
        py: Python<'py>,
        x_obj: &Bound<'py, PyAny>,
        y_obj: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = HostArray::import(x_obj, "x")?;
        self.check_input("x", &x.shape, x.dtype, x.layout, false)?;
        let y = match y_obj {
            Some(y_obj) => {
                let y = HostArray::import(y_obj, self.y_name())?;
                self.check_input(self.y_name(), &y.shape, y.dtype, y.layout, true)?;
                Some(y)
            }
            None => None,
        };
        let out_shape = lens(&self.spec)?.out_shape;
        let acc = self.dtype.accumulator();
        let out_obj = match out {
            Some(o) => o.clone(),
            None => empty(py, acc, &out_shape)?,
        };
        let o = HostArray::import(&out_obj, "out")?;
        check_host_output(&o, acc, &out_shape)?;
        check_out_apart(&o, &x, y.as_ref())?;
        let (rx, ry, ro) = (x.raw(), y.as_ref().map(HostArray::raw), o.raw());
        let result = py.detach(|| {
            let mut state = self.owned.lock()?;
            // SAFETY (every arm): `x`, `y`, `out` are alive until after `detach` returns,
            // hold the plan's dtype (`x`, `y`: checked; `out`: its accumulator, checked); `out`
            // is writable and overlaps neither input (`x` and `y` are only read and may
            // overlap each other).
            match &mut *state {
                // SAFETY: as above.
                State::F32(p) => unsafe { host::<f32>(&self.owned.auto, p, rx, ry, ro) },
                // SAFETY: as above.
                State::F64(p) => unsafe { host::<f64>(&self.owned.auto, p, rx, ry, ro) },
                // SAFETY: as above.
                State::F16(p) => unsafe { host::<f16>(&self.owned.auto, p, rx, ry, ro) },
                // SAFETY: as above.
                State::BF16(p) => unsafe { host::<bf16>(&self.owned.auto, p, rx, ry, ro) },
            }
        });
        drop((x, y, o));
        result.map_err(|e| to_py(py, e, None))?;
        Ok(out_obj)
    }

    fn y_name(&self) -> &'static str {
        match &self.spec {
            ReduceSpec::Rows { .. } => "weights",
            _ => "y",
        }
    }

    fn call_cuda<'py>(
        &self,
        py: Python<'py>,
        x_obj: &Bound<'py, PyAny>,
        y_obj: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
        stream: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut call = CudaCall::begin(py, &self.owned.auto, x_obj, stream)?;
        let x = call.import(x_obj, "x")?;
        self.check_input("x", &x.shape, x.dtype, x.layout, false)?;
        let y = match y_obj {
            Some(y_obj) => {
                let y = call.import(y_obj, self.y_name())?;
                self.check_input(self.y_name(), &y.shape, y.dtype, y.layout, true)?;
                Some(y)
            }
            None => None,
        };
        let out_shape = lens(&self.spec)?.out_shape;
        let acc = self.dtype.accumulator();
        let (out_obj, o) = match out {
            Some(o) => (o.clone(), call.import(o, "out")?),
            None => call.output(x_obj, "out", acc, &out_shape)?,
        };
        if o.dtype != acc || o.shape != out_shape {
            return Err(wrong_output(o.dtype, &o.shape, acc, &out_shape));
        }
        check_output(&o)?;
        check_disjoint(&[("out", o.bytes()), ("x", x.bytes())])?;
        if let Some(y) = &y {
            check_disjoint(&[("out", o.bytes()), ("y", y.bytes())])?;
        }
        let result = py.detach(|| {
            let mut state = self.owned.lock()?;
            // SAFETY (every arm): the arrays hold the plan's dtype (inputs) and its
            // accumulator (`out`), checked above, and stay alive in the call's pending entry
            // until the buffers are idle.
            match &mut *state {
                // SAFETY: as above.
                State::F32(p) => unsafe {
                    device::<f32>(&self.owned.auto, &call, p, &x, y.as_ref(), &o)
                },
                // SAFETY: as above.
                State::F64(p) => unsafe {
                    device::<f64>(&self.owned.auto, &call, p, &x, y.as_ref(), &o)
                },
                // SAFETY: as above.
                State::F16(p) => unsafe {
                    device::<f16>(&self.owned.auto, &call, p, &x, y.as_ref(), &o)
                },
                // SAFETY: as above.
                State::BF16(p) => unsafe {
                    device::<bf16>(&self.owned.auto, &call, p, &x, y.as_ref(), &o)
                },
            }
        });
        let buffers = result.map_err(|e| to_py(py, e, None))?;
        let mut arrays = vec![x, o];
        arrays.extend(y);
        call.finish(arrays, buffers, Vec::<Box<dyn Any + Send>>::new());
        Ok(out_obj)
    }
}

/// `out` overlaps neither input (the inputs may overlap each other).
fn check_out_apart(o: &HostArray, x: &HostArray, y: Option<&HostArray>) -> PyResult<()> {
    check_disjoint(&[("out", o.bytes()), ("x", x.bytes())])?;
    if let Some(y) = y {
        check_disjoint(&[("out", o.bytes()), ("y", y.bytes())])?;
    }
    Ok(())
}

fn wrong_output(got: Dtype, shape: &[usize], dtype: Dtype, wanted: &[usize]) -> PyErr {
    if got != dtype {
        return PyTypeError::new_err(format!(
            "`out` is {}, the reduction writes {}",
            got.name(),
            dtype.name()
        ));
    }
    PyValueError::new_err(format!(
        "`out` has shape {}, expected {}",
        shape_str(shape),
        shape_str(wanted)
    ))
}

/// A host output: `dtype`, exactly `shape`, C-contiguous, writable.
fn check_host_output(o: &HostArray, dtype: Dtype, shape: &[usize]) -> PyResult<()> {
    if o.dtype != dtype || o.shape != shape {
        return Err(wrong_output(o.dtype, &o.shape, dtype, shape));
    }
    if o.layout != Layout::RowMajor {
        return Err(PyValueError::new_err(
            "`out` must be C-contiguous: megabatch writes outputs in place",
        ));
    }
    if o.read_only {
        return Err(PyValueError::new_err("`out` is read-only"));
    }
    Ok(())
}

/// Runs the plan on host slices.
///
/// # Safety
/// `x`, `y` come from live [`HostArray`]s of `T`, `out` from a live writable one of `T::Acc`
/// overlapping neither.
unsafe fn host<T: Reducible>(
    auto: &Auto,
    plan: &mut AutoReducePlan<T>,
    x: RawSlice,
    y: Option<RawSlice>,
    out: RawSlice,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let (x, out) = unsafe { (x.slice::<T>(), out.slice_mut::<T::Acc>()) };
    // SAFETY: the caller's contract.
    let y = y.map(|y| unsafe { y.slice::<T>() });
    auto.reduce_host(plan, x, y, out)
}

/// Queues the plan on the call's queue over the borrowed arrays.
///
/// # Safety
/// `x`, `y` hold `T`, `out` holds `T::Acc`, all alive until the returned buffers are idle.
unsafe fn device<T: Reducible>(
    auto: &Auto,
    call: &CudaCall,
    plan: &mut AutoReducePlan<T>,
    x: &DeviceArray,
    y: Option<&DeviceArray>,
    out: &DeviceArray,
) -> Result<Vec<Box<dyn Idle>>, Error> {
    // SAFETY: the caller's contract.
    let (xb, mut ob) = unsafe { (call.borrow::<T>(x)?, call.borrow::<T::Acc>(out)?) };
    let yb = match y {
        // SAFETY: the caller's contract.
        Some(y) => Some(unsafe { call.borrow::<T>(y)? }),
        None => None,
    };
    auto.reduce_on(&call.auto_queue(), plan, &xb, yb.as_ref(), &mut ob)?;
    let mut keep: Vec<Box<dyn Idle>> = vec![Box::new(xb), Box::new(ob)];
    if let Some(yb) = yb {
        keep.push(Box::new(yb));
    }
    Ok(keep)
}

/// A name as the crate spells it (kebab-case; `_` accepted for `-`).
fn kebab(op: &str) -> String {
    op.to_ascii_lowercase().replace('_', "-")
}

/// The spec the constructor's arguments describe.
fn spec_of(
    op: &str,
    len: Option<usize>,
    rows: Option<usize>,
    cols: Option<usize>,
    offsets: Option<Vec<usize>>,
) -> PyResult<ReduceSpec> {
    let name = kebab(op);
    let unknown = |kind: &str| PyValueError::new_err(format!("unknown {kind} {op:?}"));
    match (len, rows, cols, offsets) {
        (Some(len), None, None, None) => {
            let op = ReduceOp::ALL
                .into_iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| unknown("reduction"))?;
            Ok(ReduceSpec::Full { op, len })
        }
        (None, Some(rows), Some(cols), None) => {
            let op = match name.as_str() {
                "sum" => RowReduceOp::Sum,
                "mean" => RowReduceOp::Mean,
                "max" => RowReduceOp::Max,
                "weighted-mean" => RowReduceOp::WeightedMean,
                _ => return Err(unknown("row reduction")),
            };
            Ok(ReduceSpec::Rows { op, rows, cols })
        }
        (None, None, None, Some(offsets)) => {
            let op = match name.as_str() {
                "sum" => SegmentReduceOp::Sum,
                "mean" => SegmentReduceOp::Mean,
                "max" => SegmentReduceOp::Max,
                "min" => SegmentReduceOp::Min,
                "dot" => SegmentReduceOp::Dot,
                _ => return Err(unknown("segment reduction")),
            };
            if offsets.is_empty() {
                return Err(PyValueError::new_err(
                    "offsets must have at least one entry (segments + 1)",
                ));
            }
            Ok(ReduceSpec::Segments { op, offsets })
        }
        _ => Err(PyValueError::new_err(
            "ReducePlan takes len= (whole arrays), rows= and cols= (over rows), or offsets= \
             (segments)",
        )),
    }
}

/// Non-negative integers (`ValueError`, not `OverflowError`, for negative ones).
fn counts(name: &str, values: Vec<i64>) -> PyResult<Vec<usize>> {
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {v}")))
        })
        .collect()
}

fn count(name: &str, value: Option<i64>) -> PyResult<Option<usize>> {
    value
        .map(|v| counts(name, vec![v]).map(|v| v[0]))
        .transpose()
}

#[pymethods]
impl ReducePlan {
    #[new]
    #[pyo3(signature = (op, *, len=None, rows=None, cols=None, offsets=None, dtype=None, backend="auto", device="cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        op: &str,
        len: Option<i64>,
        rows: Option<i64>,
        cols: Option<i64>,
        offsets: Option<Vec<i64>>,
        dtype: Option<&Bound<'_, PyAny>>,
        backend: &str,
        device: &str,
    ) -> PyResult<Self> {
        let offsets = offsets.map(|o| counts("offsets", o)).transpose()?;
        let spec = spec_of(
            op,
            count("len", len)?,
            count("rows", rows)?,
            count("cols", cols)?,
            offsets,
        )?;
        let dtype = match dtype {
            Some(d) if !d.is_none() => Dtype::from_py(d)?,
            _ => Dtype::F64,
        };
        Self::create(py, spec, dtype, backend, Place::parse(device)?)
    }

    /// ``plan(x, y=None, *, out=None, stream=None)``: see the class docs.
    #[pyo3(signature = (x, y=None, *, out=None, stream=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
        stream: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, x, y, out, stream)
    }

    /// The input dtype: ``"float32"``, ``"float64"``, ``"float16"`` or ``"bfloat16"``.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// The output dtype (float32 for half-precision inputs).
    #[getter]
    fn out_dtype(&self) -> &'static str {
        self.dtype.accumulator().name()
    }

    /// The output's shape: ``()``, ``(cols,)`` or ``(segments,)``.
    #[getter]
    fn out_shape(&self) -> PyResult<Vec<usize>> {
        Ok(lens(&self.spec)?.out_shape)
    }

    /// The backend that runs the plan: ``"cpu"``, ``"wgpu"`` or ``"cuda"``.
    #[getter]
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Where the arrays of its calls live: ``"cpu"`` or ``"cuda"``.
    #[getter]
    fn device(&self) -> &'static str {
        self.place.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "ReducePlan({:?}, dtype='{}', backend='{}', device='{}')",
            self.spec,
            self.dtype.name(),
            self.backend.name(),
            self.place.name()
        )
    }
}

/// The CUDA plans of one-shot calls (see `cache.rs`).
static CUDA_PLANS: PlanCache<(ReduceSpec, Dtype, String), ReducePlan> = PlanCache::new();

/// A one-shot reduction: a plan for `spec` (kept between calls for CUDA arrays), run once.
fn once<'py>(
    py: Python<'py>,
    spec: ReduceSpec,
    x: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let place = place_of(x, "x")?;
    if let Place::Cuda(_) = place {
        cuda_auto(py, backend)?; // without a CUDA backend, the reason before any export
    }
    let dtype = input_dtype(x)?;
    match place {
        Place::Host => {
            // The layout before the plan: a broadcast array may claim more than memory holds.
            let a = HostArray::import(x, "x")?;
            if a.layout != Layout::RowMajor {
                return Err(PyValueError::new_err(
                    "`x` is not C-contiguous: megabatch reads arrays in place, in order; pass \
                     numpy.ascontiguousarray",
                ));
            }
            drop(a);
            ReducePlan::create(py, spec, dtype, backend, place)?.call(py, x, y, None, stream)
        }
        Place::Cuda(_) => {
            let key = (spec.clone(), dtype, backend.to_ascii_lowercase());
            let plan = CUDA_PLANS.get_or_make(py, key, || {
                ReducePlan::create(py, spec, dtype, backend, place)
            })?;
            plan.call(py, x, y, None, stream)
        }
    }
}

/// The dtype of an input, from its `dtype` attribute (numpy, torch, CuPy) or, for other
/// DLPack producers, its export.
fn input_dtype(x: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    match x.getattr("dtype") {
        Ok(d) => Dtype::from_py(&d)
            .map_err(|e| PyTypeError::new_err(format!("`x`: {}", e.value(x.py())))),
        Err(_) => Ok(HostArray::import(x, "x")?.dtype),
    }
}

/// The shape of an input, from its `shape` attribute or its export.
fn input_shape(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<usize>> {
    match x.getattr("shape") {
        Ok(s) => s.extract(),
        Err(_) => Ok(HostArray::import(x, what)?.shape),
    }
}

/// A whole array to one value: `op` names a [`ReduceOp`] as [`ReduceOp::name`] spells it
/// (`"sum"`, `"max"`, `"max-abs-diff"`, ...); `y`, of `x`'s shape and dtype, is the second
/// operand of those that take one. Returns a 0-d array of the output dtype (the caller makes
/// a numpy scalar of a host one).
#[pyfunction]
#[pyo3(name = "_reduce", signature = (op, x, y=None, *, backend="auto", stream=None))]
pub fn reduce<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = input_shape(x, "x")?;
    if let Some(y) = y.filter(|y| !y.is_none()) {
        let y_shape = input_shape(y, "y")?;
        if y_shape != shape {
            return Err(PyValueError::new_err(format!(
                "`y` has shape {}, `x` {}: they must be equal (no broadcasting)",
                shape_str(&y_shape),
                shape_str(&shape)
            )));
        }
    }
    let len = shape.iter().product();
    let spec = spec_of(op, Some(len), None, None, None)?;
    once(py, spec, x, y, backend, stream)
}

/// Over the rows of a `(rows, cols)` matrix `x`: `op` is `"sum"`, `"mean"`, `"max"` or
/// `"weighted-mean"` (with `y`, one weight per row). Returns a new `(cols,)` array.
#[pyfunction]
#[pyo3(name = "_reduce_rows", signature = (op, x, y=None, *, backend="auto", stream=None))]
pub fn reduce_rows<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = input_shape(x, "x")?;
    let &[rows, cols] = shape.as_slice() else {
        return Err(PyValueError::new_err(format!(
            "`x` has shape {}: a reduction over rows takes a 2-D (rows, cols) array",
            shape_str(&shape)
        )));
    };
    if let Some(y) = y.filter(|y| !y.is_none()) {
        let y_shape = input_shape(y, "weights")?;
        if y_shape != [rows] {
            return Err(PyValueError::new_err(format!(
                "`weights` has shape {}, `x` has {rows} rows: it takes ({rows},)",
                shape_str(&y_shape)
            )));
        }
    }
    let spec = spec_of(op, None, Some(rows), Some(cols), None)?;
    once(py, spec, x, y, backend, stream)
}

/// Over segments of a 1-D `x`: segment `s` is `x[offsets[s]:offsets[s + 1]]` (CSR row
/// pointers; `offsets[-1] == len(x)`). `op` is `"sum"`, `"mean"`, `"max"`, `"min"` or `"dot"`
/// (with `y`, of `x`'s shape). Returns a new `(len(offsets) - 1,)` array.
#[pyfunction]
#[pyo3(name = "_reduce_segments", signature = (op, x, offsets, y=None, *, backend="auto", stream=None))]
pub fn reduce_segments<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    offsets: Vec<i64>,
    y: Option<&Bound<'py, PyAny>>,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = input_shape(x, "values")?;
    let &[len] = shape.as_slice() else {
        return Err(PyValueError::new_err(format!(
            "`values` has shape {}: segment reductions take a 1-D array",
            shape_str(&shape)
        )));
    };
    let offsets = counts("offsets", offsets)?;
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
    let spec = spec_of(op, None, None, None, Some(offsets))?;
    once(py, spec, x, y, backend, stream)
}
