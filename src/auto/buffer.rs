//! [`AutoBuffer`]: host memory or a GPU backend's buffer, and the staging that lets a plan on
//! one backend read and write buffers of another.

use super::member::{on_place, Member};
use crate::backends::cpu::Cpu;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaBuffer;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::WgpuBuffer;
use crate::cost::Residency;
use crate::error::check_len;
use crate::{Auto, Backend, BackendKind, Element, Error, Result};

/// A buffer of [`Auto`]: host memory (from [`Backend::alloc`] or [`AutoBuffer::from_vec`]) or
/// a GPU backend's device memory (from [`Auto::alloc_on`]). Operations take buffers where
/// they are: a plan whose buffers are all its backend's own (host memory for the CPU) works
/// on them in place; given buffers of other places (a CPU plan given device buffers, a CUDA
/// plan given wgpu or mixed buffers) it copies through host staging that the plan keeps and
/// runs its host path. That staging is allocated when the plan is made for the residency it
/// is planned for (`plan_*_for`), or by `Auto::prepare_*_staging` for any other placement;
/// a call never allocates it (see [`Auto::plan_eigh_for`]).
#[derive(Debug)]
pub struct AutoBuffer<T: Element> {
    pub(crate) place: Place<T>,
}

#[derive(Debug)]
pub(crate) enum Place<T: Element> {
    Host(Vec<T>),
    #[cfg(feature = "cuda")]
    Cuda(CudaBuffer<T>),
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuBuffer<T>),
}

impl<T: Element> AutoBuffer<T> {
    /// Wraps host data.
    pub fn from_vec(host: Vec<T>) -> Self {
        Self {
            place: Place::Host(host),
        }
    }

    /// Wraps a CUDA buffer (one megabatch allocated, or one borrowed from other code with
    /// [`crate::backends::cuda::Cuda::borrow_device_ptr`]).
    #[cfg(feature = "cuda")]
    pub fn from_cuda(buf: CudaBuffer<T>) -> Self {
        Self {
            place: Place::Cuda(buf),
        }
    }

    /// Wraps a wgpu buffer (one megabatch allocated, or one adopted with
    /// [`crate::backends::wgpu::Wgpu::adopt_buffer`]).
    #[cfg(feature = "wgpu")]
    pub fn from_wgpu(buf: WgpuBuffer<T>) -> Self {
        Self {
            place: Place::Wgpu(buf),
        }
    }

    /// The data, if it lives in host memory.
    pub fn as_host(&self) -> Option<&[T]> {
        Cpu::own(self).map(Vec::as_slice)
    }

    /// The data, mutably, if it lives in host memory.
    pub fn as_host_mut(&mut self) -> Option<&mut [T]> {
        Cpu::own_mut(self).map(Vec::as_mut_slice)
    }

    /// The CUDA buffer, if the data lives on the CUDA device.
    #[cfg(feature = "cuda")]
    pub fn as_cuda(&self) -> Option<&CudaBuffer<T>> {
        crate::backends::cuda::Cuda::own(self)
    }

    /// The wgpu buffer, if the data lives on the wgpu device.
    #[cfg(feature = "wgpu")]
    pub fn as_wgpu(&self) -> Option<&WgpuBuffer<T>> {
        crate::backends::wgpu::Wgpu::own(self)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.place {
            Place::Host(v) => v.len(),
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => b.len(),
            #[cfg(feature = "wgpu")]
            Place::Wgpu(b) => b.len(),
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
            #[cfg(feature = "wgpu")]
            Place::Wgpu(_) => Residency::Device(BackendKind::Wgpu),
        }
    }
}

/// What a call with buffers in a place its plan has no staging for returns.
pub(crate) const NOT_STAGED: Error = Error::PlanMismatch(
    "buffers in a place this Auto plan was not made for need host staging: plan for their \
     residency (plan_*_for) or call Auto::prepare_eigh_staging (reduce, attention: likewise) \
     first",
);

/// `stage` holding `len` elements within the capacity its plan reserved (no allocation):
/// [`NOT_STAGED`] if the plan reserved none, `Shape` if `len` exceeds it.
fn stage_to<'a, T: Element>(
    stage: &'a mut Vec<T>,
    len: usize,
    what: &'static str,
) -> Result<&'a mut Vec<T>> {
    if len > stage.capacity() {
        return Err(if stage.capacity() == 0 {
            NOT_STAGED
        } else {
            Error::Shape {
                what,
                expected: stage.capacity(),
                got: len,
            }
        });
    }
    stage.resize(len, T::zeroed());
    Ok(stage)
}

/// `len` elements of capacity in `stage` (allocating only if it has less), for plan time.
pub(crate) fn reserve_stage<T>(stage: &mut Vec<T>, len: usize) {
    if stage.capacity() < len {
        *stage = Vec::with_capacity(len);
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
        fn on<B: Member, T: Element>(backend: &B, len: usize) -> Result<AutoBuffer<T>> {
            backend.alloc(len).map(B::wrap)
        }
        match kind {
            BackendKind::Cpu => on(&self.cpu, len),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => on(self.cuda_or_err()?, len),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => on(self.wgpu_or_err()?, len),
            #[allow(unreachable_patterns)]
            other => Err(Error::Unsupported {
                backend: other,
                message: "backend not built or no device found".into(),
            }),
        }
    }

    /// `buf` as a host slice: the buffer itself, or a copy of device data into `stage` (the
    /// plan's, reserved at plan time: [`NOT_STAGED`] if it was not; `what` names the operand
    /// for a length error).
    #[cfg_attr(
        not(any(feature = "cuda", feature = "wgpu")),
        allow(unused_variables, clippy::ptr_arg)
    )]
    pub(crate) fn read_host<'a, T: Element>(
        &self,
        buf: &'a AutoBuffer<T>,
        stage: &'a mut Vec<T>,
        what: &'static str,
    ) -> Result<&'a [T]> {
        on_place!(self, &buf.place, |v| Ok(v), |dev, b| {
            let stage = stage_to(stage, b.len(), what)?;
            dev.download(b, stage)?;
            Ok(stage)
        })
    }

    /// A host slice to write `buf`'s new contents into: the buffer itself, or `stage` (as for
    /// [`Auto::read_host`]), which [`Auto::finish_write`] then copies to the device.
    #[cfg_attr(
        not(any(feature = "cuda", feature = "wgpu")),
        allow(unused_variables, clippy::ptr_arg)
    )]
    pub(crate) fn write_host<'a, T: Element>(
        buf: &'a mut AutoBuffer<T>,
        stage: &'a mut Vec<T>,
        what: &'static str,
    ) -> Result<&'a mut [T]> {
        let len = buf.len();
        match &mut buf.place {
            Place::Host(v) => Ok(v),
            #[allow(unreachable_patterns)]
            _ => Ok(stage_to(stage, len, what)?),
        }
    }

    /// Copies `stage` to `buf` if `buf` is device memory (after [`Auto::write_host`]).
    #[cfg_attr(
        not(any(feature = "cuda", feature = "wgpu")),
        allow(unused_variables, clippy::ptr_arg)
    )]
    pub(crate) fn finish_write<T: Element>(
        &self,
        buf: &mut AutoBuffer<T>,
        stage: &[T],
    ) -> Result<()> {
        on_place!(self, &mut buf.place, |_v| Ok(()), |dev, b| dev
            .upload(stage, b))
    }
}

impl Backend for Auto {
    type Buffer<T: Element> = AutoBuffer<T>;
    type Queue = super::AutoQueue;

    fn kind(&self) -> BackendKind {
        self.forced.unwrap_or(BackendKind::Cpu)
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<AutoBuffer<T>> {
        self.cpu.alloc(len).map(AutoBuffer::from_vec)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut AutoBuffer<T>) -> Result<()> {
        on_place!(
            self,
            &mut dst.place,
            |v| {
                check_len("upload source", v.len(), src.len())?;
                v.copy_from_slice(src);
                Ok(())
            },
            |dev, b| dev.upload(src, b)
        )
    }

    fn download<T: Element>(&self, src: &AutoBuffer<T>, dst: &mut [T]) -> Result<()> {
        on_place!(
            self,
            &src.place,
            |v| {
                check_len("download destination", v.len(), dst.len())?;
                dst.copy_from_slice(v);
                Ok(())
            },
            |dev, b| dev.download(b, dst)
        )
    }

    fn read_scalar<T: Element>(&self, src: &AutoBuffer<T>) -> Result<T> {
        on_place!(self, &src.place, |v| self.cpu.read_scalar(v), |dev, b| dev
            .read_scalar(b))
    }

    fn synchronize(&self) -> Result<()> {
        self.cpu.synchronize()?;
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            cuda.synchronize()?;
        }
        #[cfg(feature = "wgpu")]
        if let Some(wgpu) = &self.wgpu {
            wgpu.synchronize()?;
        }
        Ok(())
    }
}
