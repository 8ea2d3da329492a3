//! The one error type every backend returns.

use crate::BackendKind;

/// Everything that can go wrong in megabatch. No input reachable through the public API panics:
/// it returns one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A buffer or spec has the wrong length or dimensions. `what` names the argument
    /// (for example `"a"` or `"w"`); `expected` and `got` are element counts or sizes.
    #[error("shape mismatch for `{what}`: expected {expected}, got {got}")]
    Shape {
        /// The argument whose shape is wrong.
        what: &'static str,
        /// The length or size the plan or spec requires.
        expected: usize,
        /// The length or size that was passed.
        got: usize,
    },
    /// NaN or ±Inf in the part of an input that is read (for eigh: the lower triangle of
    /// matrix number `matrix`, counted from 0 in batch order). Outputs are left unwritten.
    #[error("non-finite value (NaN or Inf) in matrix {matrix}")]
    NonFinite {
        /// Index of the first offending matrix in the batch.
        matrix: usize,
    },
    /// The call does not fit the plan it was given: the plan was made by another backend
    /// instance, or for eigenvectors when none were passed (or the reverse).
    #[error("call does not fit its plan: {0}")]
    PlanMismatch(&'static str),
    /// The eigensolver's iteration did not converge for matrix `matrix` (30 QL sweeps per
    /// eigenvalue, LAPACK's cap). Not observed on finite input; other matrices are written.
    #[error("eigensolver did not converge for matrix {matrix}")]
    NoConvergence {
        /// Index of the first matrix that failed.
        matrix: usize,
    },
    /// Segment offsets that are not a non-decreasing sequence: `offsets[index]` is smaller than
    /// `offsets[index - 1]`.
    #[error("segment offsets decrease at index {index}")]
    BadOffsets {
        /// First position where the offsets decrease.
        index: usize,
    },
    /// An invalid block mask. `position` is `[batch, head, query block, slot]` of the offending
    /// entry (slot 0 for a count), or `None` when the whole mask is wrong (block sizes, tensor
    /// lengths, a mask that does not fit the spec).
    #[error("invalid block mask{}: {reason}", mask_position(position))]
    Mask {
        /// `[b, h, q_block, slot]` in the mask's own (possibly broadcast) dimensions, for an
        /// error in one entry.
        position: Option<[usize; 4]>,
        /// What is wrong there.
        reason: &'static str,
    },
    /// A spec asks for sizes whose buffers would overflow `usize` or exceed a device limit.
    #[error("problem too large: {0}")]
    TooLarge(&'static str),
    /// A spec or configuration value outside what the operation accepts (for example zero
    /// threads).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The arguments of a user kernel launch do not fit the kernel's parameters (their number,
    /// or an argument's size in bytes), or a user pipeline's bindings do not fit its layout.
    #[error("arguments of kernel `{kernel}`: {message}")]
    KernelArguments {
        /// The kernel's (or entry point's) name.
        kernel: String,
        /// What does not fit.
        message: String,
    },
    /// The backend cannot run this on this device (for example f64 on a GPU without f64
    /// shaders). Reported at plan time.
    #[error("unsupported on {backend}: {message}")]
    Unsupported {
        /// The backend that refused.
        backend: BackendKind,
        /// What is missing.
        message: String,
    },
    /// A calibration file that cannot be used: unreadable, corrupt, of another format version
    /// or made on another machine. `Auto` reports it as a warning and keeps its defaults.
    #[error("calibration file {path}: {reason}")]
    Calibration {
        /// The file.
        path: String,
        /// Why it was not used.
        reason: String,
    },
    /// An error reported by the device or its driver, with the backend's own message. Match
    /// on `kind` to react: free memory and plan smaller after
    /// [`DeviceErrorKind::OutOfMemory`], drop the backend after [`DeviceErrorKind::Lost`].
    #[error("{backend} device error ({kind}): {message}")]
    Device {
        /// What kind of failure it was.
        kind: DeviceErrorKind,
        /// The backend whose device failed.
        backend: BackendKind,
        /// The driver's or runtime's message, naming the call that failed.
        message: String,
    },
}

/// The kind of an [`Error::Device`], as wgpu-hal's `DeviceError` sorts device failures: what a
/// caller can do next differs by kind, the driver's message does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceErrorKind {
    /// A device (or pinned host) allocation failed: `CUDA_ERROR_OUT_OF_MEMORY`, wgpu's
    /// out-of-memory error scope. Plans allocate, so this comes from `plan_*` or `alloc`; the
    /// backend stays usable.
    OutOfMemory,
    /// The device is gone for this process: a sticky CUDA error (illegal address, failed
    /// launch, ECC error, device off the bus) or wgpu's device-lost callback. Every later call
    /// on that backend fails the same way; `Auto` stops choosing it.
    Lost,
    /// A kernel launch or queue submission was refused without losing the device (for example
    /// `CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES`). The backend stays usable.
    LaunchFailure,
    /// Anything else: no driver or device, a kernel that fails to compile (with the NVRTC
    /// log), a validation error, a worker thread the OS refused.
    Other,
}

impl std::fmt::Display for DeviceErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceErrorKind::OutOfMemory => "out of memory",
            DeviceErrorKind::Lost => "device lost",
            DeviceErrorKind::LaunchFailure => "launch failure",
            DeviceErrorKind::Other => "other",
        })
    }
}

impl Error {
    /// `Error::Device` of `kind` on `backend`.
    pub(crate) fn device(
        backend: BackendKind,
        kind: DeviceErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Error::Device {
            kind,
            backend,
            message: message.into(),
        }
    }
}

/// " at batch b, head h, query block q, slot s" for an entry's error, nothing for the mask's.
fn mask_position(position: &Option<[usize; 4]>) -> String {
    match position {
        Some([b, h, q, slot]) => format!(" at batch {b}, head {h}, query block {q}, slot {slot}"),
        None => String::new(),
    }
}

/// `Result` with megabatch's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Error::Shape` unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Shape {
            what,
            expected,
            got,
        })
    }
}
