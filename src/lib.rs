//! # megabatch
//!
//! Many small problems at once, on whatever hardware is there: batched symmetric
//! eigendecomposition ([`BatchedEigh`]), deterministic reductions ([`Reducer`]) and attention
//! over FlexAttention-format block-sparse masks ([`SparseAttention`]), each on the
//! CPU, wgpu and CUDA backends (the GPU backends behind the `wgpu` and `cuda` features). Plans
//! allocate up front so the hot path never allocates, and an [`Auto`] dispatcher picks a
//! backend per plan from a cost model.
//!
//! Every operation follows the same contract:
//! 1. **Plan, then execute.** `plan_*` validates the spec and allocates every buffer and
//!    scratch arena; the execute call performs no heap or device allocation.
//! 2. **Device-resident chaining.** Operations read and write the backend's own buffers.
//! 3. **One launch per operation per call**, never one per matrix.
//! 4. **One form for every operation and backend**: `backend.plan_eigh(&spec)`,
//!    `plan_reduce(&spec)`, `plan_attention(&spec, &mask)`; the execute call on backend buffers
//!    (`eigh`, `reduce`, `attention`), its `_on(queue, ...)` form and its `_host` form on
//!    slices; [`PlanFootprint`] on every plan. The element type is never named: it comes from
//!    the data of the calls that use the plan (each backend implements each trait for every
//!    element type with one generic impl, so the plan's type follows from its first call).
//!    Where no call fixes it (a plan only made, measured or expected to fail), the binding
//!    names the plan with [`EighPlan`], [`ReducePlan`] or [`AttentionPlan`]
//!    (`let plan: EighPlan<Cpu, f64> = cpu.plan_eigh(&spec)?;`).
//!
//! ```
//! use megabatch::{Auto, BatchedEigh, EighSpec};
//!
//! let auto = Auto::new()?;
//! // Two 2 x 2 matrices, row-major, lower triangle read.
//! let a = [2.0_f64, 0.0, 1.0, 2.0, /* */ 1.0, 0.0, 0.0, 3.0];
//! let spec = EighSpec::uniform(2, 2).with_vectors(true);
//! let mut plan = auto.plan_eigh(&spec)?;
//! let (mut w, mut v) = ([0.0; 4], [0.0; 8]);
//! auto.eigh_host(&mut plan, &a, &mut w, Some(&mut v))?;
//! assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12);
//! # Ok::<(), megabatch::Error>(())
//! ```

//! Threads: backends are `Send + Sync` and meant to be shared; plans are `Send` and every
//! execute call takes `&mut plan`, so one plan cannot run in two threads at once. That is
//! enforced by the borrow checker, not by a lock:
//!
//! ```compile_fail
//! use megabatch::{backends::cpu::Cpu, BatchedEigh, EighSpec};
//! let cpu = Cpu::new().unwrap();
//! let mut plan = cpu.plan_eigh(&EighSpec::uniform(2, 1)).unwrap();
//! let a = [1.0, 0.0, 0.0, 1.0];
//! std::thread::scope(|s| {
//!     // error[E0499]: `plan` borrowed mutably by two threads
//!     s.spawn(|| cpu.eigh_host(&mut plan, &a, &mut [0.0; 2], None));
//!     s.spawn(|| cpu.eigh_host(&mut plan, &a, &mut [0.0; 2], None));
//! });
//! ```

#![warn(missing_docs)]

pub mod attention;
mod auto;
mod backend;
pub mod cost;
pub mod eigh;
mod element;
mod error;
#[cfg(feature = "fault-injection")]
pub mod faults;
mod footprint;
mod limits;
pub mod reduce;
mod split;
mod stable_hash;

#[path = "../backends/mod.rs"]
pub mod backends;

pub use attention::{
    AttentionElement, AttentionPlan, AttentionSpec, BlockMask, BlockMaskParts, ElementBits,
    MaskPredicate, SparseAttention, BLOCK_SIZES, HEAD_DIMS,
};
pub use auto::{
    Auto, AutoAttentionPlan, AutoBuffer, AutoEighPlan, AutoQueue, AutoReducePlan, BACKEND_ENV,
};
pub use backend::{Backend, BackendKind};
pub use cost::Residency;
pub use eigh::{
    eigh_info_result, BatchedEigh, EighLayout, EighOffsets, EighPart, EighPlan, EighSpec,
    MatrixSlot, EIGH_NON_FINITE, EIGH_NO_CONVERGENCE, EIGH_SOLVED,
};
pub use element::{Element, Real, Reducible};
pub use error::{DeviceErrorKind, Error, Result};
pub use footprint::PlanFootprint;
pub use reduce::{
    ReduceOp, ReducePlan, ReduceShape, ReduceSpec, Reducer, RowReduceOp, SegmentReduceOp,
};

/// The README's Rust example, compiled and run by `cargo test` so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
