//! Owned handles over the CUDA driver API (device memory, streams, events), each freed on
//! drop, and the stream-ordered copies between them.
//!
//! cudarc's safe layer tracks events per buffer and builds argument vectors per launch, which
//! allocates on every call; megabatch keeps cudarc for loading the driver and the context, and
//! calls its `result` layer (thin `cu*` wrappers) on the hot path.

use std::sync::Arc;

use cudarc::driver::result as cu;
use cudarc::driver::sys;
use cudarc::driver::{CudaContext, CudaStream};

use super::error::{device_error, device_lost, injected, lost_error, DriverResultExt};
use crate::{Error, Result};

/// Makes `ctx` current on the calling thread (a no-op when it already is).
pub(crate) fn bind(ctx: &CudaContext) -> Result<()> {
    if device_lost() {
        return Err(lost_error());
    }
    ctx.bind_to_thread().call("cuCtxSetCurrent")
}

/// Bytes for `len` elements of `size` bytes, or `TooLarge`.
pub(crate) fn bytes_for(len: usize, size: usize) -> Result<usize> {
    len.checked_mul(size)
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(Error::TooLarge("cuda buffer size overflows"))
}

/// `cuMemAlloc` calls made by this process through megabatch (for the plan/execute tests).
pub(crate) static DEVICE_ALLOCATIONS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// Host waits (stream, event, context or legacy-stream synchronisations) made by megabatch in
/// this process, for the tests that check a device-resident chain never waits.
pub(crate) static HOST_WAITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Device-to-host copies made by megabatch in this process (each read-back of results or
/// statuses), for the tests that count read-backs per iteration.
pub(crate) static DEVICE_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one host wait.
pub(crate) fn count_wait() {
    HOST_WAITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Counts one device-to-host copy.
pub(crate) fn count_read() {
    DEVICE_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// A device allocation (`cuMemAlloc`), zero bytes allowed (null pointer, nothing allocated).
pub(crate) struct DeviceMemory {
    ptr: sys::CUdeviceptr,
    bytes: usize,
    ctx: Arc<CudaContext>,
}

// SAFETY: a device pointer is an address in the context's memory space, usable from any
// thread that makes the context current; `Drop` binds the context before freeing.
unsafe impl Send for DeviceMemory {}
// SAFETY: `&DeviceMemory` only hands out the address; all accesses go through driver calls
// that are thread-safe.
unsafe impl Sync for DeviceMemory {}

impl DeviceMemory {
    /// Allocates `bytes` and zeroes them.
    pub(crate) fn zeroed(ctx: &Arc<CudaContext>, bytes: usize) -> Result<Self> {
        super::graph::refuse_in_capture(
            "allocation inside a graph capture: make buffers and plans before capturing",
        )?;
        bind(ctx)?;
        if bytes > ctx.total_mem().call("cuDeviceTotalMem")? {
            return Err(Error::TooLarge("buffer larger than the device's memory"));
        }
        let ptr = if bytes == 0 {
            0
        } else {
            if let Some(e) = injected(false) {
                return Err(device_error("cuMemAlloc", e));
            }
            // SAFETY: the context is current; the pointer is owned by the returned value.
            let ptr = unsafe { cu::malloc_sync(bytes) }.call("cuMemAlloc")?;
            DEVICE_ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: `ptr` was just allocated with `bytes` bytes.
            unsafe { cu::memset_d8_sync(ptr, 0, bytes) }.call("cuMemsetD8")?;
            // cuMemsetD8 may return before the memset ran, on the legacy stream that plans'
            // non-blocking streams do not wait for: finish it here, or it could land after a
            // plan's first kernel.
            legacy_stream_sync()?;
            ptr
        };
        Ok(Self {
            ptr,
            bytes,
            ctx: ctx.clone(),
        })
    }

    pub(crate) fn ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for DeviceMemory {
    fn drop(&mut self) {
        if self.ptr != 0 && self.ctx.bind_to_thread().is_ok() {
            // SAFETY: allocated by `cuMemAlloc` in this context and freed exactly once; every
            // user synchronised on the buffer's event or plan stream before dropping it.
            let _ = unsafe { cu::free_sync(self.ptr) };
        }
    }
}

/// Waits for the legacy default stream, where the driver's synchronous-looking memset and
/// pageable copies run.
pub(crate) fn legacy_stream_sync() -> Result<()> {
    count_wait();
    // SAFETY: the null stream always exists in the current context.
    unsafe { cu::stream::synchronize(std::ptr::null_mut()) }.call("cuStreamSynchronize(0)")
}

/// A CUDA stream held through cudarc's [`CudaStream`]: created by megabatch (non-blocking, one
/// per plan and per [`super::CudaQueue`] made by `Cuda::new_queue`) or borrowed from another
/// library. Clones share the stream; an owned one is destroyed with its last clone (cudarc's
/// drop), a borrowed one never.
#[derive(Clone)]
pub(crate) struct Stream {
    pub(super) raw: sys::CUstream,
    pub(super) inner: Arc<CudaStream>,
}

// SAFETY: stream handles may be used from any thread with the context current.
unsafe impl Send for Stream {}
// SAFETY: as above; driver calls on one stream are thread-safe.
unsafe impl Sync for Stream {}

impl Stream {
    /// A new non-blocking stream in `ctx` (`cuStreamCreate(CU_STREAM_NON_BLOCKING)`).
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<Self> {
        bind(ctx)?;
        Ok(Self::of(ctx.new_stream().call("cuStreamCreate")?))
    }

    /// The stream cudarc holds.
    pub(crate) fn of(inner: Arc<CudaStream>) -> Self {
        Self {
            raw: inner.cu_stream(),
            inner,
        }
    }

    pub(crate) fn synchronize(&self) -> Result<()> {
        count_wait();
        // SAFETY: the stream is alive (owned, or kept alive by its owner per `borrow_queue`).
        unsafe { cu::stream::synchronize(self.raw) }.call("cuStreamSynchronize")
    }

    /// Makes later work on this stream wait for `event`'s last recorded work.
    pub(crate) fn wait(&self, event: &Event) -> Result<()> {
        // SAFETY: both handles are alive.
        unsafe {
            cu::stream::wait_event(
                self.raw,
                event.raw,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .call("cuStreamWaitEvent")
    }

    /// The raw handle as a number, to compare streams (the legacy stream is 0).
    pub(crate) fn id(&self) -> usize {
        self.raw as usize
    }

    pub(crate) fn ctx(&self) -> &Arc<CudaContext> {
        self.inner.context()
    }
}

/// An event without timing (`CU_EVENT_DISABLE_TIMING`): the last use of a buffer.
///
/// Events come from, and go back to, a per-context pool ([`EVENT_POOL`]): a buffer borrowed
/// from a framework for one call (a DLPack array from Python) has five, and creating and
/// destroying them was a large part of a small call's host time.
pub(crate) struct Event {
    raw: sys::CUevent,
    ctx: Arc<CudaContext>,
}

// SAFETY: event handles may be used from any thread with the context current.
unsafe impl Send for Event {}
// SAFETY: `cuEventRecord`/`cuEventSynchronize` are thread-safe.
unsafe impl Sync for Event {}

/// A pooled event handle (only ever handed out to one [`Event`] at a time).
struct PooledEvent(sys::CUevent);
// SAFETY: event handles may be used from any thread with their context current.
unsafe impl Send for PooledEvent {}

/// Most idle events kept per context; more are destroyed.
const EVENT_POOL_MAX: usize = 4096;

/// Idle events per context. An entry's `Weak` keeps its context's allocation, so no other
/// context can ever compare equal to it; entries of dropped contexts are discarded without
/// destroying their handles (the context took its events with it, or, for a primary context
/// another library still retains, a few idle events stay allocated).
///
/// Only events whose recorded work has completed are pooled, so an event handed out again
/// behaves as a new one: waiting on it before its new owner records it is a no-op.
static EVENT_POOL: std::sync::Mutex<Vec<(std::sync::Weak<CudaContext>, Vec<PooledEvent>)>> =
    std::sync::Mutex::new(Vec::new());

fn event_pool(
) -> std::sync::MutexGuard<'static, Vec<(std::sync::Weak<CudaContext>, Vec<PooledEvent>)>> {
    EVENT_POOL.lock().unwrap_or_else(|p| p.into_inner())
}

impl Event {
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<Self> {
        bind(ctx)?;
        let pooled = event_pool()
            .iter_mut()
            .find(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(ctx)))
            .and_then(|(_, idle)| idle.pop());
        let raw = match pooled {
            Some(PooledEvent(raw)) => raw,
            None => cu::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
                .call("cuEventCreate")?,
        };
        Ok(Self {
            raw,
            ctx: ctx.clone(),
        })
    }

    /// Gives the handle to the pool if its work is done and the pool has room.
    fn pool(&self) -> bool {
        // SAFETY: the event is alive.
        if unsafe { cu::event::query(self.raw) }.is_err() {
            return false;
        }
        let mut pool = event_pool();
        pool.retain(|(owner, _)| owner.strong_count() > 0);
        let idle = match pool
            .iter_mut()
            .position(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(&self.ctx)))
        {
            Some(i) => &mut pool[i].1,
            None => {
                pool.push((Arc::downgrade(&self.ctx), Vec::new()));
                &mut pool.last_mut().expect("just pushed").1
            }
        };
        if idle.len() >= EVENT_POOL_MAX {
            return false;
        }
        idle.push(PooledEvent(self.raw));
        true
    }
    /// Records the work submitted to `stream` so far.
    pub(crate) fn record(&self, stream: &Stream) -> Result<()> {
        // SAFETY: both handles are alive.
        unsafe { cu::event::record(self.raw, stream.raw) }.call("cuEventRecord")
    }

    /// Whether the recorded work is done (true if nothing was recorded), without blocking
    /// (`cuEventQuery`).
    pub(crate) fn is_done(&self) -> Result<bool> {
        bind(&self.ctx)?;
        // SAFETY: the event is alive.
        match unsafe { cu::event::query(self.raw) } {
            Ok(()) => Ok(true),
            Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(e).call("cuEventQuery"),
        }
    }

    /// Blocks until the recorded work is done (immediately if nothing was recorded).
    pub(crate) fn synchronize(&self) -> Result<()> {
        count_wait();
        // SAFETY: the event is alive.
        unsafe { cu::event::synchronize(self.raw) }.call("cuEventSynchronize")
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() && !self.pool() {
            // SAFETY: created by `cuEventCreate`, not pooled, destroyed once.
            let _ = unsafe { cu::event::destroy(self.raw) };
        }
    }
}

/// Asynchronous host-to-device copy of `src` into `dst` at element offset 0.
pub(crate) fn copy_to_device<T>(src: &[T], dst: sys::CUdeviceptr, stream: &Stream) -> Result<()> {
    if src.is_empty() {
        return Ok(());
    }
    // SAFETY: callers pass a device allocation of at least `size_of_val(src)` bytes and keep
    // `src` (pinned plan memory or a slice outlived by a later stream synchronisation) alive
    // until the copy completes.
    unsafe { cu::memcpy_htod_async(dst, src, stream.raw) }.call("cuMemcpyHtoDAsync")
}

/// Asynchronous device-to-host copy into `dst`.
pub(crate) fn copy_to_host<T>(src: sys::CUdeviceptr, dst: &mut [T], stream: &Stream) -> Result<()> {
    if dst.is_empty() {
        return Ok(());
    }
    count_read();
    // SAFETY: callers pass a device allocation of at least `size_of_val(dst)` bytes and
    // synchronise the stream before reading or releasing `dst`.
    unsafe { cu::memcpy_dtoh_async(dst, src, stream.raw) }.call("cuMemcpyDtoHAsync")
}

/// Sets `bytes` bytes at `dst` to `value` in stream order.
pub(crate) fn fill_bytes(
    dst: sys::CUdeviceptr,
    value: u8,
    bytes: usize,
    stream: &Stream,
) -> Result<()> {
    // SAFETY: callers pass an allocation of at least `bytes` bytes.
    unsafe { cu::memset_d8_async(dst, value, bytes, stream.raw) }.call("cuMemsetD8Async")
}
