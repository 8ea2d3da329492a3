//! wgpu failures as [`Error::Device`], sorted into [`DeviceErrorKind`]s, and
//! [`Error::Unsupported`] for what an adapter lacks.

use crate::{BackendKind, DeviceErrorKind, Error};

/// `Error::Device` of `kind` on wgpu.
pub(crate) fn device_error(kind: DeviceErrorKind, message: impl Into<String>) -> Error {
    Error::device(BackendKind::Wgpu, kind, message)
}

/// `Error::Unsupported` on wgpu: a dtype, feature or size this adapter or backend lacks.
pub(crate) fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported {
        backend: BackendKind::Wgpu,
        message: message.into(),
    }
}

/// The error of every call after the device was lost.
pub(crate) fn lost_error() -> Error {
    device_error(DeviceErrorKind::Lost, "the wgpu device was lost")
}

/// The kind of an error wgpu reported outside an error scope.
pub(crate) fn uncaptured_kind(e: &wgpu::Error) -> DeviceErrorKind {
    match e {
        wgpu::Error::OutOfMemory { .. } => DeviceErrorKind::OutOfMemory,
        _ => DeviceErrorKind::Other,
    }
}

/// The error of a call made inside validation and out-of-memory error scopes, naming the call
/// (`what`): a validation error first, else an out-of-memory one; `None` if neither fired.
pub(crate) fn scope_error(
    what: &str,
    validation: Option<wgpu::Error>,
    oom: Option<wgpu::Error>,
) -> Option<Error> {
    let (kind, e) = match (validation, oom) {
        (Some(e), _) => (DeviceErrorKind::Other, e),
        (None, Some(e)) => (DeviceErrorKind::OutOfMemory, e),
        (None, None) => return None,
    };
    Some(device_error(kind, format!("{what}: {e}")))
}

/// The error an injected fault (`megabatch::faults::inject`) stands for, as the real fault
/// gives it.
#[cfg(feature = "fault-injection")]
pub(crate) fn injected_error(fault: crate::faults::Fault) -> Error {
    use crate::faults::Fault;
    match fault {
        Fault::DeviceLost => {
            device_error(DeviceErrorKind::Lost, "the wgpu device was lost (injected)")
        }
        f => device_error(
            match f {
                Fault::OutOfMemory => DeviceErrorKind::OutOfMemory,
                _ => DeviceErrorKind::LaunchFailure,
            },
            format!("{f:?} (injected)"),
        ),
    }
}
