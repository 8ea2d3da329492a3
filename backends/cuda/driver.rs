//! Owned handles over the CUDA driver API (device memory, pinned host memory, streams,
//! events), each freed on drop, and the mapping of driver errors to [`Error::Device`].
//!
//! cudarc's safe layer tracks events per buffer and builds argument vectors per launch, which
//! allocates on every call; megabatch keeps cudarc for loading the driver and the context, and
//! calls its `result` layer (thin `cu*` wrappers) on the hot path.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::result::{self as cu, DriverError};
use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use std::sync::atomic::AtomicBool;

use crate::{Error, Result};

/// Set once a sticky error (see [`is_sticky`]) was seen: the process's CUDA contexts are
/// unusable until it exits, and every later call fails fast.
static DEVICE_LOST: AtomicBool = AtomicBool::new(false);

/// Whether a sticky CUDA error has been seen in this process.
pub(crate) fn device_lost() -> bool {
    DEVICE_LOST.load(std::sync::atomic::Ordering::Relaxed)
}

/// Errors after which the CUDA context is corrupt and every later call fails (CUDA driver API
/// documentation, "Error Handling": such errors are sticky).
fn is_sticky(e: DriverError) -> bool {
    use sys::cudaError_enum as E;
    matches!(
        e.0,
        E::CUDA_ERROR_ILLEGAL_ADDRESS
            | E::CUDA_ERROR_LAUNCH_FAILED
            | E::CUDA_ERROR_HARDWARE_STACK_ERROR
            | E::CUDA_ERROR_ILLEGAL_INSTRUCTION
            | E::CUDA_ERROR_MISALIGNED_ADDRESS
            | E::CUDA_ERROR_INVALID_ADDRESS_SPACE
            | E::CUDA_ERROR_INVALID_PC
            | E::CUDA_ERROR_ECC_UNCORRECTABLE
            | E::CUDA_ERROR_CONTEXT_IS_DESTROYED
            | E::CUDA_ERROR_DEVICE_UNAVAILABLE
    )
}

/// `Error::Device` naming the driver call that failed and the driver's message; a sticky
/// error also marks the device lost.
pub(crate) fn device_error(call: &str, e: DriverError) -> Error {
    let lost = is_sticky(e);
    if lost {
        DEVICE_LOST.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Error::Device {
        backend: "cuda",
        message: if lost {
            format!("{call}: {e} (device lost: CUDA is unusable in this process)")
        } else {
            format!("{call}: {e}")
        },
    }
}

/// The fault armed by `megabatch::faults::inject` for a call of this kind, as the driver
/// error it stands for.
#[cfg(feature = "fault-injection")]
fn injected(launch: bool) -> Option<DriverError> {
    use crate::faults::Fault;
    use sys::cudaError_enum as E;
    let fault = crate::faults::take(|f| (f == Fault::OutOfMemory) != launch)?;
    Some(DriverError(match fault {
        Fault::OutOfMemory => E::CUDA_ERROR_OUT_OF_MEMORY,
        Fault::LaunchError => E::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
        Fault::DeviceLost => E::CUDA_ERROR_LAUNCH_FAILED,
    }))
}

#[cfg(not(feature = "fault-injection"))]
fn injected(_launch: bool) -> Option<DriverError> {
    None
}

/// Shorthand: map a driver result, naming the call.
pub(crate) trait DriverResultExt<T> {
    fn call(self, call: &str) -> Result<T>;
}

impl<T> DriverResultExt<T> for std::result::Result<T, DriverError> {
    fn call(self, call: &str) -> Result<T> {
        self.map_err(|e| device_error(call, e))
    }
}

/// Makes `ctx` current on the calling thread (a no-op when it already is).
pub(crate) fn bind(ctx: &CudaContext) -> Result<()> {
    if device_lost() {
        return Err(Error::Device {
            backend: "cuda",
            message: "device lost earlier in this process (a sticky CUDA error); \
                      restart the process to use the GPU again"
                .into(),
        });
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
    // SAFETY: the null stream always exists in the current context.
    unsafe { cu::stream::synchronize(std::ptr::null_mut()) }.call("cuStreamSynchronize(0)")
}

/// Page-locked host memory (`cuMemHostAlloc`) holding `len` values of `T`, for asynchronous
/// copies.
pub(crate) struct PinnedHost<T> {
    ptr: *mut T,
    len: usize,
    ctx: Arc<CudaContext>,
}

// SAFETY: the memory is owned exclusively by this value; `T` values are plain data.
unsafe impl<T: Send> Send for PinnedHost<T> {}
// SAFETY: shared access only reads through `as_slice`.
unsafe impl<T: Sync> Sync for PinnedHost<T> {}

impl<T: bytemuck::Pod> PinnedHost<T> {
    /// Allocates `len` zeroed values.
    pub(crate) fn zeroed(ctx: &Arc<CudaContext>, len: usize) -> Result<Self> {
        let bytes = bytes_for(len, std::mem::size_of::<T>())?;
        crate::limits::host_bytes(bytes, 1, "pinned staging exceeds this machine's memory")?;
        bind(ctx)?;
        let ptr = if bytes == 0 {
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            // SAFETY: the context is current; the allocation is owned by the returned value.
            let raw = unsafe { cu::malloc_host(bytes, 0) }.call("cuMemHostAlloc")?;
            // SAFETY: `raw` points to `bytes` writable bytes; all-zero is a valid `T` (Pod).
            unsafe { std::ptr::write_bytes(raw.cast::<u8>(), 0, bytes) };
            raw.cast::<T>()
        };
        Ok(Self {
            ptr,
            len,
            ctx: ctx.clone(),
        })
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: `ptr` is valid for `len` initialised values for the lifetime of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Bytes allocated (`cuMemHostAlloc`'s size).
    pub(crate) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
}

impl<T> Drop for PinnedHost<T> {
    fn drop(&mut self) {
        if self.len > 0 && std::mem::size_of::<T>() > 0 && self.ctx.bind_to_thread().is_ok() {
            // SAFETY: allocated by `cuMemHostAlloc` and freed exactly once; no copy into it is
            // pending (plans synchronise their stream before returning host results).
            let _ = unsafe { cu::free_host(self.ptr.cast::<c_void>()) };
        }
    }
}

/// A device array with a pinned host mirror (or, `unpinned`, none: copies then go straight
/// between the device and the caller's pageable memory, which the driver stages itself).
pub(crate) struct Staged<T> {
    device: DeviceMemory,
    pinned: Option<PinnedHost<T>>,
}

impl<T: bytemuck::Pod> Staged<T> {
    pub(crate) fn zeroed(ctx: &Arc<CudaContext>, len: usize) -> Result<Self> {
        Ok(Self {
            device: DeviceMemory::zeroed(ctx, bytes_for(len, std::mem::size_of::<T>())?)?,
            pinned: Some(PinnedHost::zeroed(ctx, len)?),
        })
    }

    /// Device memory only: no pinned allocation (which costs about as much per byte as one
    /// pageable copy), for arrays copied once per call where the copy is bandwidth-bound.
    pub(crate) fn unpinned(ctx: &Arc<CudaContext>, len: usize) -> Result<Self> {
        Ok(Self {
            device: DeviceMemory::zeroed(ctx, bytes_for(len, std::mem::size_of::<T>())?)?,
            pinned: None,
        })
    }

    pub(crate) fn ptr(&self) -> sys::CUdeviceptr {
        self.device.ptr()
    }

    /// Whether copies go through a pinned mirror.
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// Queues the copy of `src` to the device: through the pinned mirror (copied into it
    /// first), or straight from `src`, which must then stay untouched until `stream` is
    /// synchronised.
    pub(crate) fn send(&mut self, src: &[T], stream: &Stream) -> Result<()> {
        match &mut self.pinned {
            Some(pinned) => {
                pinned.as_mut_slice().copy_from_slice(src);
                copy_to_device(pinned.as_slice(), self.device.ptr(), stream)
            }
            None => copy_to_device(src, self.device.ptr(), stream),
        }
    }

    /// Queues the copy of the device array into the pinned mirror; read it with
    /// [`Staged::received`] after synchronising `stream`. Unpinned: does nothing (use
    /// [`Staged::fetch_into`]).
    pub(crate) fn fetch(&mut self, stream: &Stream) -> Result<()> {
        match &mut self.pinned {
            Some(pinned) => copy_to_host(self.device.ptr(), pinned.as_mut_slice(), stream),
            None => Ok(()),
        }
    }

    /// The pinned mirror, as the last [`Staged::fetch`] left it once its stream is synchronised
    /// (empty when unpinned).
    pub(crate) fn received(&self) -> &[T] {
        self.pinned.as_ref().map_or(&[], PinnedHost::as_slice)
    }

    /// Queues the copy of the device array straight into `dst` (pageable); read `dst` only
    /// after synchronising `stream`.
    pub(crate) fn fetch_into(&self, dst: &mut [T], stream: &Stream) -> Result<()> {
        copy_to_host(self.device.ptr(), dst, stream)
    }

    /// Bytes of the device array.
    pub(crate) fn device_bytes(&self) -> usize {
        self.device.bytes()
    }

    /// Bytes of the pinned host mirror (0 when unpinned).
    pub(crate) fn host_bytes(&self) -> usize {
        self.pinned.as_ref().map_or(0, PinnedHost::bytes)
    }
}

/// A non-blocking stream (`cuStreamCreate`), one per plan.
pub(crate) struct Stream {
    raw: sys::CUstream,
    ctx: Arc<CudaContext>,
}

// SAFETY: stream handles may be used from any thread with the context current.
unsafe impl Send for Stream {}
// SAFETY: as above; driver calls on one stream are thread-safe.
unsafe impl Sync for Stream {}

impl Stream {
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<Self> {
        bind(ctx)?;
        let raw = cu::stream::create(cu::stream::StreamKind::NonBlocking).call("cuStreamCreate")?;
        Ok(Self {
            raw,
            ctx: ctx.clone(),
        })
    }

    pub(crate) fn synchronize(&self) -> Result<()> {
        // SAFETY: the stream is alive.
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
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: created by `cuStreamCreate`, destroyed once; pending work completes
            // before the driver releases the stream.
            let _ = unsafe { cu::stream::destroy(self.raw) };
        }
    }
}

/// An event without timing (`CU_EVENT_DISABLE_TIMING`): the last use of a buffer.
pub(crate) struct Event {
    raw: sys::CUevent,
    ctx: Arc<CudaContext>,
}

// SAFETY: event handles may be used from any thread with the context current.
unsafe impl Send for Event {}
// SAFETY: `cuEventRecord`/`cuEventSynchronize` are thread-safe.
unsafe impl Sync for Event {}

impl Event {
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<Self> {
        bind(ctx)?;
        let raw =
            cu::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING).call("cuEventCreate")?;
        Ok(Self {
            raw,
            ctx: ctx.clone(),
        })
    }

    /// Records the work submitted to `stream` so far.
    pub(crate) fn record(&self, stream: &Stream) -> Result<()> {
        // SAFETY: both handles are alive.
        unsafe { cu::event::record(self.raw, stream.raw) }.call("cuEventRecord")
    }

    /// Blocks until the recorded work is done (immediately if nothing was recorded).
    pub(crate) fn synchronize(&self) -> Result<()> {
        // SAFETY: the event is alive.
        unsafe { cu::event::synchronize(self.raw) }.call("cuEventSynchronize")
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: created by `cuEventCreate`, destroyed once.
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

/// A kernel argument: a pointer to the value, as `cuLaunchKernel` takes them.
pub(crate) fn arg<T>(value: &T) -> *mut c_void {
    (value as *const T).cast_mut().cast::<c_void>()
}

/// Launches `f` on `stream`.
///
/// # Safety
/// `args` must match the kernel's parameter list in number, order and types, every pointer
/// argument must address device memory large enough for what the kernel touches given the
/// other arguments, and that memory must stay allocated until the stream passes this launch.
pub(crate) unsafe fn launch(
    f: sys::CUfunction,
    grid: (u32, u32, u32),
    block: u32,
    shared_bytes: u32,
    stream: &Stream,
    args: &mut [*mut c_void],
) -> Result<()> {
    if let Some(e) = injected(true) {
        return Err(device_error("cuLaunchKernel", e));
    }
    // SAFETY: forwarded to the caller's contract above.
    unsafe { cu::launch_kernel(f, grid, (block, 1, 1), shared_bytes, stream.raw, args) }
        .call("cuLaunchKernel")
}
