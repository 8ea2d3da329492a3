//! [`WgpuQueue`]: the wgpu device's one queue, as the backend's queue type.

use std::sync::Arc;

use super::device::{Context, Wgpu};
use crate::{Error, Result};

/// The queue of one wgpu device ([`Wgpu::queue_handle`]). A wgpu device has one queue, which
/// runs submissions in the order they were made: megabatch's calls, and the application's own
/// submissions to [`Wgpu::queue`], chain on it without host synchronisation. An `_on` call
/// (`eigh_on`, `reduce_on`, `attention_on`) checks that the queue is the plan's device's and
/// runs as the plain call.
#[derive(Clone)]
pub struct WgpuQueue {
    pub(crate) ctx: Arc<Context>,
}

impl std::fmt::Debug for WgpuQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuQueue")
            .field("adapter", &self.ctx.summary.name)
            .finish()
    }
}

impl WgpuQueue {
    /// The wgpu queue.
    pub fn raw(&self) -> &wgpu::Queue {
        &self.ctx.queue
    }

    /// Blocks the host until all work submitted to the queue so far has finished.
    ///
    /// # Errors
    /// [`Error::Device`] if the device was lost or reported an error.
    pub fn synchronize(&self) -> Result<()> {
        self.ctx.wait()
    }
}

impl Wgpu {
    /// `Err` unless `queue` is this device's.
    pub(crate) fn check_queue(&self, queue: &WgpuQueue) -> Result<()> {
        if Arc::ptr_eq(&queue.ctx, &self.ctx) {
            Ok(())
        } else {
            Err(Error::PlanMismatch("queue of another wgpu device"))
        }
    }
}
