//! The one place a backend joins [`Auto`]: which [`AutoBuffer`]s are its own, how it makes
//! plans with or without host staging, and the macros that give every operation one arm per
//! backend.
//!
//! Adding a backend to `Auto` is: a field in [`Auto`], a [`Place`] variant, an [`Member`]
//! impl here, and one line in each macro below. The operations (`eigh.rs`, `reduce.rs`,
//! `attention.rs`) are written once, generically over [`Member`].

use super::buffer::Place;
use super::{Auto, AutoBuffer};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::Cpu;
#[cfg(feature = "cuda")]
use crate::backends::cuda::Cuda;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::Wgpu;
use crate::{
    Backend, BatchedEigh, EighSpec, Element, Real, ReduceSpec, Reducer, Reducible, Result,
};

/// A backend `Auto` can hold.
pub(crate) trait Member: Backend {
    /// `buf` as this backend's own buffer, if it lives there (host memory for the CPU).
    fn own<T: Element>(buf: &AutoBuffer<T>) -> Option<&Self::Buffer<T>>;

    /// `buf` as this backend's own buffer, mutably.
    fn own_mut<T: Element>(buf: &mut AutoBuffer<T>) -> Option<&mut Self::Buffer<T>>;

    /// Wraps a buffer of this backend.
    fn wrap<T: Element>(buf: Self::Buffer<T>) -> AutoBuffer<T>;
}

/// How `Auto` makes eigh plans on a backend: with the host staging of its host calls (for
/// data elsewhere than on this backend) or without (for its own buffers only), and the staging
/// added to a plan made without it. Nothing of it allocates in a call.
pub(crate) trait EighPlans<T: Real>: BatchedEigh<T> {
    /// A plan for `spec`, with host staging when `host`.
    fn plan_eigh_staged(&self, spec: &EighSpec, host: bool) -> Result<Self::EighPlan>;
    /// Adds the host staging to a plan made without it (nothing if it has it).
    fn stage_eigh_host(&self, plan: &mut Self::EighPlan) -> Result<()>;
}

/// [`EighPlans`] for reductions.
pub(crate) trait ReducePlans<T: Reducible>: Reducer<T> {
    /// A plan for `spec`, with host staging when `host`.
    fn plan_reduce_staged(&self, spec: &ReduceSpec, host: bool) -> Result<Self::ReducePlan>;
    /// Adds the host staging to a plan made without it (nothing if it has it).
    fn stage_reduce_host(&self, plan: &mut Self::ReducePlan) -> Result<()>;
}

/// [`EighPlans`] for attention.
pub(crate) trait AttentionPlans<T: AttentionElement>: SparseAttention<T> {
    /// A plan for `spec` and `mask`, with host staging when `host`.
    fn plan_attention_staged(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        host: bool,
    ) -> Result<Self::AttentionPlan>;
    /// Adds the host staging to a plan made without it (nothing if it has it).
    fn stage_attention_host(&self, plan: &mut Self::AttentionPlan) -> Result<()>;
}

// Host slices are the CPU's own memory: its plans have nothing to stage.
impl<T: Real> EighPlans<T> for Cpu {
    fn plan_eigh_staged(&self, spec: &EighSpec, _host: bool) -> Result<Self::EighPlan> {
        self.plan_eigh(spec)
    }
    fn stage_eigh_host(&self, _: &mut Self::EighPlan) -> Result<()> {
        Ok(())
    }
}

impl<T: Reducible> ReducePlans<T> for Cpu {
    fn plan_reduce_staged(&self, spec: &ReduceSpec, _host: bool) -> Result<Self::ReducePlan> {
        self.plan_reduce(spec)
    }
    fn stage_reduce_host(&self, _: &mut Self::ReducePlan) -> Result<()> {
        Ok(())
    }
}

impl<T: AttentionElement> AttentionPlans<T> for Cpu {
    fn plan_attention_staged(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        _host: bool,
    ) -> Result<Self::AttentionPlan> {
        self.plan_attention(spec, mask)
    }
    fn stage_attention_host(&self, _: &mut Self::AttentionPlan) -> Result<()> {
        Ok(())
    }
}

impl Member for Cpu {
    fn own<T: Element>(buf: &AutoBuffer<T>) -> Option<&Vec<T>> {
        match &buf.place {
            Place::Host(v) => Some(v),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn own_mut<T: Element>(buf: &mut AutoBuffer<T>) -> Option<&mut Vec<T>> {
        match &mut buf.place {
            Place::Host(v) => Some(v),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn wrap<T: Element>(buf: Vec<T>) -> AutoBuffer<T> {
        AutoBuffer {
            place: Place::Host(buf),
        }
    }
}

/// `Member` for a GPU backend whose buffers are `Place::$variant`, and its eigh and reduce
/// plans: `plan_*_device` without host staging, `prepare_*_host` to add it.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
macro_rules! gpu_member {
    ($backend:ty, $variant:ident) => {
        impl Member for $backend {
            fn own<T: Element>(buf: &AutoBuffer<T>) -> Option<&Self::Buffer<T>> {
                match &buf.place {
                    Place::$variant(b) => Some(b),
                    _ => None,
                }
            }

            fn own_mut<T: Element>(buf: &mut AutoBuffer<T>) -> Option<&mut Self::Buffer<T>> {
                match &mut buf.place {
                    Place::$variant(b) => Some(b),
                    _ => None,
                }
            }

            fn wrap<T: Element>(buf: Self::Buffer<T>) -> AutoBuffer<T> {
                AutoBuffer {
                    place: Place::$variant(buf),
                }
            }
        }

        impl<T: Real> EighPlans<T> for $backend {
            fn plan_eigh_staged(&self, spec: &EighSpec, host: bool) -> Result<Self::EighPlan> {
                let mut plan = <$backend>::plan_eigh_device(self, spec, Default::default())?;
                if host {
                    <$backend>::prepare_eigh_host(self, &mut plan)?;
                }
                Ok(plan)
            }
            fn stage_eigh_host(&self, plan: &mut Self::EighPlan) -> Result<()> {
                <$backend>::prepare_eigh_host(self, plan)
            }
        }

        impl<T: Reducible> ReducePlans<T> for $backend {
            fn plan_reduce_staged(
                &self,
                spec: &ReduceSpec,
                host: bool,
            ) -> Result<Self::ReducePlan> {
                let mut plan = <$backend>::plan_reduce_device(self, spec)?;
                if host {
                    <$backend>::prepare_reduce_host(self, &mut plan)?;
                }
                Ok(plan)
            }
            fn stage_reduce_host(&self, plan: &mut Self::ReducePlan) -> Result<()> {
                <$backend>::prepare_reduce_host(self, plan)
            }
        }
    };
}

#[cfg(feature = "cuda")]
gpu_member!(Cuda, Cuda);
#[cfg(feature = "wgpu")]
gpu_member!(Wgpu, Wgpu);

#[cfg(feature = "cuda")]
impl<T: AttentionElement> AttentionPlans<T> for Cuda {
    fn plan_attention_staged(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        host: bool,
    ) -> Result<Self::AttentionPlan> {
        let mut plan = self.plan_attention_device(spec, mask, Default::default())?;
        if host {
            self.prepare_attention_host(&mut plan)?;
        }
        Ok(plan)
    }
    fn stage_attention_host(&self, plan: &mut Self::AttentionPlan) -> Result<()> {
        self.prepare_attention_host(plan)
    }
}

#[cfg(feature = "wgpu")]
impl<T: AttentionElement> AttentionPlans<T> for Wgpu {
    fn plan_attention_staged(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        host: bool,
    ) -> Result<Self::AttentionPlan> {
        let mut plan = self.plan_attention_device(spec, mask)?;
        if host {
            self.prepare_attention_host(&mut plan)?;
        }
        Ok(plan)
    }
    fn stage_attention_host(&self, plan: &mut Self::AttentionPlan) -> Result<()> {
        self.prepare_attention_host(plan)
    }
}

/// Runs `$body` with `$dev` bound to the backend of kind `$kind` (an error if `Auto` lacks
/// it) and wraps the result in the operation's `Inner::<backend>` plan variant.
macro_rules! plan_on {
    ($auto:expr, $kind:expr, $what:expr, |$dev:ident| $body:expr) => {
        match $kind {
            $crate::BackendKind::Cpu => {
                let $dev = &$auto.cpu;
                Inner::Cpu($body)
            }
            #[cfg(feature = "cuda")]
            $crate::BackendKind::Cuda => {
                let $dev = $auto.cuda_or_err()?;
                Inner::Cuda($body)
            }
            #[cfg(feature = "wgpu")]
            $crate::BackendKind::Wgpu => {
                let $dev = $auto.wgpu_or_err()?;
                Inner::Wgpu($body)
            }
            #[allow(unreachable_patterns)]
            other => return Err(super::not_present(other, $what)),
        }
    };
}

/// Runs `$body` with `$dev` bound to the backend that made the plan `$inner` (an operation's
/// `Inner`) and `$plan` to that backend's own plan.
macro_rules! on_plan {
    ($auto:expr, $inner:expr, |$dev:ident, $plan:ident| $body:expr) => {
        match $inner {
            Inner::Cpu($plan) => {
                let $dev = &$auto.cpu;
                $body
            }
            #[cfg(feature = "cuda")]
            Inner::Cuda($plan) => {
                let $dev = $auto.cuda_or_err()?;
                $body
            }
            #[cfg(feature = "wgpu")]
            Inner::Wgpu($plan) => {
                let $dev = $auto.wgpu_or_err()?;
                $body
            }
        }
    };
}

/// `$body` with `$plan` bound to the chosen backend's plan in `$inner`, for what needs no
/// backend handle (the plan's footprint).
macro_rules! inner_plan {
    ($inner:expr, |$plan:ident| $body:expr) => {
        match $inner {
            Inner::Cpu($plan) => $body,
            #[cfg(feature = "cuda")]
            Inner::Cuda($plan) => $body,
            #[cfg(feature = "wgpu")]
            Inner::Wgpu($plan) => $body,
        }
    };
}

/// Runs `$host` with `$h` bound to host data, or `$device` with `$b` bound to a device
/// buffer and `$dev` to its backend.
macro_rules! on_place {
    ($auto:expr, $place:expr, |$h:ident| $host:expr, |$dev:ident, $b:ident| $device:expr) => {
        match $place {
            Place::Host($h) => $host,
            #[cfg(feature = "cuda")]
            Place::Cuda($b) => {
                let $dev = $auto.cuda_or_err()?;
                $device
            }
            #[cfg(feature = "wgpu")]
            Place::Wgpu($b) => {
                let $dev = $auto.wgpu_or_err()?;
                $device
            }
        }
    };
}

pub(crate) use {inner_plan, on_place, on_plan, plan_on};

impl Auto {
    /// Whether every buffer in `bufs` is `B`'s own, so a plan of `B` can run on them in place.
    pub(crate) fn all_own<B: Member, T: Element>(bufs: &[Option<&AutoBuffer<T>>]) -> bool {
        bufs.iter().flatten().all(|b| B::own(b).is_some())
    }
}
