//! Deterministic reductions that keep device-resident loops resident (convergence checks,
//! expectation values, per-system sums): the spec ([`ReduceSpec`] and its operations,
//! `spec.rs`), the trait every backend implements ([`Reducer`]) and its plan's name
//! ([`ReducePlan`]). Everything here is also re-exported at the crate root.

mod spec;

pub use spec::{ReduceOp, ReduceShape, ReduceSpec, RowReduceOp, SegmentReduceOp};

use crate::{Backend, Reducible, Result};

/// Deterministic, NaN-propagating reductions with plan/execute like [`crate::BatchedEigh`].
///
/// Every backend sums pairwise over a fixed tree that depends only on the operand lengths
/// (Higham, "The accuracy of floating point summation", SIAM J. Sci. Comput. 14 (1993) 783;
/// the blocked form follows NumPy's `pairwise_sum`), so the same input gives the same bits
/// whatever the thread count or launch shape, and the error grows like `log2(len) eps sum|x_i|`.
/// A NaN anywhere in what an operation reads makes its result NaN, maxima included: a NaN never
/// reads as converged.
pub trait Reducer<T: Reducible>: Backend {
    /// Partial-result buffers sized for one spec.
    /// What it holds in memory is [`crate::PlanFootprint`]'s to say. Named
    /// [`ReducePlan<B, T>`] outside the trait.
    type ReducePlan: Send + crate::PlanFootprint;

    /// Validates `spec` and allocates everything `reduce` and `reduce_host` need (GPU
    /// backends: the host staging of `reduce_host` too; `plan_reduce_device` on a GPU
    /// backend makes a plan without it, for device buffers only). `T` is not named here: the
    /// first call that uses the plan fixes it (see [`ReducePlan`]).
    ///
    /// # Errors
    /// As [`ReduceSpec::shape`]; [`crate::Error::Device`] on allocation failure.
    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<Self::ReducePlan>;

    /// Reduces `x` (and `y`, for operations with a second operand or weights) into `out`,
    /// shapes as in [`ReduceSpec`]. No allocation.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] for wrong lengths; [`crate::Error::PlanMismatch`] if `y` is given
    /// to an operation without a second operand (or missing), or the plan belongs to another
    /// backend instance.
    fn reduce(
        &self,
        plan: &mut Self::ReducePlan,
        x: &Self::Buffer<T>,
        y: Option<&Self::Buffer<T>>,
        out: &mut Self::Buffer<T::Acc>,
    ) -> Result<()>;

    /// Like [`Reducer::reduce`], queued on `queue` instead of the plan's own queue (see
    /// [`crate::BatchedEigh::eigh_on`] for the ordering).
    ///
    /// # Errors
    /// As [`Reducer::reduce`], and [`crate::Error::PlanMismatch`] for a queue of another
    /// device.
    fn reduce_on(
        &self,
        queue: &Self::Queue,
        plan: &mut Self::ReducePlan,
        x: &Self::Buffer<T>,
        y: Option<&Self::Buffer<T>>,
        out: &mut Self::Buffer<T::Acc>,
    ) -> Result<()>;

    /// Like [`Reducer::reduce`], on host slices, waiting for the result. No allocation, the
    /// first call included (GPU plans stage through buffers they allocated when they were
    /// made).
    ///
    /// # Errors
    /// As [`Reducer::reduce`]; [`crate::Error::PlanMismatch`] also for a GPU plan made for
    /// device buffers only whose host staging was not prepared.
    fn reduce_host(
        &self,
        plan: &mut Self::ReducePlan,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()>;
}

/// The reduction plan of backend `B` for input type `T`: `<B as Reducer<T>>::ReducePlan`
/// (for example [`crate::backends::cpu::CpuReducePlan<f32>`] for `ReducePlan<Cpu, f32>`).
/// `T` is normally inferred from the first call that uses the plan; this alias names it where
/// no call does (see [`crate::EighPlan`]).
pub type ReducePlan<B, T> = <B as Reducer<T>>::ReducePlan;
