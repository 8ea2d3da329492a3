//! Finding and describing the device: how many CUDA devices the driver reports, and what a
//! plan needs to know about one ([`DeviceInfo`]).

use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use super::error::DriverResultExt;
use crate::Result;

/// What a plan needs to know about the device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The device name, e.g. `"NVIDIA H100 80GB HBM3"`.
    pub name: String,
    /// Compute capability `(major, minor)`.
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub multiprocessors: usize,
    /// Largest dynamic shared memory one block may opt into, in bytes.
    pub max_shared_per_block: usize,
    /// Total device memory in bytes.
    pub total_memory: usize,
    /// The driver's CUDA version as `cuDriverGetVersion` reports it (`1000 * major + 10 * minor`,
    /// e.g. 13000 for CUDA 13.0).
    pub driver_version: i32,
}

impl DeviceInfo {
    /// Queries the device of `ctx` (its context must be retained).
    pub(super) fn query(ctx: &CudaContext) -> Result<Self> {
        let attr = |a| ctx.attribute(a).call("cuDeviceGetAttribute");
        use sys::CUdevice_attribute as A;
        Ok(DeviceInfo {
            name: ctx.name().call("cuDeviceGetName")?,
            compute_capability: ctx.compute_capability().call("cuDeviceGetAttribute")?,
            multiprocessors: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as usize,
            max_shared_per_block: attr(A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?
                as usize,
            total_memory: ctx.total_mem().call("cuDeviceTotalMem")?,
            driver_version: driver_version()?,
        })
    }
}

/// Number of CUDA devices the driver reports (0 without a driver).
pub(super) fn device_count() -> Result<usize> {
    // SAFETY: only tries to dlopen the library.
    if !unsafe { sys::is_culib_present() } {
        return Ok(0);
    }
    let count = CudaContext::device_count().call("cuDeviceGetCount")?;
    Ok(count.max(0) as usize)
}

fn driver_version() -> Result<i32> {
    let mut version = 0;
    // SAFETY: libcuda is loaded (checked by the caller) and `version` outlives the call.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .call("cuDriverGetVersion")?;
    Ok(version)
}
