//! `EighPlan`: a batch shape, dtype and backend fixed once, every buffer allocated once, then
//! called many times without allocating.

use megabatch::{Auto, AutoEighPlan, BackendKind, EighSpec, Error, PlanFootprint, Real, Residency};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::backend::select;
use crate::cuda::Place;
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::exec;
use crate::layout::Layout;
use crate::owned::Owned;

/// Which triangle of each matrix is read (`uplo`, LAPACK's and numpy's `UPLO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplo {
    Lower,
    Upper,
}

impl Uplo {
    /// `"L"` or `"U"` (either case).
    pub fn parse(uplo: &str) -> PyResult<Self> {
        match uplo {
            "L" | "l" => Ok(Uplo::Lower),
            "U" | "u" => Ok(Uplo::Upper),
            _ => Err(PyValueError::new_err(format!(
                "uplo must be 'L' or 'U', got {uplo:?}"
            ))),
        }
    }
}

/// The batch a plan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `batch` matrices of order `n`: inputs `[..., n, n]` with `batch` matrices in all.
    Uniform { n: usize, batch: usize },
    /// Matrices of orders `sizes`, packed row-major one after another in a 1-D array.
    Ragged { sizes: Vec<usize> },
}

impl Shape {
    /// The uniform batch of a `[..., n, n]` array's shape.
    ///
    /// # Errors
    /// `ValueError` for fewer than 2 dimensions or non-square matrices.
    pub fn uniform(shape: Vec<usize>) -> PyResult<Self> {
        let rank = shape.len();
        if rank < 2 || shape[rank - 1] != shape[rank - 2] {
            return Err(PyValueError::new_err(format!(
                "`a` has shape {}: eigh takes [..., n, n], square matrices",
                crate::exec::shape_str(&shape)
            )));
        }
        Ok(Shape::Uniform {
            n: shape[rank - 1],
            batch: shape[..rank - 2].iter().product(),
        })
    }

    /// The order of every matrix, in batch order.
    pub fn orders(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            Shape::Uniform { n, batch } => Box::new(std::iter::repeat_n(*n, *batch)),
            Shape::Ragged { sizes } => Box::new(sizes.iter().copied()),
        }
    }

    fn spec(&self) -> EighSpec {
        match self {
            Shape::Uniform { n, batch } => EighSpec::uniform(*n, *batch),
            Shape::Ragged { sizes } => EighSpec::ragged(sizes.clone()),
        }
    }

    /// Whether every matrix has order 0 or 1 (transposing them changes nothing).
    fn trivial(&self) -> bool {
        self.orders().all(|n| n <= 1)
    }
}

/// A plan of one dtype, with the buffer `uplo` may need.
pub struct Typed<T: Real> {
    pub plan: AutoEighPlan<T>,
    /// The transposed copy of the input (see `transpose.rs`); empty until a call needs it.
    pub scratch: Vec<T>,
}

/// A plan of either dtype.
pub enum State {
    F32(Typed<f32>),
    F64(Typed<f64>),
}

/// A plan for many eigh calls of one batch shape: everything allocated once, then calls
/// that allocate nothing (with ``out=``).
///
/// ``EighPlan(n, batch, *, dtype="float64", vectors=True, uplo="L", backend="auto",
/// device="cpu")``: ``batch`` matrices of order ``n``. ``EighPlan(*, sizes=[...], ...)``: a
/// ragged batch, matrix ``i`` of order ``sizes[i]``, packed as :func:`megabatch.eigh_ragged`
/// takes them.
///
/// Parameters
/// ----------
/// n, batch : int
///     Matrix order and number of matrices (uniform plans).
/// sizes : sequence of int
///     Matrix orders (ragged plans; then no ``n``, ``batch``).
/// dtype : "float32" or "float64" (or a numpy dtype)
/// vectors : bool
///     Whether calls compute eigenvectors.
/// uplo : {"L", "U"}
///     The triangle read. ``"U"`` reads a transposed copy (the plan holds its buffer) of
///     C-contiguous inputs; uniform inputs given as ``a.mT`` are read in place instead.
/// backend : {"auto", "cpu", "wgpu", "cuda"}
///     As for :func:`megabatch.eigh`; chosen once, for this plan (see ``backend``).
/// device : {"cpu", "cuda"}
///     Where the arrays of the calls live. ``"cpu"``: numpy arrays and CPU tensors (any
///     backend; a GPU one stages through host memory the plan holds). ``"cuda"``: torch CUDA
///     tensors, CuPy arrays or any DLPack array on CUDA device 0, run on the CUDA backend
///     in place (``backend`` must be ``"auto"`` or ``"cuda"``); the plan holds its device
///     workspace and no host staging.
///
/// Calling ``plan(a, *, out=None, stream=None, check_errors=False)``
/// ------------------------------------------------------------------
/// ``a``: uniform plans take ``[..., n, n]`` with ``batch`` matrices in all (any batch
/// dimensions: ``(batch, n, n)``, ``(2, batch // 2, n, n)``, ``(n, n)`` for ``batch=1``);
/// ragged plans a 1-D array of ``sum(n_i ** 2)`` values. The plan's dtype, on the CPU,
/// C-contiguous (or ``a.mT`` of C-contiguous, see ``uplo``); read in place.
/// ``out``: ``(w, v)`` (``w`` alone without vectors): C-contiguous, writable arrays of the
/// plan's dtype, ``w`` of shape ``a.shape[:-1]`` (ragged: ``[sum(n_i)]``) and ``v`` of
/// ``a``'s shape, not overlapping ``a`` or each other; written in place and returned. Without
/// ``out`` new numpy arrays are returned. Returns ``(w, v)``, or ``w`` without vectors, with
/// :func:`megabatch.eigh`'s conventions (ascending eigenvalues, eigenvectors as columns,
/// largest component positive).
///
/// A call allocates no array data (the DLPack handshake allocates a few small capsules).
/// The GIL is released while it computes. Plans may be shared between threads: calls on one
/// plan take turns.
///
/// CUDA plans (``device="cuda"``): ``a`` and ``out`` are CUDA arrays of one framework;
/// without ``out`` the outputs are new arrays of ``a``'s framework on its device
/// (``torch.empty``, ``cupy.empty``). The work is queued on ``stream`` (an ``int``
/// ``cudaStream_t``, a ``torch.cuda.Stream`` or a CuPy ``Stream``), by default the current
/// stream of ``a``'s framework, after the producer's pending work on the arrays (DLPack's
/// stream handshake), and the call returns without waiting: use the results on that stream
/// (torch's and CuPy's default) or synchronise it. No copy: the crate reads ``a`` and writes
/// ``w`` and ``v`` where they lie. megabatch keeps a reference to every array of the call
/// until its work has finished, so dropping them early is safe. ``uplo="U"`` takes ``a.mT``
/// of a C-contiguous array (``uplo="L"`` a C-contiguous one): there is no device transpose.
/// A matrix with NaN or Inf (or one that does not converge) gets NaN eigenvalues and
/// eigenvectors instead of an exception, as the call does not wait; ``check_errors=True``
/// waits for the call and raises :class:`LinAlgError` naming the first such matrix (CPU plans
/// always raise).
///
/// Raises
/// ------
/// TypeError
///     An input or output of another dtype than the plan's.
/// ValueError
///     Shapes that do not match the plan, a non-contiguous ``a``, outputs that are
///     read-only, non-contiguous or overlapping, arrays on a GPU; bad constructor arguments.
/// LinAlgError
///     NaN or Inf in the triangle read of some matrix (named in the message); the outputs
///     are left unwritten.
/// MemoryError
///     A plan whose buffers do not fit in memory (at construction).
/// RuntimeError
///     An unavailable backend (at construction), a device failure; any use in a process
///     forked from the one that made the plan (its threads and devices are not there).
#[pyclass(frozen, module = "megabatch", name = "EighPlan")]
pub struct EighPlan {
    pub shape: Shape,
    pub dtype: Dtype,
    pub vectors: bool,
    pub uplo: Uplo,
    pub backend: BackendKind,
    /// Elements of the input (and of `v`) and of `w`.
    pub a_len: usize,
    pub w_len: usize,
    /// The backend and the per-dtype state, bound to the process that made them (calls from
    /// many threads take turns on its lock; see `exec.rs`).
    pub owned: Owned<State>,
    /// Where the arrays of its calls live (`device=`).
    pub place: Place,
}

impl EighPlan {
    /// Makes the plan on the backend `backend=` names (the GIL released while it is made: a
    /// GPU plan may compile kernels) for arrays in `place`. `input_layout`: the layout inputs
    /// are expected in, to allocate the transpose buffer now if `uplo` will need it.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        py: Python<'_>,
        shape: Shape,
        dtype: Dtype,
        vectors: bool,
        uplo: Uplo,
        backend: &str,
        input_layout: Layout,
        place: Place,
    ) -> PyResult<Self> {
        dtype.check_real("dtype")?;
        let (auto, residency) = match place {
            Place::Host => (select(py, backend)?, Residency::Host),
            Place::Cuda(_) => (
                cuda_auto(py, backend)?,
                Residency::Device(BackendKind::Cuda),
            ),
        };
        let spec = shape.spec().with_vectors(vectors);
        let offsets = spec.offsets(dtype.size()).map_err(|e| to_py(py, e, None))?;
        let (a_len, w_len) = (offsets.a_len(), offsets.w_len());
        let scratch_len = if place == Place::Host && needs_transpose(&shape, uplo, input_layout) {
            a_len
        } else {
            0
        };
        let state = py
            .detach(|| -> Result<State, Error> {
                Ok(match dtype {
                    Dtype::F32 => State::F32(typed(&auto, &spec, scratch_len, residency)?),
                    _ => State::F64(typed(&auto, &spec, scratch_len, residency)?),
                })
            })
            .map_err(|e| to_py(py, e, None))?;
        let backend = match &state {
            State::F32(t) => t.plan.backend(),
            State::F64(t) => t.plan.backend(),
        };
        Ok(EighPlan {
            shape,
            dtype,
            vectors,
            uplo,
            backend,
            a_len,
            w_len,
            owned: Owned::new(auto, state, "EighPlan"),
            place,
        })
    }

    /// Whether a call with input of `layout` reads the plan's transposed copy.
    pub fn needs_transpose(&self, layout: Layout) -> bool {
        needs_transpose(&self.shape, self.uplo, layout)
    }
}

/// Whether the crate must read a transposed copy: it reads lower triangles of row-major
/// matrices, so `uplo="L"` reads a C-contiguous input in place and `uplo="U"` a transposed one.
fn needs_transpose(shape: &Shape, uplo: Uplo, layout: Layout) -> bool {
    !shape.trivial()
        && match layout {
            Layout::RowMajor => uplo == Uplo::Upper,
            Layout::Transposed => uplo == Uplo::Lower,
            Layout::Strided => false,
        }
}

fn typed<T: Real>(
    auto: &Auto,
    spec: &EighSpec,
    scratch_len: usize,
    residency: Residency,
) -> Result<Typed<T>, Error> {
    let plan = auto.plan_eigh_for::<T>(spec, residency)?;
    Ok(Typed {
        plan,
        scratch: zeroed(scratch_len)?,
    })
}

/// `len` zeros, or `TooLarge` if they cannot be allocated.
pub fn zeroed<T: Real>(len: usize) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::TooLarge("the transposed copy of the input (uplo) does not fit in memory")
    })?;
    v.resize(len, T::zero());
    Ok(v)
}

/// The `Auto` for plans on CUDA arrays: forced to the CUDA backend (`backend=` must be
/// `"auto"` or `"cuda"`: data on the GPU runs there).
///
/// # Errors
/// `ValueError` for another backend; `RuntimeError` if this process has no CUDA backend.
pub fn cuda_auto(py: Python<'_>, backend: &str) -> PyResult<Auto> {
    match backend.to_ascii_lowercase().as_str() {
        "auto" | "cuda" => select(py, "cuda"),
        other => Err(PyValueError::new_err(format!(
            "backend={other:?} with CUDA arrays: they run on the CUDA backend (\"auto\" or \
             \"cuda\"); copy them to the host for another"
        ))),
    }
}

/// The `dtype=` argument; float64 if absent.
fn dtype_arg(dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Dtype> {
    match dtype {
        Some(d) if !d.is_none() => Dtype::from_py(d),
        _ => Ok(Dtype::F64),
    }
}

/// A non-negative integer argument (`ValueError`, not `OverflowError`, for a negative one).
fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {value}")))
}

#[pymethods]
impl EighPlan {
    #[new]
    #[pyo3(signature = (n=None, batch=None, *, sizes=None, dtype=None, vectors=true, uplo="L", backend="auto", device="cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        n: Option<i64>,
        batch: Option<i64>,
        sizes: Option<Vec<i64>>,
        dtype: Option<&Bound<'_, PyAny>>,
        vectors: bool,
        uplo: &str,
        backend: &str,
        device: &str,
    ) -> PyResult<Self> {
        let shape = match (n, batch, sizes) {
            (Some(n), Some(batch), None) => Shape::Uniform {
                n: count("n", n)?,
                batch: count("batch", batch)?,
            },
            (None, None, Some(sizes)) => Shape::Ragged {
                sizes: sizes
                    .into_iter()
                    .map(|s| count("sizes[i]", s))
                    .collect::<PyResult<_>>()?,
            },
            _ => {
                return Err(PyValueError::new_err(
                    "EighPlan takes either n and batch (uniform) or sizes= (ragged)",
                ))
            }
        };
        let dtype = dtype_arg(dtype)?;
        let uplo = Uplo::parse(uplo)?;
        let place = Place::parse(device)?;
        let layout = match (place, uplo) {
            (Place::Cuda(_), Uplo::Upper) => Layout::Transposed,
            _ => Layout::RowMajor,
        };
        Self::create(py, shape, dtype, vectors, uplo, backend, layout, place)
    }

    /// ``plan(a, *, out=None, stream=None, check_errors=False)``: decomposes ``a`` into
    /// ``out`` (``(w, v)``, or ``w`` without vectors) or into new arrays, and returns them.
    /// See the class docs.
    #[pyo3(signature = (a, *, out=None, stream=None, check_errors=false))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        a: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        stream: Option<&Bound<'py, PyAny>>,
        check_errors: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        exec::call(py, self, a, out, stream, check_errors)
    }

    /// Each matrix's status in the last call: a new numpy ``int32`` array of ``batch``
    /// entries, 0 solved, 1 NaN or Inf in its triangle, 2 no convergence (the crate's
    /// ``EIGH_*`` codes). On a CUDA plan this waits for the last call. Zeros before the
    /// first call.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.owned.check_process()?;
        let codes = exec::info(py, self)?;
        py.import("numpy")?
            .getattr("asarray")?
            .call1((codes, "int32"))
    }

    /// Where the arrays of its calls live: ``"cpu"`` or ``"cuda"``.
    #[getter]
    fn device(&self) -> &'static str {
        self.place.name()
    }

    /// Matrix order of a uniform plan (`None` for a ragged one).
    #[getter]
    fn n(&self) -> Option<usize> {
        match self.shape {
            Shape::Uniform { n, .. } => Some(n),
            Shape::Ragged { .. } => None,
        }
    }

    /// Number of matrices.
    #[getter]
    fn batch(&self) -> usize {
        match &self.shape {
            Shape::Uniform { batch, .. } => *batch,
            Shape::Ragged { sizes } => sizes.len(),
        }
    }

    /// Matrix orders of a ragged plan (`None` for a uniform one).
    #[getter]
    fn sizes(&self) -> Option<Vec<usize>> {
        match &self.shape {
            Shape::Uniform { .. } => None,
            Shape::Ragged { sizes } => Some(sizes.clone()),
        }
    }

    /// `"float32"` or `"float64"`.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// Whether calls compute eigenvectors.
    #[getter]
    fn vectors(&self) -> bool {
        self.vectors
    }

    /// `"L"` or `"U"`.
    #[getter]
    fn uplo(&self) -> &'static str {
        match self.uplo {
            Uplo::Lower => "L",
            Uplo::Upper => "U",
        }
    }

    /// The backend that runs the plan: `"cpu"`, `"wgpu"` or `"cuda"`.
    #[getter]
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// ``(host_bytes, device_bytes)`` the plan holds: scratch, staging and the transpose
    /// buffer on the host; the chosen GPU's buffers.
    #[getter]
    fn footprint(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        self.owned.check_process()?;
        py.detach(|| {
            let state = self.owned.lock()?;
            Ok(match &*state {
                State::F32(t) => (
                    t.plan.scratch_bytes() + t.scratch.len() * 4,
                    t.plan.device_bytes(),
                ),
                State::F64(t) => (
                    t.plan.scratch_bytes() + t.scratch.len() * 8,
                    t.plan.device_bytes(),
                ),
            })
        })
        .map_err(|e| to_py(py, e, None))
    }

    fn __repr__(&self) -> String {
        let shape = match &self.shape {
            Shape::Uniform { n, batch } => format!("n={n}, batch={batch}"),
            Shape::Ragged { sizes } => {
                let shown: Vec<String> = sizes.iter().take(6).map(usize::to_string).collect();
                let more = if sizes.len() > 6 { ", ..." } else { "" };
                format!(
                    "sizes=[{}{more}] ({} matrices)",
                    shown.join(", "),
                    sizes.len()
                )
            }
        };
        format!(
            "EighPlan({shape}, dtype='{}', vectors={}, uplo='{}', backend='{}', device='{}')",
            self.dtype.name(),
            if self.vectors { "True" } else { "False" },
            self.uplo(),
            self.backend.name(),
            self.place.name()
        )
    }
}
