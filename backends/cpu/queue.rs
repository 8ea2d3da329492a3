//! [`CpuQueue`]: the CPU backend's queue, a pool of worker threads.

use std::sync::Arc;

use super::pool::WorkerPool;
use super::Cpu;
use crate::{BackendKind, DeviceErrorKind, Error, Result};

/// A pool of worker threads that CPU operations run on: the CPU's counterpart of a CUDA stream
/// or a wgpu queue. [`Cpu::queue`] gives the handle's own pool; [`CpuQueue::with_threads`] a
/// new one. An `_on` call (`eigh_on`, `reduce_on`, `attention_on`) runs its batch on the
/// queue's threads (the calling thread being one of them) and returns when it is done, as
/// every CPU call does; clones share the threads.
#[derive(Clone)]
pub struct CpuQueue {
    pub(super) pool: Arc<WorkerPool>,
}

impl std::fmt::Debug for CpuQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuQueue")
            .field("threads", &self.threads())
            .finish()
    }
}

impl CpuQueue {
    /// A pool of `threads` threads (the calling thread counts as one).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `threads == 0`; [`Error::Device`] if the threads cannot
    /// be started.
    pub fn with_threads(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::InvalidArgument("thread count must be at least 1"));
        }
        let pool = WorkerPool::new(threads).map_err(|e| {
            Error::device(
                BackendKind::Cpu,
                DeviceErrorKind::Other,
                format!("spawning threads: {e}"),
            )
        })?;
        Ok(Self {
            pool: Arc::new(pool),
        })
    }

    /// Number of threads that run a batch, the caller included.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

impl Cpu {
    /// This handle's own worker pool, as a queue.
    pub fn queue(&self) -> CpuQueue {
        CpuQueue {
            pool: Arc::clone(&self.pool),
        }
    }

    /// This handle running on `queue`'s threads, for a plan with scratch for `workers`
    /// threads (`None`: the plan keeps no per-thread scratch).
    pub(super) fn on_queue(&self, queue: &CpuQueue, workers: Option<usize>) -> Result<Cpu> {
        if workers.is_some_and(|w| w < queue.threads()) {
            return Err(Error::PlanMismatch(
                "the queue has more threads than the plan has scratch for: plan on a Cpu with \
                 at least as many threads",
            ));
        }
        Ok(Cpu {
            pool: Arc::clone(&queue.pool),
            id: self.id,
        })
    }
}
