//! CUDA driver errors as [`Error::Device`], sorted into [`DeviceErrorKind`]s, and the
//! process-wide "device lost" state a sticky error leaves behind.

use std::sync::atomic::{AtomicBool, Ordering};

use cudarc::driver::result::DriverError;
use cudarc::driver::sys;

use crate::{BackendKind, DeviceErrorKind, Error, Result};

/// Set once a sticky error (see [`is_sticky`]) was seen: the process's CUDA contexts are
/// unusable until it exits, and every later call fails fast.
static DEVICE_LOST: AtomicBool = AtomicBool::new(false);

/// Whether a sticky CUDA error has been seen in this process.
pub(crate) fn device_lost() -> bool {
    DEVICE_LOST.load(Ordering::Relaxed)
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

/// The kind of a driver error: sticky errors lose the device; the launch errors that leave
/// the context usable (CUDA driver API, `CUresult`) are launch failures.
fn kind_of(e: DriverError) -> DeviceErrorKind {
    use sys::cudaError_enum as E;
    if is_sticky(e) {
        return DeviceErrorKind::Lost;
    }
    match e.0 {
        E::CUDA_ERROR_OUT_OF_MEMORY => DeviceErrorKind::OutOfMemory,
        E::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES
        | E::CUDA_ERROR_LAUNCH_TIMEOUT
        | E::CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING
        | E::CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE => DeviceErrorKind::LaunchFailure,
        _ => DeviceErrorKind::Other,
    }
}

/// `Error::Device` of `kind` on CUDA.
pub(crate) fn cuda_error(kind: DeviceErrorKind, message: impl Into<String>) -> Error {
    Error::device(BackendKind::Cuda, kind, message)
}

/// `Error::Device` naming the driver call that failed and the driver's message; a sticky
/// error also marks the device lost.
pub(crate) fn device_error(call: &str, e: DriverError) -> Error {
    let kind = kind_of(e);
    if kind == DeviceErrorKind::Lost {
        DEVICE_LOST.store(true, Ordering::Relaxed);
        cuda_error(
            kind,
            format!("{call}: {e} (device lost: CUDA is unusable in this process)"),
        )
    } else {
        cuda_error(kind, format!("{call}: {e}"))
    }
}

/// The error of every call after the device was lost.
pub(crate) fn lost_error() -> Error {
    cuda_error(
        DeviceErrorKind::Lost,
        "device lost earlier in this process (a sticky CUDA error); restart the process to use \
         the GPU again",
    )
}

/// The fault armed by `megabatch::faults::inject` for a call of this kind, as the driver
/// error it stands for.
#[cfg(feature = "fault-injection")]
pub(crate) fn injected(launch: bool) -> Option<DriverError> {
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
pub(crate) fn injected(_launch: bool) -> Option<DriverError> {
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
