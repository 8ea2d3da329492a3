//! The one place a backend joins [`Auto`]: which [`AutoBuffer`]s are its own, what it does
//! at plan time for host data, and the macros that give every operation one arm per backend.
//!
//! Adding a backend to `Auto` is: a field in [`Auto`], a [`Place`] variant, an [`Member`]
//! impl here, and one line in each macro below. The operations (`eigh.rs`, `reduce.rs`,
//! `attention.rs`) are written once, generically over [`Member`].

use super::buffer::Place;
use super::{Auto, AutoBuffer};
use crate::backends::cpu::Cpu;
#[cfg(feature = "cuda")]
use crate::backends::cuda::Cuda;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::Wgpu;
use crate::{Backend, BatchedEigh, Element, Real, Result};

/// A backend `Auto` can hold.
pub(crate) trait Member: Backend {
    /// `buf` as this backend's own buffer, if it lives there (host memory for the CPU).
    fn own<T: Element>(buf: &AutoBuffer<T>) -> Option<&Self::Buffer<T>>;

    /// `buf` as this backend's own buffer, mutably.
    fn own_mut<T: Element>(buf: &mut AutoBuffer<T>) -> Option<&mut Self::Buffer<T>>;

    /// Wraps a buffer of this backend.
    fn wrap<T: Element>(buf: Self::Buffer<T>) -> AutoBuffer<T>;
}

/// Eigh plans that `Auto` makes ready for host slices at plan time.
pub(crate) trait PrepareEighHost<T: Real>: BatchedEigh<T> {
    /// Makes `plan` ready for host slices without allocating in its calls (a GPU's staging).
    fn prepare_eigh_host(&self, plan: &mut Self::EighPlan) -> Result<()>;
}

impl<T: Real> PrepareEighHost<T> for Cpu {
    fn prepare_eigh_host(&self, _: &mut Self::EighPlan) -> Result<()> {
        // Host slices are the CPU's own memory: nothing to stage.
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

/// `Member` for a GPU backend whose buffers are `Place::$variant` and whose
/// `prepare_eigh_host` allocates the plan's host staging.
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

        impl<T: Real> PrepareEighHost<T> for $backend {
            fn prepare_eigh_host(&self, plan: &mut Self::EighPlan) -> Result<()> {
                <$backend>::prepare_eigh_host(self, plan)
            }
        }
    };
}

#[cfg(feature = "cuda")]
gpu_member!(Cuda, Cuda);
#[cfg(feature = "wgpu")]
gpu_member!(Wgpu, Wgpu);

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
