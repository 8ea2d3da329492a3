//! Block-sparse attention: the native `_AttentionPlan` (`megabatch.AttentionPlan` wraps it) and
//! the one-shot `_attention` (`megabatch.attention`): the crate's [`SparseAttention`] over
//! `Auto`, planned once for a FlexAttention `BlockMask`'s lists and element bits (read by
//! `_block_mask.py`, validated again here through [`BlockMask::from_parts_with_bits`]), then
//! run on float32, float16 or bfloat16 arrays in place: host arrays with the GIL released,
//! CUDA arrays on the caller's stream without waiting (`cuda.rs`).

use std::any::Any;
use std::sync::Arc;

use half::{bf16, f16};
use megabatch::{
    AttentionElement, AttentionSpec, Auto, AutoAttentionPlan, BackendKind, BlockMask,
    BlockMaskParts, Error, MaskPredicate, Residency, SparseAttention,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::array::{check_disjoint, empty, HostArray, RawSlice};
use crate::backend::select;
use crate::cuda::{check_output, place_of, CudaCall, DeviceArray, Idle, Place};
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::exec::shape_str;
use crate::layout::Layout;
use crate::owned::Owned;
use crate::plan::cuda_auto;

/// The block lists of a FlexAttention `BlockMask`, as little-endian `int32` bytes, and the
/// element bits of its partial blocks as little-endian `uint32` bytes (`None`: every element
/// of a partial block kept, FlexAttention's `noop_mask`). Read from a dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct MaskLists<'py> {
    /// `(Bm, Hm)`: the mask's batch and head dimensions (the call's, or 1 to broadcast).
    dims: (usize, usize),
    /// `(BQ, BK)`.
    block: (usize, usize),
    /// `kv_num_blocks [Bm, Hm, QB]`.
    kv_num_blocks: Bound<'py, PyBytes>,
    /// `kv_indices [Bm, Hm, QB, KB]`.
    kv_indices: Bound<'py, PyBytes>,
    /// `full_kv_num_blocks`, `full_kv_indices`, same shapes, if the mask has them.
    full: Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>,
    /// `[sum(kv_num_blocks) * BQ * ceil(BK / 32)]` words ([`megabatch::ElementBits`]).
    bits: Option<Bound<'py, PyBytes>>,
}

/// A plan of one dtype.
enum State {
    F32(AutoAttentionPlan<f32>),
    F16(AutoAttentionPlan<f16>),
    BF16(AutoAttentionPlan<bf16>),
}

/// An attention plan: the spec, mask, dtype and backend fixed once (the mask's lists and bits
/// on the device), then calls that allocate nothing with `out=`. See
/// `megabatch.AttentionPlan` for the Python API.
#[pyclass(frozen, module = "megabatch", name = "_AttentionPlan")]
pub struct AttentionPlan {
    spec: AttentionSpec,
    dtype: Dtype,
    place: Place,
    backend: BackendKind,
    owned: Owned<State>,
}

/// The spec of `q [B, Hq, Sq, D]` and `k [B, Hkv, Skv, D]` shapes.
fn spec_of(q: &[usize], kv: &[usize], scale: Option<f32>) -> PyResult<AttentionSpec> {
    let (&[b, hq, sq, d], &[bk, hkv, skv, dk]) = (q, kv) else {
        return Err(PyValueError::new_err(format!(
            "`q` has shape {}, `k` {}: both must be 4-D [B, H, S, D]",
            shape_str(q),
            shape_str(kv)
        )));
    };
    if bk != b || dk != d {
        return Err(PyValueError::new_err(format!(
            "`q` {}, `k` {}: k and v must be [B, Hkv, Skv, D] with q's B and D",
            shape_str(q),
            shape_str(kv)
        )));
    }
    Ok(AttentionSpec {
        batch: b,
        heads_q: hq,
        heads_kv: hkv,
        seq_q: sq,
        seq_kv: skv,
        head_dim: d,
        scale,
    })
}

/// The lists and bits as the crate takes them (copied out of the Python bytes).
fn mask_parts(spec: &AttentionSpec, mask: &MaskLists<'_>) -> (BlockMaskParts, Option<Vec<u32>>) {
    let parts = BlockMaskParts {
        seq_q: spec.seq_q,
        seq_kv: spec.seq_kv,
        block: mask.block,
        batch: mask.dims.0,
        heads: mask.dims.1,
        kv_num_blocks: words(&mask.kv_num_blocks, i32::from_le_bytes),
        kv_indices: words(&mask.kv_indices, i32::from_le_bytes),
        full: mask
            .full
            .as_ref()
            .map(|(n, i)| (words(n, i32::from_le_bytes), words(i, i32::from_le_bytes))),
        predicate: MaskPredicate::None,
    };
    (
        parts,
        mask.bits.as_ref().map(|b| words(b, u32::from_le_bytes)),
    )
}

/// The crate's block mask from the lists (validated there).
fn block_mask(parts: BlockMaskParts, bits: Option<Vec<u32>>) -> Result<BlockMask, Error> {
    match bits {
        Some(bits) => BlockMask::from_parts_with_bits(parts, bits),
        None => BlockMask::from_parts(parts),
    }
}

impl AttentionPlan {
    /// Makes the plan (the mask validated and the plan made with the GIL released: a CUDA
    /// plan may compile its kernel on first use).
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        spec: AttentionSpec,
        mask: &MaskLists<'_>,
        dtype: Dtype,
        backend: &str,
        place: Place,
    ) -> PyResult<Self> {
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(PyTypeError::new_err(format!(
                "attention takes float32, float16 or bfloat16, not {} (its scores and softmax \
                 are float32 on every backend: float64 would be rounded silently)",
                dtype.name()
            )));
        }
        let (auto, residency) = match place {
            Place::Host => (select(py, backend)?, Residency::Host),
            Place::Cuda(_) => (
                cuda_auto(py, backend)?,
                Residency::Device(BackendKind::Cuda),
            ),
        };
        let (parts, bits) = mask_parts(&spec, mask);
        let mask = py
            .detach(|| block_mask(parts, bits))
            .map_err(|e| to_py(py, e, None))?;
        let state = py
            .detach(|| -> Result<State, Error> {
                Ok(match dtype {
                    Dtype::F16 => State::F16(auto.plan_attention_for(&spec, &mask, residency)?),
                    Dtype::BF16 => State::BF16(auto.plan_attention_for(&spec, &mask, residency)?),
                    _ => State::F32(auto.plan_attention_for(&spec, &mask, residency)?),
                })
            })
            .map_err(|e| {
                let hint = match (&e, dtype, place) {
                    (Error::Unsupported { .. }, Dtype::F16 | Dtype::BF16, Place::Host) => {
                        " (no backend of this process runs this dtype: the CPU takes float16 \
                         and bfloat16, wgpu float16 with SHADER_F16, CUDA both from sm_80)"
                    }
                    _ => "",
                };
                let err = to_py(py, e, None);
                if hint.is_empty() {
                    err
                } else {
                    PyValueError::new_err(format!("{}{hint}", err.value(py)))
                }
            })?;
        let backend = match &state {
            State::F32(p) => p.backend(),
            State::F16(p) => p.backend(),
            State::BF16(p) => p.backend(),
        };
        Ok(AttentionPlan {
            spec,
            dtype,
            place,
            backend,
            owned: Owned::new(auto, state, "AttentionPlan"),
        })
    }

    fn shapes(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let s = &self.spec;
        (
            vec![s.batch, s.heads_q, s.seq_q, s.head_dim],
            vec![s.batch, s.heads_kv, s.seq_kv, s.head_dim],
            vec![s.batch, s.heads_q, s.seq_q],
        )
    }

    /// `TypeError`/`ValueError` unless an input fits: the plan's dtype, `shape`, C-contiguous.
    fn check(
        &self,
        what: &str,
        shape: &[usize],
        dtype: Dtype,
        layout: Layout,
        wanted: &[usize],
    ) -> PyResult<()> {
        if dtype != self.dtype {
            return Err(PyTypeError::new_err(format!(
                "`{what}` is {}, the plan is for {}",
                dtype.name(),
                self.dtype.name()
            )));
        }
        if shape != wanted {
            return Err(PyValueError::new_err(format!(
                "`{what}` has shape {}, the plan takes {}",
                shape_str(shape),
                shape_str(wanted)
            )));
        }
        if layout != Layout::RowMajor {
            return Err(PyValueError::new_err(format!(
                "`{what}` is not C-contiguous: megabatch reads arrays in place, in order; pass \
                 numpy.ascontiguousarray (torch: .contiguous())"
            )));
        }
        Ok(())
    }

    /// A call on host or CUDA arrays; `keep` (a one-shot call's own plan) must outlive a CUDA
    /// call's queued work. Returns `(o, lse or None)`.
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        qkv: [&Bound<'py, PyAny>; 3],
        out: Option<&Bound<'py, PyAny>>,
        lse: Option<&Bound<'py, PyAny>>,
        return_lse: bool,
        stream: Option<&Bound<'py, PyAny>>,
        keep: Option<Box<dyn Any + Send>>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        self.owned.check_process()?;
        let out = out.filter(|o| !o.is_none());
        let lse = lse.filter(|l| !l.is_none());
        let return_lse = return_lse || lse.is_some();
        match (place_of(qkv[0], "q")?, self.place) {
            (Place::Host, Place::Host) => self.run_host(py, qkv, out, lse, return_lse),
            (Place::Cuda(_), Place::Cuda(_)) => {
                self.run_cuda(py, qkv, out, lse, return_lse, stream, keep)
            }
            (got, _) => Err(got.mismatch("q", "AttentionPlan")),
        }
    }

    fn run_host<'py>(
        &self,
        py: Python<'py>,
        qkv: [&Bound<'py, PyAny>; 3],
        out: Option<&Bound<'py, PyAny>>,
        lse: Option<&Bound<'py, PyAny>>,
        return_lse: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        let (q_shape, kv_shape, lse_shape) = self.shapes();
        let mut arrays = Vec::with_capacity(3);
        for (obj, (what, shape)) in
            qkv.iter()
                .zip([("q", &q_shape), ("k", &kv_shape), ("v", &kv_shape)])
        {
            let a = HostArray::import(obj, what)?;
            self.check(what, &a.shape, a.dtype, a.layout, shape)?;
            arrays.push(a);
        }
        let o_obj = match out {
            Some(o) => o.clone(),
            None => host_empty(py, qkv[0], self.dtype, &q_shape)?,
        };
        let lse_obj = match (lse, return_lse) {
            (Some(l), _) => Some(l.clone()),
            (None, true) => Some(empty(py, Dtype::F32, &lse_shape)?),
            (None, false) => None,
        };
        let o = HostArray::import(&o_obj, "out")?;
        check_host_out(&o, self.dtype, &q_shape)?;
        let l = match &lse_obj {
            Some(l) => {
                let l = HostArray::import(l, "lse")?;
                check_host_out(&l, Dtype::F32, &lse_shape)?;
                Some(l)
            }
            None => None,
        };
        let mut ranges = vec![("out", o.bytes())];
        if let Some(l) = &l {
            ranges.push(("lse", l.bytes()));
        }
        for (a, name) in arrays.iter().zip(["q", "k", "v"]) {
            ranges.push((name, a.bytes()));
            check_disjoint(&ranges)?;
            ranges.pop();
        }
        check_disjoint(&ranges)?;
        let raw = [arrays[0].raw(), arrays[1].raw(), arrays[2].raw()];
        let (ro, rl) = (o.raw(), l.as_ref().map(HostArray::raw));
        let result = py.detach(|| {
            let mut state = self.owned.lock()?;
            // SAFETY (every arm): `q`, `k`, `v`, `o` and `lse` are alive until after `detach`
            // returns, `q`, `k`, `v` and `o` hold the plan's dtype (checked), `lse` float32;
            // `o` and `lse` are writable and overlap nothing else; `q`, `k`, `v` are only read.
            match &mut *state {
                // SAFETY: as above.
                State::F32(p) => unsafe { host::<f32>(&self.owned.auto, p, raw, ro, rl) },
                // SAFETY: as above.
                State::F16(p) => unsafe { host::<f16>(&self.owned.auto, p, raw, ro, rl) },
                // SAFETY: as above.
                State::BF16(p) => unsafe { host::<bf16>(&self.owned.auto, p, raw, ro, rl) },
            }
        });
        drop((arrays, o, l));
        result.map_err(|e| to_py(py, e, None))?;
        Ok((o_obj, lse_obj))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_cuda<'py>(
        &self,
        py: Python<'py>,
        qkv: [&Bound<'py, PyAny>; 3],
        out: Option<&Bound<'py, PyAny>>,
        lse: Option<&Bound<'py, PyAny>>,
        return_lse: bool,
        stream: Option<&Bound<'py, PyAny>>,
        keep: Option<Box<dyn Any + Send>>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        let (q_shape, kv_shape, lse_shape) = self.shapes();
        let mut call = CudaCall::begin(py, &self.owned.auto, qkv[0], stream)?;
        let mut arrays = Vec::with_capacity(5);
        for (obj, (what, shape)) in
            qkv.iter()
                .zip([("q", &q_shape), ("k", &kv_shape), ("v", &kv_shape)])
        {
            let a = call.import(obj, what)?;
            self.check(what, &a.shape, a.dtype, a.layout, shape)?;
            arrays.push(a);
        }
        let (o_obj, o) = match out {
            Some(o) => (o.clone(), call.import(o, "out")?),
            None => call.output(qkv[0], "out", self.dtype, &q_shape)?,
        };
        check_device_out(&o, self.dtype, &q_shape)?;
        let (lse_obj, l) = match (lse, return_lse) {
            (Some(l), _) => (Some(l.clone()), Some(call.import(l, "lse")?)),
            (None, true) => {
                let (obj, l) = call.output(qkv[0], "lse", Dtype::F32, &lse_shape)?;
                (Some(obj), Some(l))
            }
            (None, false) => (None, None),
        };
        if let Some(l) = &l {
            check_device_out(l, Dtype::F32, &lse_shape)?;
        }
        let mut ranges = vec![("out", o.bytes())];
        if let Some(l) = &l {
            ranges.push(("lse", l.bytes()));
        }
        for (a, name) in arrays.iter().zip(["q", "k", "v"]) {
            ranges.push((name, a.bytes()));
            check_disjoint(&ranges)?;
            ranges.pop();
        }
        check_disjoint(&ranges)?;
        let result = py.detach(|| {
            let mut state = self.owned.lock()?;
            let [q, k, v] = [&arrays[0], &arrays[1], &arrays[2]];
            // SAFETY (every arm): the arrays hold the plan's dtype (`lse` float32), checked
            // above, and stay alive in the call's pending entry until the buffers are idle.
            match &mut *state {
                // SAFETY: as above.
                State::F32(p) => unsafe {
                    device::<f32>(&self.owned.auto, &call, p, [q, k, v], &o, l.as_ref())
                },
                // SAFETY: as above.
                State::F16(p) => unsafe {
                    device::<f16>(&self.owned.auto, &call, p, [q, k, v], &o, l.as_ref())
                },
                // SAFETY: as above.
                State::BF16(p) => unsafe {
                    device::<bf16>(&self.owned.auto, &call, p, [q, k, v], &o, l.as_ref())
                },
            }
        });
        let buffers = result.map_err(|e| to_py(py, e, None))?;
        arrays.push(o);
        arrays.extend(l);
        call.finish(arrays, buffers, keep.into_iter().collect());
        Ok((o_obj, lse_obj))
    }
}

/// A new host output like `like`: numpy for float32 and float16; for bfloat16, which numpy
/// lacks, an array of `like`'s framework (a torch CPU tensor).
fn host_empty<'py>(
    py: Python<'py>,
    like: &Bound<'py, PyAny>,
    dtype: Dtype,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    if dtype != Dtype::BF16 {
        return empty(py, dtype, shape);
    }
    py.import(intern!(py, "megabatch._device"))?
        .getattr(intern!(py, "empty"))?
        .call1((like, shape.to_vec(), dtype.name()))
}

fn check_host_out(o: &HostArray, dtype: Dtype, shape: &[usize]) -> PyResult<()> {
    check_out_kind(&o.name, o.dtype, &o.shape, dtype, shape)?;
    if o.layout != Layout::RowMajor || o.read_only {
        return Err(PyValueError::new_err(format!(
            "`{}` must be C-contiguous and writable: megabatch writes outputs in place",
            o.name
        )));
    }
    Ok(())
}

fn check_device_out(o: &DeviceArray, dtype: Dtype, shape: &[usize]) -> PyResult<()> {
    check_out_kind(&o.name, o.dtype, &o.shape, dtype, shape)?;
    check_output(o)
}

/// `TypeError` unless an output named `name` of `got_dtype` is `dtype`, `ValueError` unless
/// `got_shape` is exactly `shape`.
fn check_out_kind(
    name: &str,
    got_dtype: Dtype,
    got_shape: &[usize],
    dtype: Dtype,
    shape: &[usize],
) -> PyResult<()> {
    if got_dtype != dtype {
        return Err(PyTypeError::new_err(format!(
            "`{name}` is {}, the call writes {}",
            got_dtype.name(),
            dtype.name()
        )));
    }
    if got_shape != shape {
        return Err(PyValueError::new_err(format!(
            "`{name}` has shape {}, expected {}",
            shape_str(got_shape),
            shape_str(shape)
        )));
    }
    Ok(())
}

/// Runs the plan on host slices.
///
/// # Safety
/// `qkv` and `o` come from live [`HostArray`]s of `T`, `lse` of f32; `o` and `lse` writable
/// and overlapping nothing else.
unsafe fn host<T: AttentionElement>(
    auto: &Auto,
    plan: &mut AutoAttentionPlan<T>,
    qkv: [RawSlice; 3],
    o: RawSlice,
    lse: Option<RawSlice>,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let [q, k, v] = qkv.map(|x| unsafe { x.slice::<T>() });
    // SAFETY: the caller's contract.
    let (o, lse) = unsafe { (o.slice_mut::<T>(), lse.map(|l| l.slice_mut::<f32>())) };
    auto.attention_host(plan, q, k, v, o, lse)
}

/// Queues the plan on the call's queue over the borrowed arrays.
///
/// # Safety
/// `qkv` and `o` hold `T`, `lse` f32, all alive until the returned buffers are idle.
unsafe fn device<T: AttentionElement>(
    auto: &Auto,
    call: &CudaCall,
    plan: &mut AutoAttentionPlan<T>,
    qkv: [&DeviceArray; 3],
    o: &DeviceArray,
    lse: Option<&DeviceArray>,
) -> Result<Vec<Box<dyn Idle>>, Error> {
    // SAFETY: the caller's contract.
    let (qb, kb, vb) = unsafe {
        (
            call.borrow::<T>(qkv[0])?,
            call.borrow::<T>(qkv[1])?,
            call.borrow::<T>(qkv[2])?,
        )
    };
    // SAFETY: the caller's contract.
    let mut ob = unsafe { call.borrow::<T>(o)? };
    let mut lb = match lse {
        // SAFETY: the caller's contract.
        Some(l) => Some(unsafe { call.borrow::<f32>(l)? }),
        None => None,
    };
    auto.attention_on(
        &call.auto_queue(),
        plan,
        &qb,
        &kb,
        &vb,
        &mut ob,
        lb.as_mut(),
    )?;
    let mut keep: Vec<Box<dyn Idle>> = vec![Box::new(qb), Box::new(kb), Box::new(vb), Box::new(ob)];
    if let Some(lb) = lb {
        keep.push(Box::new(lb));
    }
    Ok(keep)
}

/// The dtype and shape of `x` from its attributes (numpy, torch, CuPy), or its export.
fn meta(x: &Bound<'_, PyAny>, what: &str) -> PyResult<(Dtype, Vec<usize>)> {
    let py = x.py();
    match (
        x.getattr(intern!(py, "dtype")),
        x.getattr(intern!(py, "shape")),
    ) {
        (Ok(d), Ok(s)) => Ok((
            Dtype::from_py(&d)
                .map_err(|e| PyTypeError::new_err(format!("`{what}`: {}", e.value(py))))?,
            s.extract()?,
        )),
        _ => {
            let a = HostArray::import(x, what)?;
            Ok((a.dtype, a.shape))
        }
    }
}

#[pymethods]
impl AttentionPlan {
    /// ``_AttentionPlan(mask, q_shape, kv_shape, dtype, *, scale=None, backend="auto",
    /// device="cpu")``: ``mask`` the dict of ``_block_mask.read_block_mask``.
    #[new]
    #[pyo3(signature = (mask, q_shape, kv_shape, dtype, *, scale=None, backend="auto", device="cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        mask: MaskLists<'_>,
        q_shape: Vec<usize>,
        kv_shape: Vec<usize>,
        dtype: &Bound<'_, PyAny>,
        scale: Option<f32>,
        backend: &str,
        device: &str,
    ) -> PyResult<Self> {
        let spec = spec_of(&q_shape, &kv_shape, scale)?;
        Self::create(
            py,
            spec,
            &mask,
            Dtype::from_py(dtype)?,
            backend,
            Place::parse(device)?,
        )
    }

    /// ``plan(q, k, v, *, out=None, lse=None, return_lse=False, stream=None)`` -> ``(o, lse)``
    /// (``lse`` ``None`` unless asked for or given).
    #[pyo3(signature = (q, k, v, *, out=None, lse=None, return_lse=false, stream=None))]
    #[allow(clippy::too_many_arguments)]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        q: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        lse: Option<&Bound<'py, PyAny>>,
        return_lse: bool,
        stream: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (o, l) = self.run(py, [q, k, v], out, lse, return_lse, stream, None)?;
        PyTuple::new(py, [Some(o), l])
    }

    /// ``"float32"``, ``"float16"`` or ``"bfloat16"``.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
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
}

/// O (and LSE) of `softmax(scale * Q K^T + mask) V`: `q` `[B, Hq, Sq, D]`, `k`, `v`
/// `[B, Hkv, Skv, D]`, float32, float16 or bfloat16, C-contiguous, on the CPU or CUDA; `mask`
/// the block lists ([`MaskLists`], a dict). A plan made for the call and run once (on CUDA,
/// dropped once its work finished). Returns `(o, lse)`: `o` of `q`'s dtype and shape, and with
/// `return_lse` a float32 `[B, Hq, Sq]` array (natural log), else `None`.
#[pyfunction]
#[pyo3(name = "_attention", signature = (q, k, v, mask, *, scale=None, return_lse=false, backend="auto", stream=None))]
#[allow(clippy::too_many_arguments)]
pub fn attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    mask: MaskLists<'py>,
    scale: Option<f32>,
    return_lse: bool,
    backend: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let place = place_of(q, "q")?;
    let (dtype, q_shape) = meta(q, "q")?;
    let (_, kv_shape) = meta(k, "k")?;
    let spec = spec_of(&q_shape, &kv_shape, scale)?;
    let plan = Arc::new(AttentionPlan::create(
        py, spec, &mask, dtype, backend, place,
    )?);
    let keep: Option<Box<dyn Any + Send>> = match place {
        Place::Cuda(_) => Some(Box::new(Arc::clone(&plan))),
        Place::Host => None,
    };
    plan.run(py, [q, k, v], None, None, return_lse, stream, keep)
}

/// Little-endian 4-byte words of `bytes` (a trailing partial word is dropped; the crate's
/// length checks then name the list).
fn words<T>(bytes: &Bound<'_, PyBytes>, from: fn([u8; 4]) -> T) -> Vec<T> {
    bytes
        .as_bytes()
        .chunks_exact(4)
        .map(|c| from([c[0], c[1], c[2], c[3]]))
        .collect()
}
