//! [`CudaBuffer`]: a device array with an event marking its last use, so work on two plans'
//! streams that shares a buffer runs in submission order.

use std::sync::Arc;

use cudarc::driver::CudaContext;

use super::driver::{bytes_for, DeviceMemory, Event};
use crate::Result;

/// A device array of `T` in one `Cuda` context, with an event marking its last use.
pub struct CudaBuffer<T> {
    pub(super) mem: DeviceMemory,
    pub(super) len: usize,
    pub(super) last_use: Event,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::fmt::Debug for CudaBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("len", &self.len)
            .finish()
    }
}

impl<T> CudaBuffer<T> {
    /// `len` zeroed elements in `ctx`, never used yet.
    pub(super) fn zeroed(ctx: &Arc<CudaContext>, len: usize) -> Result<Self> {
        let bytes = bytes_for(len, std::mem::size_of::<T>())?;
        Ok(CudaBuffer {
            mem: DeviceMemory::zeroed(ctx, bytes)?,
            len,
            last_use: Event::new(ctx)?,
            _t: std::marker::PhantomData,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw device address (`CUdeviceptr`), for interop with other CUDA code. Work that
    /// megabatch queued on the buffer may still be running: synchronise first.
    pub fn device_ptr(&self) -> u64 {
        self.mem.ptr()
    }
}
