//! Host staging: page-locked host memory ([`PinnedHost`]) and device arrays with a pinned
//! mirror ([`Staged`]), through which `*_host` calls copy the caller's slices. Each plan keeps
//! its own `HostStaging` of these, made with the plan, or by `prepare_*_host` for a plan of
//! `plan_*_device`; never by a call.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::result as cu;
use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use super::driver::{bind, bytes_for, copy_to_device, copy_to_host, DeviceMemory, Stream};
use super::error::DriverResultExt;
use crate::Result;

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
