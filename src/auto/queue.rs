//! [`AutoQueue`]: a queue of one of `Auto`'s backends, for the `_on` calls of its plans.

use super::member::Member;
use super::Auto;
use crate::backends::cpu::{Cpu, CpuQueue};
#[cfg(feature = "cuda")]
use crate::backends::cuda::{Cuda, CudaQueue};
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::{Wgpu, WgpuQueue};
use crate::{BackendKind, Error, Result};

/// A queue of one backend: an `_on` call of an [`Auto`] plan (`eigh_on`, `reduce_on`,
/// `attention_on`) runs on it when the plan was made on that backend and every buffer lives
/// there, and is a [`Error::PlanMismatch`] otherwise (an `_on` call never stages through the
/// host: that would synchronise).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AutoQueue {
    /// The CPU's worker pool.
    Cpu(CpuQueue),
    /// A CUDA stream.
    #[cfg(feature = "cuda")]
    Cuda(CudaQueue),
    /// The wgpu device's queue.
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuQueue),
}

impl AutoQueue {
    /// The backend the queue belongs to.
    pub fn backend(&self) -> BackendKind {
        match self {
            AutoQueue::Cpu(_) => BackendKind::Cpu,
            #[cfg(feature = "cuda")]
            AutoQueue::Cuda(_) => BackendKind::Cuda,
            #[cfg(feature = "wgpu")]
            AutoQueue::Wgpu(_) => BackendKind::Wgpu,
        }
    }
}

impl Auto {
    /// A queue on backend `kind`: the CPU's own pool, a new CUDA stream, the wgpu queue.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if this `Auto` lacks that backend; [`Error::Device`] if a CUDA
    /// stream cannot be made.
    pub fn queue_on(&self, kind: BackendKind) -> Result<AutoQueue> {
        match kind {
            BackendKind::Cpu => Ok(AutoQueue::Cpu(self.cpu.queue())),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(AutoQueue::Cuda(self.cuda_or_err()?.new_queue()?)),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(AutoQueue::Wgpu(self.wgpu_or_err()?.queue_handle())),
            #[allow(unreachable_patterns)]
            other => Err(super::not_present(other, "a queue")),
        }
    }
}

/// A backend's own queue inside an [`AutoQueue`].
pub(crate) trait OwnQueue: crate::Backend {
    fn own_queue(queue: &AutoQueue) -> Result<&Self::Queue>;
}

fn wrong_queue() -> Error {
    Error::PlanMismatch("the queue belongs to another backend than the plan")
}

impl OwnQueue for Cpu {
    fn own_queue(queue: &AutoQueue) -> Result<&CpuQueue> {
        match queue {
            AutoQueue::Cpu(q) => Ok(q),
            #[allow(unreachable_patterns)]
            _ => Err(wrong_queue()),
        }
    }
}

#[cfg(feature = "cuda")]
impl OwnQueue for Cuda {
    fn own_queue(queue: &AutoQueue) -> Result<&CudaQueue> {
        match queue {
            AutoQueue::Cuda(q) => Ok(q),
            _ => Err(wrong_queue()),
        }
    }
}

#[cfg(feature = "wgpu")]
impl OwnQueue for Wgpu {
    fn own_queue(queue: &AutoQueue) -> Result<&WgpuQueue> {
        match queue {
            AutoQueue::Wgpu(q) => Ok(q),
            _ => Err(wrong_queue()),
        }
    }
}

/// The error of an `_on` call given buffers of another place than the plan's backend.
pub(crate) fn not_in_place() -> Error {
    Error::PlanMismatch(
        "an `_on` call needs every buffer on the plan's backend (it does not stage through the \
         host)",
    )
}

/// `Member` + `OwnQueue`: what an `_on` call needs of a backend.
pub(crate) trait QueueMember: Member + OwnQueue {}
impl<B: Member + OwnQueue> QueueMember for B {}
