//! The trait every backend implements: a device with its own memory.

use crate::{Element, Result};

/// Which implementation runs an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// The CPU backend ([`crate::backends::cpu::Cpu`]): always built.
    Cpu,
    /// The wgpu backend (feature `wgpu`).
    Wgpu,
    /// The CUDA backend (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// The lowercase name used in `MEGABATCH_BACKEND`, errors and reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A device with its own memory. Buffers are allocated at plan time; `upload`/`download` copy
/// between host slices and device buffers of equal length.
///
/// Model: wgpu-hal's one trait set with one module per backend. The CPU backend's buffer is
/// host memory, so the same generic code runs on every backend.
pub trait Backend: Send + Sync {
    /// A device-resident array of `T`, row-major as the operation's layout says.
    type Buffer<T: Element>: Send + Sync;

    /// Where work is queued: a CUDA stream (`backends::cuda::CudaQueue`), a wgpu device's queue
    /// (`backends::wgpu::WgpuQueue`; plain names: those modules exist only with their
    /// features), the CPU's worker pool
    /// ([`crate::backends::cpu::CpuQueue`]). Every device-buffer call has an `_on` form that
    /// takes one (`eigh_on`, `reduce_on`, `attention_on`); the plain forms run on the plan's
    /// own queue, and host-slice calls always do (they wait for their result anyway).
    type Queue: Send + Sync;

    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Allocates a zeroed buffer of `len` elements. Plan-time only: never called by `execute`.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if `len * size_of::<T>()` overflows; [`crate::Error::Device`]
    /// if the device is out of memory.
    fn alloc<T: Element>(&self, len: usize) -> Result<Self::Buffer<T>>;

    /// Copies `src` into `dst`.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the lengths differ.
    fn upload<T: Element>(&self, src: &[T], dst: &mut Self::Buffer<T>) -> Result<()>;

    /// Copies `src` into `dst`, waiting for work that writes `src` to finish.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the lengths differ.
    fn download<T: Element>(&self, src: &Self::Buffer<T>, dst: &mut [T]) -> Result<()>;

    /// Reads element 0 of `src` back to the host, waiting for work that writes `src` to
    /// finish: the one scalar a device-resident loop needs per iteration (a reduction's
    /// output, [`crate::Reducer::reduce`]). `T` comes from the buffer, so no type needs naming.
    /// Allocates nothing.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] (`what: "out"`) if `src` is empty; [`crate::Error::Device`] if
    /// the device fails.
    fn read_scalar<T: Element>(&self, src: &Self::Buffer<T>) -> Result<T>;

    /// Waits until all submitted work has finished.
    fn synchronize(&self) -> Result<()>;
}
