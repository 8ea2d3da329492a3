//! Batched symmetric eigendecomposition (eigh): the spec ([`EighSpec`], `spec.rs`), the
//! per-matrix status codes (`status.rs`), the trait every backend implements ([`BatchedEigh`])
//! and its plan's name ([`EighPlan`]). Everything here is also re-exported at the crate root.

mod spec;
mod split;
mod status;

#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_imports))]
pub(crate) use spec::bucket_order;
pub use spec::{EighLayout, EighOffsets, EighSpec, MatrixSlot};
pub use split::EighPart;
pub use status::{eigh_info_result, EIGH_NON_FINITE, EIGH_NO_CONVERGENCE, EIGH_SOLVED};

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
    /// What it holds in memory is [`crate::PlanFootprint`]'s to say. Named [`EighPlan<B, T>`]
    /// outside the trait.
    type EighPlan: Send + crate::PlanFootprint;

    /// Makes a plan for `spec`: validates it and allocates every buffer `eigh` and
    /// `eigh_host` will use (GPU backends: the host staging of `eigh_host` too, so its first
    /// call allocates nothing; `plan_eigh_device` on a GPU backend makes a plan without it,
    /// for device buffers only), and the per-matrix status array of [`BatchedEigh::eigh_info`].
    /// `T` is not named here: the first call that uses the plan fixes it (see [`EighPlan`]).
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if buffer sizes overflow; [`crate::Error::Unsupported`] if the
    /// device cannot run `T` or the sizes; [`crate::Error::Device`] on allocation failure.
    fn plan_eigh(&self, spec: &EighSpec) -> Result<Self::EighPlan>;

    /// Decomposes every matrix in `a` (`[batch, n, n]` or ragged, see [`crate::EighLayout`]),
    /// writing eigenvalues to `w` and, if the plan asks for them, eigenvectors to `v`.
    /// Performs no heap or device allocation.
    ///
    /// On a GPU backend this queues the work and returns without waiting, so it cannot report
    /// a bad matrix as an error: each matrix's outcome goes to the plan's per-matrix status
    /// array on the device (read it with [`BatchedEigh::eigh_info`], or on the device through
    /// the backend's `info()` buffer), and a matrix with NaN/Inf input (or one that did not
    /// converge) gets NaN eigenvalues and eigenvectors, so its outputs never look plausible
    /// and a NaN-propagating reduction over them surfaces it. The CPU backend, whose buffers
    /// are host memory, behaves as [`BatchedEigh::eigh_host`] and records the status too.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if a buffer length differs from the spec's;
    /// [`crate::Error::PlanMismatch`] if the plan belongs to another backend instance or `v`
    /// is given without eigenvectors planned (or missing when they were);
    /// [`crate::Error::Device`] if the device fails. On the CPU, also the errors of
    /// [`BatchedEigh::eigh_host`] (`NonFinite` with `w` and `v` left unwritten).
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

    /// Like [`BatchedEigh::eigh`], but on host slices, waiting for the result: GPU backends
    /// stage through buffers the plan allocated when it was made (see each backend's plan
    /// docs), so this allocates nothing either. The per-matrix status is recorded as for
    /// [`BatchedEigh::eigh`].
    ///
    /// # Errors
    /// As [`BatchedEigh::eigh`], and [`crate::Error::NonFinite`] naming the first matrix with
    /// NaN or Inf in its lower triangle, in which case `w` and `v` are left unwritten;
    /// [`crate::Error::NoConvergence`] naming the first matrix whose iteration did not
    /// converge (the other matrices are written). A GPU plan made for device buffers only
    /// (`plan_eigh_device`) gives [`crate::Error::PlanMismatch`] until its host staging is
    /// prepared.
    fn eigh_host(
        &self,
        plan: &mut Self::EighPlan,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()>;

    /// Copies the per-matrix status of the last call on `plan` that reached the backend (an
    /// [`BatchedEigh::eigh`] or [`BatchedEigh::eigh_host`]; one that failed its shape or plan
    /// checks does not count) into `info`: one `i32` per matrix in batch order, the layout of
    /// cuSOLVER's batched `info`, with the codes [`EIGH_SOLVED`], [`EIGH_NON_FINITE`] and
    /// [`EIGH_NO_CONVERGENCE`] ([`eigh_info_result`] turns them into the host call's error).
    /// Before the first call every entry is [`EIGH_SOLVED`]. Waits for that call to finish
    /// (GPU backends: one copy from the plan's device array, whose buffer the backend also
    /// exposes for device-side use); allocates nothing.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] (`what: "info"`) unless `info.len()` is the batch size;
    /// [`crate::Error::PlanMismatch`] for a plan of another backend instance;
    /// [`crate::Error::Device`] if the device fails.
    fn eigh_info(&self, plan: &mut Self::EighPlan, info: &mut [i32]) -> Result<()>;
}

/// The eigh plan of backend `B` for element type `T`: `<B as BatchedEigh<T>>::EighPlan`
/// (for example [`crate::backends::cpu::CpuEighPlan<f64>`] for `EighPlan<Cpu, f64>`).
///
/// `T` is normally inferred from the first call that uses the plan, so a plan needs no type
/// named; this alias names it where no call does (a plan only made, measured, or expected to
/// fail) or in generic code:
///
/// ```
/// use megabatch::{backends::cpu::Cpu, BatchedEigh, EighPlan, EighSpec, PlanFootprint};
///
/// let cpu = Cpu::with_threads(1)?;
/// let plan: EighPlan<Cpu, f64> = cpu.plan_eigh(&EighSpec::uniform(20, 8))?;
/// assert_eq!(plan.device_bytes(), 0);
/// # Ok::<(), megabatch::Error>(())
/// ```
pub type EighPlan<B, T> = <B as BatchedEigh<T>>::EighPlan;
