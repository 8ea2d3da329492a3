//! [`CudaQueue`]: a CUDA stream that megabatch's operations, user kernels and other libraries'
//! work share, so that a chain of them runs on the device without host synchronisation.

use std::sync::Arc;

use cudarc::driver::{sys, CudaStream};

use super::driver::{bind, Stream};
use super::error::DriverResultExt;
use super::Cuda;
use crate::{Error, Result};

/// A CUDA stream megabatch can queue work on: one it created ([`Cuda::new_queue`]), a
/// [cudarc](https://docs.rs/cudarc) stream ([`Cuda::queue_from_cudarc`]), or one borrowed from
/// another library by its raw handle ([`Cuda::borrow_queue`], e.g. PyTorch's
/// `torch.cuda.current_stream().cuda_stream`).
///
/// Every device call has a form that takes a queue (`eigh_on`, `reduce_on`, `attention_on`,
/// [`Cuda::launch_kernel`], [`super::CudaGraph::launch`]); the forms without one run on the
/// plan's own stream. Work on one queue runs in the order it was queued; work on different
/// queues is ordered through the buffers it shares (see [`super::CudaBuffer`]). Clones share
/// the stream, which an owned queue destroys with its last clone.
#[derive(Clone)]
pub struct CudaQueue {
    pub(super) stream: Stream,
}

impl std::fmt::Debug for CudaQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaQueue")
            .field("stream", &self.stream.raw)
            .finish()
    }
}

impl CudaQueue {
    /// The same stream as a cudarc [`CudaStream`], to queue cudarc work (copies, its own
    /// kernels) in order with megabatch's. Shares ownership: the stream lives as long as
    /// either handle.
    pub fn to_cudarc(&self) -> Arc<CudaStream> {
        Arc::clone(&self.stream.inner)
    }

    /// The raw `CUstream` handle, for other libraries (as `cudaStream_t`). Valid while this
    /// queue (or a clone, or a cudarc handle from [`CudaQueue::to_cudarc`]) lives.
    pub fn raw(&self) -> sys::CUstream {
        self.stream.raw
    }

    /// Blocks the host until all work queued on this queue so far has finished.
    ///
    /// # Errors
    /// [`Error::Device`] if the device reports an error for that work.
    pub fn synchronize(&self) -> Result<()> {
        bind(self.stream.ctx())?;
        self.stream.synchronize()
    }
}

impl Cuda {
    /// A new queue: a non-blocking stream (`CU_STREAM_NON_BLOCKING`) of this device's primary
    /// context, the context the CUDA runtime (PyTorch, CuPy) also uses.
    ///
    /// # Errors
    /// [`Error::Device`] if the stream cannot be created.
    pub fn new_queue(&self) -> Result<CudaQueue> {
        Ok(CudaQueue {
            stream: Stream::new(&self.ctx)?,
        })
    }

    /// A queue on a cudarc stream, which it keeps alive.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] if the stream belongs to another context than this device's
    /// primary context.
    pub fn queue_from_cudarc(&self, stream: Arc<CudaStream>) -> Result<CudaQueue> {
        if stream.context().cu_ctx() != self.ctx.cu_ctx() {
            return Err(Error::PlanMismatch(
                "the cudarc stream belongs to another CUDA context",
            ));
        }
        Ok(CudaQueue {
            stream: Stream::of(stream),
        })
    }

    /// A queue on a stream owned by another library, by its raw handle (`cudaStream_t`):
    /// PyTorch's `torch.cuda.current_stream().cuda_stream`, CuPy's
    /// `cupy.cuda.get_current_stream().ptr`. The legacy default stream (null) and the
    /// per-thread default stream (`0x2`) are accepted (but cannot be captured into a graph).
    ///
    /// # Safety
    /// `raw` must be a valid stream handle, and its owner must keep it alive (not destroy it)
    /// for as long as the returned queue or any clone of it exists and until the work queued
    /// through it has finished (its buffers' events, or [`CudaQueue::synchronize`], tell).
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] if the stream belongs to another context; [`Error::Device`] if
    /// the driver does not know the handle as a stream (a dangling handle may still pass this
    /// check: the contract above is the caller's).
    pub unsafe fn borrow_queue(&self, raw: sys::CUstream) -> Result<CudaQueue> {
        bind(&self.ctx)?;
        let mut ctx: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: `raw` is a stream handle per the caller's contract; `ctx` is valid for writes.
        unsafe { sys::cuStreamGetCtx(raw, &mut ctx) }
            .result()
            .call("cuStreamGetCtx")?;
        if ctx != self.ctx.cu_ctx() {
            return Err(Error::PlanMismatch(
                "the stream belongs to another CUDA context",
            ));
        }
        // SAFETY: a stream of this context, kept alive by its owner (the caller's contract);
        // the wrapper never destroys it.
        let inner = unsafe { self.ctx.wrap_borrowed_stream(raw) };
        Ok(CudaQueue {
            stream: Stream::of(inner),
        })
    }

    /// `Err` unless `queue` is a stream of this handle's context.
    pub(crate) fn check_queue(&self, queue: &CudaQueue) -> Result<()> {
        if Arc::ptr_eq(queue.stream.ctx(), &self.ctx)
            || queue.stream.ctx().cu_ctx() == self.ctx.cu_ctx()
        {
            Ok(())
        } else {
            Err(Error::PlanMismatch("queue of another CUDA context"))
        }
    }
}
