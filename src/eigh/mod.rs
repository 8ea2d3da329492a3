//! Batched symmetric eigendecomposition (eigh): the spec and the trait every backend implements.

mod spec;

pub use spec::{EighLayout, EighOffsets, EighSpec, MatrixSlot};

use crate::{Backend, Real, Result};

/// Batched symmetric eigendecomposition, LAPACK `syevd`/`syevj` semantics for many small
/// matrices in one call: plan once (all allocation happens there), then execute many times.
///
/// Conventions (every backend): the lower triangle of each matrix is read; eigenvalues are
/// ascending; eigenvectors are orthonormal columns with their largest-magnitude component
/// positive. Layouts are in [`EighSpec`]. Each matrix is scaled by a power of two before it is
/// decomposed, so no intermediate overflows or underflows; an eigenvalue whose magnitude
/// exceeds the dtype's range (possible only when entries approach it: `|w| <= n max|a_ij|`)
/// comes back as +-inf, never NaN (found by fuzzing, see `docs/reliability.md`).
pub trait BatchedEigh<T: Real>: Backend {
    /// Everything one spec needs at execute time: offsets, scratch arenas, device buffers.
    /// What it holds in memory is [`crate::PlanFootprint`]'s to say.
    type EighPlan: Send + crate::PlanFootprint;

    /// Makes a plan for `spec`: validates it and allocates every buffer `eigh` will use.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if buffer sizes overflow; [`crate::Error::Unsupported`] if the
    /// device cannot run `T` or the sizes; [`crate::Error::Device`] on allocation failure.
    fn plan_eigh(&self, spec: &EighSpec) -> Result<Self::EighPlan>;

    /// Decomposes every matrix in `a` (`[batch, n, n]` or ragged, see [`crate::EighLayout`]),
    /// writing eigenvalues to `w` and, if the plan asks for them, eigenvectors to `v`.
    /// Performs no heap or device allocation.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if a buffer length differs from the spec's;
    /// [`crate::Error::PlanMismatch`] if the plan belongs to another backend instance or `v`
    /// is given without eigenvectors planned (or missing when they were);
    /// [`crate::Error::NonFinite`] naming the first matrix with NaN or Inf in its lower
    /// triangle, in which case `w` and `v` are left unwritten.
    fn eigh(
        &self,
        plan: &mut Self::EighPlan,
        a: &Self::Buffer<T>,
        w: &mut Self::Buffer<T>,
        v: Option<&mut Self::Buffer<T>>,
    ) -> Result<()>;

    /// Like [`BatchedEigh::eigh`], queued on `queue` instead of the plan's own queue: after the
    /// work queued there before, and before what is queued there after, with no host
    /// synchronisation on GPU backends. Successive calls of one plan stay ordered whatever
    /// queues they run on (the plan's workspace is ordered like a buffer).
    ///
    /// # Errors
    /// As [`BatchedEigh::eigh`], and [`crate::Error::PlanMismatch`] for a queue of another
    /// device (or, on the CPU, a worker pool with more threads than the plan has scratch for).
    fn eigh_on(
        &self,
        queue: &Self::Queue,
        plan: &mut Self::EighPlan,
        a: &Self::Buffer<T>,
        w: &mut Self::Buffer<T>,
        v: Option<&mut Self::Buffer<T>>,
    ) -> Result<()>;

    /// Like [`BatchedEigh::eigh`], but on host slices: GPU backends stage through buffers the
    /// plan owns, so this allocates nothing either.
    ///
    /// # Errors
    /// As [`BatchedEigh::eigh`].
    fn eigh_host(
        &self,
        plan: &mut Self::EighPlan,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()>;
}

/// The order a matrix of order `n` is padded to in its bucket (even, coarser as n grows, so a
/// ragged batch needs few dispatches and wastes at most ~12% of a sweep's rounds).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn bucket_order(n: usize) -> usize {
    let step = match n {
        0..=16 => 2,
        17..=32 => 4,
        33..=64 => 8,
        65..=128 => 16,
        _ => 32,
    };
    n.max(2).div_ceil(step) * step
}
