//! [`AutoBuffer`]: host memory or a GPU backend's buffer, and the staging that lets a plan on
//! one backend read and write buffers of another.

#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaBuffer;
use crate::cost::Residency;
use crate::error::check_len;
use crate::{Auto, Backend, BackendKind, Element, Error, Result};

/// A buffer of [`Auto`]: host memory (from [`Backend::alloc`] or [`AutoBuffer::from_vec`]) or
/// a GPU backend's device memory (from [`Auto::alloc_on`]). Operations take buffers where
/// they are: a GPU plan works on its own device buffers in place, and a CPU plan given device
/// buffers copies through host staging that the plan keeps (allocated on its first such call).
#[derive(Debug)]
pub struct AutoBuffer<T: Element> {
    pub(crate) place: Place<T>,
}

#[derive(Debug)]
pub(crate) enum Place<T: Element> {
    Host(Vec<T>),
    #[cfg(feature = "cuda")]
    Cuda(CudaBuffer<T>),
}

impl<T: Element> AutoBuffer<T> {
    /// Wraps host data.
    pub fn from_vec(host: Vec<T>) -> Self {
        Self {
            place: Place::Host(host),
        }
    }

    /// The data, if it lives in host memory.
    pub fn as_host(&self) -> Option<&[T]> {
        match &self.place {
            Place::Host(v) => Some(v),
            #[cfg(feature = "cuda")]
            Place::Cuda(_) => None,
        }
    }

    /// The data, mutably, if it lives in host memory.
    pub fn as_host_mut(&mut self) -> Option<&mut [T]> {
        match &mut self.place {
            Place::Host(v) => Some(v),
            #[cfg(feature = "cuda")]
            Place::Cuda(_) => None,
        }
    }

    /// The CUDA buffer, if the data lives on the CUDA device.
    #[cfg(feature = "cuda")]
    pub fn as_cuda(&self) -> Option<&CudaBuffer<T>> {
        match &self.place {
            Place::Cuda(b) => Some(b),
            Place::Host(_) => None,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.place {
            Place::Host(v) => v.len(),
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => b.len(),
        }
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the data lives, as the cost model counts it.
    pub fn residency(&self) -> Residency {
        match &self.place {
            Place::Host(_) => Residency::Host,
            #[cfg(feature = "cuda")]
            Place::Cuda(_) => Residency::Device(BackendKind::Cuda),
        }
    }
}

impl Auto {
    /// Allocates a zeroed buffer of `len` elements on `kind` (host memory for
    /// [`BackendKind::Cpu`]). Data kept there between operations is free for plans on that
    /// backend, which the cost model counts (see [`Residency`]).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `kind` is not present; otherwise as [`Backend::alloc`].
    pub fn alloc_on<T: Element>(&self, kind: BackendKind, len: usize) -> Result<AutoBuffer<T>> {
        match kind {
            BackendKind::Cpu => self.alloc(len),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(AutoBuffer {
                place: Place::Cuda(self.cuda_or_err()?.alloc(len)?),
            }),
            other => Err(Error::Unsupported {
                backend: other.name(),
                message: "backend not built or no device found".into(),
            }),
        }
    }

    /// `buf` as a host slice: the buffer itself, or a copy of device data into `stage`.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables, clippy::ptr_arg))]
    pub(crate) fn read_host<'a, T: Element>(
        &self,
        buf: &'a AutoBuffer<T>,
        stage: &'a mut Vec<T>,
    ) -> Result<&'a [T]> {
        match &buf.place {
            Place::Host(v) => Ok(v),
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => {
                stage.resize(b.len(), T::zeroed());
                self.cuda_or_err()?.download(b, stage)?;
                Ok(stage)
            }
        }
    }

    /// A host slice to write `buf`'s new contents into: the buffer itself, or `stage`, which
    /// [`Auto::finish_write`] then copies to the device.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables, clippy::ptr_arg))]
    pub(crate) fn write_host<'a, T: Element>(
        buf: &'a mut AutoBuffer<T>,
        stage: &'a mut Vec<T>,
    ) -> &'a mut [T] {
        match &mut buf.place {
            Place::Host(v) => v,
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => {
                stage.resize(b.len(), T::zeroed());
                stage
            }
        }
    }

    /// Copies `stage` to `buf` if `buf` is device memory (after [`Auto::write_host`]).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables, clippy::ptr_arg))]
    pub(crate) fn finish_write<T: Element>(
        &self,
        buf: &mut AutoBuffer<T>,
        stage: &[T],
    ) -> Result<()> {
        match &mut buf.place {
            Place::Host(_) => Ok(()),
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => self.cuda_or_err()?.upload(stage, b),
        }
    }
}

impl Backend for Auto {
    type Buffer<T: Element> = AutoBuffer<T>;

    fn kind(&self) -> BackendKind {
        self.forced.unwrap_or(BackendKind::Cpu)
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<AutoBuffer<T>> {
        self.cpu.alloc(len).map(AutoBuffer::from_vec)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut AutoBuffer<T>) -> Result<()> {
        match &mut dst.place {
            Place::Host(v) => {
                check_len("upload source", v.len(), src.len())?;
                v.copy_from_slice(src);
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => self.cuda_or_err()?.upload(src, b),
        }
    }

    fn download<T: Element>(&self, src: &AutoBuffer<T>, dst: &mut [T]) -> Result<()> {
        match &src.place {
            Place::Host(v) => {
                check_len("download destination", v.len(), dst.len())?;
                dst.copy_from_slice(v);
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => self.cuda_or_err()?.download(b, dst),
        }
    }

    fn synchronize(&self) -> Result<()> {
        self.cpu.synchronize()?;
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            cuda.synchronize()?;
        }
        Ok(())
    }
}
