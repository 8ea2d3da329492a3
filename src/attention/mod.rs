//! Block-sparse scaled-dot-product attention, forward pass: the spec ([`AttentionSpec`] and
//! the element types, `spec.rs`), the FlexAttention-format [`BlockMask`] (`mask.rs`) with the
//! element rules of its partial blocks (`predicate.rs`, `element_bits.rs`, `mask_mod.rs`), the
//! trait every backend implements ([`SparseAttention`]) and its plan's name
//! ([`AttentionPlan`]). Everything here is also re-exported at the crate root.

mod element_bits;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod kernel_rule;
mod mask;
mod mask_mod;
mod predicate;
mod spec;

pub use element_bits::ElementBits;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) use kernel_rule::KernelRule;
pub use mask::{BlockMask, BlockMaskParts, BLOCK_SIZES};
pub use predicate::MaskPredicate;
pub(crate) use spec::check_operand_lens;
pub(crate) use spec::check_operands;
pub use spec::{AttentionElement, AttentionSpec, HEAD_DIMS};

use crate::{Backend, Result};

/// Block-sparse attention `O = softmax(scale * Q K^T + mask) V` over the kept blocks of a
/// [`BlockMask`], with the log-sum-exp of each row, computed by the online-softmax recurrence of
/// FlashAttention (Dao et al., 2022; Dao, "FlashAttention-2", 2023): scores and statistics in
/// f32 whatever the input dtype, output in the input dtype. Rows with no kept key give O = 0 and
/// LSE = -inf, as FlexAttention does.
///
/// Non-finite input propagates as in torch's `scaled_dot_product_attention`, and is never an
/// error (on the device it could not be one without a host round trip; the host calls keep the
/// same results): a row whose kept scores include NaN (NaN in Q or K, or `inf * 0`) or +inf
/// gets O and LSE NaN (+inf makes the softmax `inf - inf`); a score of -inf counts as masked,
/// so a row whose kept scores are all -inf is an empty row (O = 0, LSE = -inf). Rows that never
/// meet the bad key (masked out, other heads, other batches) are unaffected. NaN or Inf in V
/// reaches the rows that weight it, as in any product.
pub trait SparseAttention<T: AttentionElement>: Backend {
    /// The mask, scratch and schedule for one spec.
    /// What it holds in memory is [`crate::PlanFootprint`]'s to say. Named
    /// [`AttentionPlan<B, T>`] outside the trait.
    type AttentionPlan: Send + crate::PlanFootprint;

    /// Checks that `mask` fits `spec` (sequence lengths, batch and head broadcast) and
    /// allocates everything `attention` and `attention_host` need (GPU backends: the host
    /// staging too; CUDA's `plan_attention_device` makes a plan without it). `T` is not named
    /// here: the first call that uses the plan fixes it (see [`AttentionPlan`]).
    ///
    /// # Errors
    /// As [`AttentionSpec::lens`]; [`crate::Error::Mask`] if the mask does not fit the spec.
    fn plan_attention(&self, spec: &AttentionSpec, mask: &BlockMask)
        -> Result<Self::AttentionPlan>;

    /// Computes O (and LSE if given) from Q, K, V in this backend's buffers, layouts as in
    /// [`AttentionSpec`]: the device-resident form, so a chain of operations on a GPU moves no
    /// data through the host. GPU backends enqueue the work and return; later calls and
    /// downloads on the same buffers are ordered after it. No allocation (wgpu creates one
    /// bind group for a new set of buffers and reuses it while the buffers stay the same).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] for wrong lengths; [`crate::Error::PlanMismatch`] for a plan of
    /// another backend instance; [`crate::Error::Device`] if the GPU rejects the work.
    fn attention(
        &self,
        plan: &mut Self::AttentionPlan,
        q: &Self::Buffer<T>,
        k: &Self::Buffer<T>,
        v: &Self::Buffer<T>,
        o: &mut Self::Buffer<T>,
        lse: Option<&mut Self::Buffer<f32>>,
    ) -> Result<()>;

    /// Like [`SparseAttention::attention`], queued on `queue` instead of the plan's own queue
    /// (see [`crate::BatchedEigh::eigh_on`] for the ordering).
    ///
    /// # Errors
    /// As [`SparseAttention::attention`], and [`crate::Error::PlanMismatch`] for a queue of
    /// another device (or, on the CPU, a worker pool with more threads than the plan has
    /// scratch for).
    #[allow(clippy::too_many_arguments)]
    fn attention_on(
        &self,
        queue: &Self::Queue,
        plan: &mut Self::AttentionPlan,
        q: &Self::Buffer<T>,
        k: &Self::Buffer<T>,
        v: &Self::Buffer<T>,
        o: &mut Self::Buffer<T>,
        lse: Option<&mut Self::Buffer<f32>>,
    ) -> Result<()>;

    /// Computes O (and LSE if given) from Q, K, V on host slices, layouts as in
    /// [`AttentionSpec`]. No allocation, the first call included (GPU plans stage through
    /// buffers they allocated when they were made).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] for wrong lengths; [`crate::Error::PlanMismatch`] for a plan of
    /// another backend instance, or a CUDA plan made for device buffers only whose host
    /// staging was not prepared; [`crate::Error::Device`] if the GPU fails.
    fn attention_host(
        &self,
        plan: &mut Self::AttentionPlan,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()>;
}

/// The attention plan of backend `B` for element type `T`:
/// `<B as SparseAttention<T>>::AttentionPlan` (for example
/// [`crate::backends::cpu::CpuAttentionPlan<f32>`] for `AttentionPlan<Cpu, f32>`). `T` is
/// normally inferred from the first call that uses the plan; this alias names it where no call
/// does (see [`crate::EighPlan`]).
pub type AttentionPlan<B, T> = <B as SparseAttention<T>>::AttentionPlan;
