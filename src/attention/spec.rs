//! What an attention call computes: shapes, scale, and the element types it reads.

use crate::{Element, Error, Result};

/// Head dimensions the kernels support.
pub const HEAD_DIMS: [usize; 5] = [32, 64, 96, 128, 256];

/// An input/output dtype of attention: `f32`, `f16` or `bf16`. Scores, softmax statistics and
/// accumulation are always f32 (Q K^T overflows f16).
pub trait AttentionElement: Element {
    /// The value as f32 (exact).
    fn to_f32(self) -> f32;
    /// Rounds an f32 to this type (nearest, ties to even).
    fn from_f32(x: f32) -> Self;
}

impl AttentionElement for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
}
impl AttentionElement for half::f16 {
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        half::f16::from_f32(x)
    }
}
impl AttentionElement for half::bf16 {
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        half::bf16::from_f32(x)
    }
}

/// Shapes of one block-sparse attention forward pass. Layouts (row-major): Q and O
/// `[batch, heads_q, seq_q, head_dim]`, K and V `[batch, heads_kv, seq_kv, head_dim]`, LSE
/// `[batch, heads_q, seq_q]` (f32, natural log). Query head `h` reads key/value head
/// `h / (heads_q / heads_kv)` (grouped-query attention; equal counts are plain multi-head).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionSpec {
    /// B.
    pub batch: usize,
    /// Hq.
    pub heads_q: usize,
    /// Hkv (divides Hq).
    pub heads_kv: usize,
    /// Sq.
    pub seq_q: usize,
    /// Skv.
    pub seq_kv: usize,
    /// D, one of [`HEAD_DIMS`].
    pub head_dim: usize,
    /// Score scale; `None` means `1 / sqrt(head_dim)`.
    pub scale: Option<f32>,
}

impl AttentionSpec {
    /// One sequence of `seq` tokens attending to itself: batch 1, `heads` query and key/value
    /// heads (plain multi-head), head dimension `head_dim`, the default scale
    /// `1 / sqrt(head_dim)`. The shape the calibration, crossover and benchmark grids time.
    pub fn self_attention(heads: usize, seq: usize, head_dim: usize) -> Self {
        Self {
            batch: 1,
            heads_q: heads,
            heads_kv: heads,
            seq_q: seq,
            seq_kv: seq,
            head_dim,
            scale: None,
        }
    }

    /// The scale applied to Q K^T.
    pub fn softmax_scale(&self) -> f32 {
        self.scale.unwrap_or(1.0 / (self.head_dim as f32).sqrt())
    }

    /// Element counts of (Q and O, K and V, LSE).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unsupported head dimension, zero heads or Hq not a
    /// multiple of Hkv; [`Error::TooLarge`] if a length overflows.
    pub fn lens(&self) -> Result<(usize, usize, usize)> {
        if !HEAD_DIMS.contains(&self.head_dim) {
            return Err(Error::InvalidArgument(
                "head_dim must be 32, 64, 96, 128 or 256",
            ));
        }
        if self.heads_kv == 0 || self.heads_q == 0 || !self.heads_q.is_multiple_of(self.heads_kv) {
            return Err(Error::InvalidArgument(
                "heads_q must be a positive multiple of heads_kv",
            ));
        }
        let overflow = Error::TooLarge("attention tensor length overflows usize");
        let mul = |a: usize, b: usize| a.checked_mul(b).ok_or(overflow.clone());
        let lse = mul(mul(self.batch, self.heads_q)?, self.seq_q)?;
        let q = mul(lse, self.head_dim)?;
        let kv = mul(
            mul(mul(self.batch, self.heads_kv)?, self.seq_kv)?,
            self.head_dim,
        )?;
        Ok((q, kv, lse))
    }
}

impl AttentionSpec {
    /// [`AttentionSpec::lens`] after checking that `mask` fits this spec: what every backend's
    /// `plan_attention` does first.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens`]; [`Error::Mask`] if the mask's sequence lengths differ from
    /// the spec's or its batch/head dimensions are neither the spec's nor 1.
    pub fn lens_for(&self, mask: &super::BlockMask) -> Result<(usize, usize, usize)> {
        let lens = self.lens()?;
        if mask.seq_lens() != (self.seq_q, self.seq_kv) {
            return Err(Error::Mask {
                position: None,
                reason: "mask sequence lengths differ from the spec's",
            });
        }
        if !mask.fits(self.batch, self.heads_q) {
            return Err(Error::Mask {
                position: None,
                reason: "mask batch/head dimensions must equal the spec's or be 1",
            });
        }
        Ok(lens)
    }
}

/// Checks the operand lengths of an attention call against `lens` (from
/// [`AttentionSpec::lens`]): Q and O, K and V, LSE when given.
pub(crate) fn check_operands<T>(
    lens: (usize, usize, usize),
    q: &[T],
    k: &[T],
    v: &[T],
    o: &[T],
    lse: Option<&[f32]>,
) -> Result<()> {
    check_operand_lens(
        lens,
        [q.len(), k.len(), v.len(), o.len()],
        lse.map(<[f32]>::len),
    )
}

/// [`check_operands`] on lengths alone (device buffers): the lengths of Q, K, V, O, then LSE.
pub(crate) fn check_operand_lens(
    (q_len, kv_len, lse_len): (usize, usize, usize),
    [q, k, v, o]: [usize; 4],
    lse: Option<usize>,
) -> Result<()> {
    use crate::error::check_len;
    check_len("q", q_len, q)?;
    check_len("k", kv_len, k)?;
    check_len("v", kv_len, v)?;
    check_len("o", q_len, o)?;
    if let Some(l) = lse {
        check_len("lse", lse_len, l)?;
    }
    Ok(())
}
