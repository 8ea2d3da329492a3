//! Block-sparse attention (`megabatch.attention` wraps this): the crate's
//! [`SparseAttention`] over `Auto`, planned for the arrays in hand and run once on them with
//! the GIL released, into new numpy arrays. The Python layer reads the FlexAttention
//! `BlockMask`, evaluates its `mask_mod` on the partial blocks and packs the bits; this side
//! validates everything again through [`BlockMask::from_parts_with_bits`].

use megabatch::attention::{
    AttentionSpec, BlockMask, BlockMaskParts, MaskPredicate, SparseAttention,
};
use megabatch::{Auto, Error};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::array::{empty, HostArray, RawSlice};
use crate::backend::select;
use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::exec::shape_str;
use crate::layout::Layout;

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
    /// `[sum(kv_num_blocks) * BQ * ceil(BK / 32)]` words ([`megabatch::attention::ElementBits`]).
    bits: Option<Bound<'py, PyBytes>>,
}

/// O (and LSE) of `softmax(scale * Q K^T + mask) V` for float32 CPU arrays: `q`
/// `[B, Hq, Sq, D]`, `k`, `v` `[B, Hkv, Skv, D]`, C-contiguous; `mask` the block lists
/// ([`MaskLists`], a dict). Returns `(o, lse)`: a new float32 `[B, Hq, Sq, D]`
/// array and, with `return_lse`, a new float32 `[B, Hq, Sq]` one (natural log), else `None`.
#[pyfunction]
#[pyo3(name = "_attention", signature = (q, k, v, mask, *, scale=None, return_lse=false, backend="auto"))]
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
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let (q, k, v) = (input(q, "q")?, input(k, "k")?, input(v, "v")?);
    let (&[b, hq, sq, d], &[bk, hkv, skv, dk]) = (q.shape.as_slice(), k.shape.as_slice()) else {
        return Err(PyValueError::new_err(format!(
            "`q` has shape {}, `k` {}: both must be 4-D [B, H, S, D]",
            shape_str(&q.shape),
            shape_str(&k.shape)
        )));
    };
    if bk != b || dk != d || v.shape != k.shape {
        return Err(PyValueError::new_err(format!(
            "`q` {}, `k` {}, `v` {}: k and v must be [B, Hkv, Skv, D] with q's B and D",
            shape_str(&q.shape),
            shape_str(&k.shape),
            shape_str(&v.shape)
        )));
    }
    let spec = AttentionSpec {
        batch: b,
        heads_q: hq,
        heads_kv: hkv,
        seq_q: sq,
        seq_kv: skv,
        head_dim: d,
        scale,
    };
    let parts = BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
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
    let bits = mask.bits.as_ref().map(|b| words(b, u32::from_le_bytes));
    let auto = select(py, backend)?;
    let o_obj = empty(py, Dtype::F32, &q.shape)?;
    let lse_obj = match return_lse {
        true => Some(empty(py, Dtype::F32, &[b, hq, sq])?),
        false => None,
    };
    let o = HostArray::import(&o_obj, "out")?;
    let lse = lse_obj
        .as_ref()
        .map(|l| HostArray::import(l, "lse"))
        .transpose()?;
    let raw = [q.raw(), k.raw(), v.raw()];
    let (ro, rlse) = (o.raw(), lse.as_ref().map(HostArray::raw));
    let result = py.detach(|| {
        let mask = match bits {
            Some(bits) => BlockMask::from_parts_with_bits(parts, bits)?,
            None => BlockMask::from_parts(parts)?,
        };
        // SAFETY: `q`, `k`, `v`, `o` and `lse` are alive until after `detach` returns and hold
        // float32 (`input` checked; `o` and `lse` were made so); `o` and `lse` are new writable
        // arrays no other slice covers; `q`, `k`, `v` are only read.
        unsafe { execute(&auto, &spec, &mask, raw, ro, rlse) }
    });
    drop((o, lse));
    result.map_err(|e| to_py(py, e, None))?;
    Ok((o_obj, lse_obj))
}

/// Plans `spec` over `auto` for host data and runs it once.
///
/// # Safety
/// `qkv`, `o` and `lse` come from live float32 [`HostArray`]s, `o` and `lse` writable and
/// overlapping nothing else.
unsafe fn execute(
    auto: &Auto,
    spec: &AttentionSpec,
    mask: &BlockMask,
    qkv: [RawSlice; 3],
    o: RawSlice,
    lse: Option<RawSlice>,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let [q, k, v] = qkv.map(|x| unsafe { x.slice::<f32>() });
    // SAFETY: the caller's contract.
    let (o, lse) = unsafe { (o.slice_mut::<f32>(), lse.map(|l| l.slice_mut::<f32>())) };
    let mut plan = SparseAttention::<f32>::plan_attention(auto, spec, mask)?;
    auto.attention_host(&mut plan, q, k, v, o, lse)
}

/// Imports an operand: float32, C-contiguous (read in place, in order).
fn input(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<HostArray> {
    let array = HostArray::import(obj, what)?;
    if array.dtype != Dtype::F32 {
        return Err(PyTypeError::new_err(format!(
            "`{what}` is {}: attention takes float32 (its scores and softmax are float32 on \
             every backend); convert with .astype(numpy.float32)",
            array.dtype.name()
        )));
    }
    if array.layout != Layout::RowMajor {
        return Err(PyValueError::new_err(format!(
            "`{what}` is not C-contiguous: megabatch reads arrays in place, in order; pass \
             numpy.ascontiguousarray"
        )));
    }
    Ok(array)
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
