//! Host staging: page-locked host memory ([`PinnedHost`]) and device arrays with a pinned
//! mirror ([`Staged`]), through which `*_host` calls copy the caller's slices. Each plan keeps
//! its own `HostStaging` of these, made with the plan, or by `prepare_*_host` for a plan of
//! `plan_*_device`; never by a call.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cudarc::driver::result as cu;
use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use crate::backends::cpu::pool::{DisjointMut, WorkerPool};

use super::driver::{bind, bytes_for, copy_to_device, copy_to_host, DeviceMemory, Stream};
use super::error::DriverResultExt;
use crate::{Error, Result};

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
        super::graph::refuse_in_capture(
            "allocation inside a graph capture: make buffers and plans before capturing",
        )?;
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

    /// The first value's address, for an asynchronous copy into the memory while the value is
    /// borrowed elsewhere (the memory is a separate allocation the value only points to).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr
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

/// Environment variable: how many threads copy between callers' slices and pinned staging
/// (default: half the cores, at most 8; `1` copies on the calling thread only).
pub const COPY_THREADS_ENV: &str = "MEGABATCH_CUDA_COPY_THREADS";

/// Environment variable: microseconds a copy thread out of work, and a caller waiting for the
/// copy threads, spin before parking (default 250; `0` parks at once). A host call runs
/// several short copies (one per chunk each way in the chunked pipeline); waking parked
/// threads for each costs tens of microseconds, most on virtual machines.
pub const COPY_SPIN_ENV: &str = "MEGABATCH_CUDA_COPY_SPIN_US";

/// Copies of at least this many bytes are split across the copy threads.
const PARALLEL_COPY_MIN_BYTES: usize = 256 << 10;

/// Bytes per copy task.
const COPY_CHUNK_BYTES: usize = 64 << 10;

/// The process's copy threads: one thread moves about 10 GB/s between pageable and pinned
/// memory, which for a host call's megabytes is as slow as the PCIe transfer itself (the
/// 1,582 x 12 x 12 seed workload spent more time in these two copies than on the device).
fn copy_pool() -> Option<&'static WorkerPool> {
    static POOL: OnceLock<Option<WorkerPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = std::env::var(COPY_THREADS_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or((cores / 2).clamp(1, 8));
        let spin = std::env::var(COPY_SPIN_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(250);
        (threads > 1)
            .then(|| WorkerPool::spinning(threads, Duration::from_micros(spin)).ok())
            .flatten()
    })
    .as_ref()
}

/// `dst.copy_from_slice(src)`, on the copy threads when it is large.
pub(crate) fn copy_host<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    copy_host_checked(dst, src, &|_| true);
}

/// `dst.copy_from_slice(src)`, on the copy threads when it is large, testing `ok` on each
/// piece just copied (still in cache): whether it held for all of them.
pub(crate) fn copy_host_checked<T: Copy + Send + Sync>(
    dst: &mut [T],
    src: &[T],
    ok: &(dyn Fn(&[T]) -> bool + Sync),
) -> bool {
    let bytes = std::mem::size_of_val(src);
    let pool = match copy_pool() {
        Some(p) if bytes >= PARALLEL_COPY_MIN_BYTES && dst.len() == src.len() => p,
        _ => {
            dst.copy_from_slice(src);
            return ok(dst);
        }
    };
    let per = (COPY_CHUNK_BYTES / std::mem::size_of::<T>().max(1)).max(1);
    let chunks = src.len().div_ceil(per);
    let out = DisjointMut::new(dst);
    let all = AtomicBool::new(true);
    pool.run(chunks, &|c, _| {
        let start = c * per;
        let len = per.min(src.len() - start);
        // SAFETY: chunk c alone writes elements start..start + len.
        let piece = unsafe { out.range(start, len) };
        piece.copy_from_slice(&src[start..start + len]);
        if !ok(piece) {
            all.store(false, Ordering::Relaxed);
        }
    });
    all.into_inner()
}

/// A device array with a pinned host mirror (or, `unpinned`, none: copies then go straight
/// between the device and the caller's pageable memory, which the driver stages itself).
pub(crate) struct Staged<T> {
    device: DeviceMemory,
    pinned: Option<PinnedHost<T>>,
}

impl<T: bytemuck::Pod + Send + Sync> Staged<T> {
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
                copy_host(pinned.as_mut_slice(), src);
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

    /// Copies the pinned mirror, as the last [`Staged::fetch`] left it once its stream is
    /// synchronised, into `dst` (on the copy threads when large).
    pub(crate) fn copy_received(&self, dst: &mut [T]) {
        copy_host(dst, self.received());
    }

    /// Queues the copy of the device array straight into `dst` (pageable); read `dst` only
    /// after synchronising `stream`.
    pub(crate) fn fetch_into(&self, dst: &mut [T], stream: &Stream) -> Result<()> {
        copy_to_host(self.device.ptr(), dst, stream)
    }

    /// Copies `src` into elements `at..at + src.len()` of the pinned mirror (on the copy
    /// threads when large) and queues that range's copy to the device; whether `ok` held for
    /// every piece copied. Unpinned: [`Error::PlanMismatch`].
    pub(crate) fn send_range(
        &mut self,
        src: &[T],
        at: usize,
        stream: &Stream,
        ok: &(dyn Fn(&[T]) -> bool + Sync),
    ) -> Result<bool> {
        let (pinned, device) = self.range_parts(at, src.len())?;
        let held = copy_host_checked(pinned, src, ok);
        copy_to_device(pinned, device, stream)?;
        Ok(held)
    }

    /// Queues the copy of elements `at..at + len` of the device array into the pinned mirror;
    /// read them with [`Staged::copy_received_range`] once `stream` has passed this point.
    pub(crate) fn fetch_range(&mut self, at: usize, len: usize, stream: &Stream) -> Result<()> {
        let (pinned, device) = self.range_parts(at, len)?;
        copy_to_host(device, pinned, stream)
    }

    /// Copies elements `at..at + dst.len()` of the pinned mirror, as the last
    /// [`Staged::fetch_range`] left them, into `dst` (on the copy threads when large).
    pub(crate) fn copy_received_range(&self, at: usize, dst: &mut [T]) {
        copy_host(dst, &self.received()[at..at + dst.len()]);
    }

    /// The pinned range `at..at + len` and the device address of its first element.
    fn range_parts(&mut self, at: usize, len: usize) -> Result<(&mut [T], sys::CUdeviceptr)> {
        let device = self.device.ptr() + (at * std::mem::size_of::<T>()) as u64;
        let pinned = self.pinned.as_mut().ok_or(Error::PlanMismatch(
            "a chunked host transfer needs a pinned mirror",
        ))?;
        Ok((&mut pinned.as_mut_slice()[at..at + len], device))
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
