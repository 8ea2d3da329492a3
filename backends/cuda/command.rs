//! Putting work on a stream: kernel arguments, launches and grid sizes. The ordering of that
//! work with other streams is `access.rs`'s `enqueue_ordered`.

use std::ffi::c_void;

use cudarc::driver::result as cu;
use cudarc::driver::sys;

use super::driver::Stream;
use super::error::{device_error, injected, DriverResultExt};
use crate::{Error, Result};

/// A kernel argument: a pointer to the value, as `cuLaunchKernel` takes them.
pub(crate) fn arg<T>(value: &T) -> *mut c_void {
    (value as *const T).cast_mut().cast::<c_void>()
}

/// Launches `f` on `stream` with a one-dimensional block.
///
/// # Safety
/// As [`launch_dims`].
pub(crate) unsafe fn launch(
    f: sys::CUfunction,
    grid: (u32, u32, u32),
    block: u32,
    shared_bytes: u32,
    stream: &Stream,
    args: &mut [*mut c_void],
) -> Result<()> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { launch_dims(f, grid, (block, 1, 1), shared_bytes, stream, args) }
}

/// Launches `f` on `stream`.
///
/// # Safety
/// `args` must match the kernel's parameter list in number, order and types, every pointer
/// argument must address device memory large enough for what the kernel touches given the
/// other arguments, and that memory must stay allocated until the stream passes this launch.
pub(crate) unsafe fn launch_dims(
    f: sys::CUfunction,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared_bytes: u32,
    stream: &Stream,
    args: &mut [*mut c_void],
) -> Result<()> {
    if let Some(e) = injected(true) {
        return Err(device_error("cuLaunchKernel", e));
    }
    // SAFETY: forwarded to the caller's contract above.
    unsafe { cu::launch_kernel(f, grid, block, shared_bytes, stream.raw, args) }
        .call("cuLaunchKernel")
}

/// Grid size for `work` items handled `per_block` at a time, as the `u32` the driver takes.
pub(crate) fn blocks_for(work: usize, per_block: usize) -> Result<u32> {
    u32::try_from(work.div_ceil(per_block.max(1)).max(1))
        .map_err(|_| Error::TooLarge("grid exceeds 2^32 blocks"))
}
