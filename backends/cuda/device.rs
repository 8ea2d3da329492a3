//! The backend handle [`Cuda`]: a device's primary context and the kernels loaded into it,
//! and its [`Backend`] implementation (buffers, copies, synchronisation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use super::access::Mode;
use super::adapter::{self, DeviceInfo};
use super::buffer::CudaBuffer;
use super::driver::{self, bind};
use super::error::{self as cuda_err, cuda_error, device_error, DriverResultExt};
use super::graph::refuse_in_capture;
use super::nvrtc::{self, compile_kernels};
use super::pipeline::Kernels;
use crate::error::check_len;
use crate::{Backend, BackendKind, DeviceErrorKind, Element, Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A CUDA device: its primary context and the kernels loaded into it. `Send + Sync`: share one
/// handle between threads (in an `Arc`, or cloned: clones share the context and kernels and
/// accept each other's plans), each thread with its own plans.
#[derive(Clone)]
pub struct Cuda {
    pub(super) ctx: Arc<CudaContext>,
    pub(super) kernels: Arc<Kernels>,
    /// Kernel variants compiled as their own programs (attention's [`AttentionKernel`], eigh's
    /// [`EighKernel`]) loaded so far, by name; compiled on first use, shared by clones.
    variant_modules: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Kernels>>>>,
    pub(super) info: DeviceInfo,
    pub(super) id: u64,
}

impl std::fmt::Debug for Cuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cuda").field("device", &self.info).finish()
    }
}

impl Cuda {
    /// The first CUDA device (ordinal 0).
    ///
    /// # Errors
    /// As [`Cuda::with_device`].
    pub fn new() -> Result<Self> {
        Self::with_device(0)
    }

    /// The CUDA device `ordinal`: retains its primary context and compiles (or takes from the
    /// process cache) the kernels for its architecture.
    ///
    /// # Errors
    /// [`Error::Device`] when libcuda or libnvrtc cannot be loaded, there is no such device,
    /// or a kernel fails to compile (the message carries the NVRTC log).
    pub fn with_device(ordinal: usize) -> Result<Self> {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { sys::is_culib_present() } {
            return Err(cuda_error(
                DeviceErrorKind::Other,
                "libcuda not found: no NVIDIA driver on this machine",
            ));
        }
        let count = CudaContext::device_count().call("cuDeviceGetCount")?;
        if ordinal >= count.max(0) as usize {
            return Err(cuda_error(
                DeviceErrorKind::Other,
                format!("no CUDA device {ordinal} ({count} present)"),
            ));
        }
        let ctx = CudaContext::new(ordinal).call("cuDevicePrimaryCtxRetain")?;
        let info = DeviceInfo::query(&ctx)?;
        let (major, minor) = info.compute_capability;
        let cubin = compile_kernels(&format!("sm_{major}{minor}"))?;
        let kernels = Arc::new(Kernels::load(&ctx, &cubin)?);
        Ok(Self {
            ctx,
            kernels,
            variant_modules: Default::default(),
            info,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Number of CUDA devices the driver reports (0 without a driver).
    ///
    /// # Errors
    /// [`Error::Device`] if the driver is present but cannot be queried.
    pub fn device_count() -> Result<usize> {
        adapter::device_count()
    }

    /// How many device allocations (`cuMemAlloc`) megabatch has made in this process: plans
    /// and buffers allocate, execute calls never do, which tests check with this counter.
    pub fn device_allocations() -> u64 {
        driver::DEVICE_ALLOCATIONS.load(Ordering::Relaxed)
    }

    /// How many times megabatch made the host wait for the device in this process (stream,
    /// event and context synchronisations): a chain of device-buffer calls, user kernels and
    /// graph replays adds none; each host call, download and `reduce_scalar` adds its waits.
    pub fn host_waits() -> u64 {
        driver::HOST_WAITS.load(Ordering::Relaxed)
    }

    /// How many device-to-host copies megabatch made in this process (downloads, host calls'
    /// results and statuses, `read_scalar`, `reduce_scalar`): a device-resident iteration
    /// that reads back one scalar adds one.
    pub fn device_reads() -> u64 {
        driver::DEVICE_READS.load(Ordering::Relaxed)
    }

    /// Whether a sticky CUDA error (an illegal address, a failed launch, an ECC error, a
    /// device that fell off the bus) has made CUDA unusable in this process. Every call on
    /// any `Cuda` handle then returns `Error::Device` at once; `Auto` stops choosing CUDA.
    pub fn is_lost(&self) -> bool {
        cuda_err::device_lost()
    }

    /// The device's name, compute capability, size and limits.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The module of the variant `name`, compiled from `source()` (NVRTC, cached in the process
    /// and on disk) and loaded on first use.
    pub(super) fn variant_module(
        &self,
        name: &str,
        source: impl FnOnce() -> String,
    ) -> Result<Arc<Kernels>> {
        let mut map = self
            .variant_modules
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(name) {
            return Ok(m.clone());
        }
        let (major, minor) = self.info.compute_capability;
        let cubin = nvrtc::compile_source(&format!("sm_{major}{minor}"), &source())?;
        let module = Arc::new(Kernels::load(&self.ctx, &cubin)?);
        map.insert(name.to_owned(), module.clone());
        Ok(module)
    }

    pub(super) fn check_owner(&self, plan_owner: u64, what: &'static str) -> Result<()> {
        if plan_owner == self.id {
            Ok(())
        } else {
            Err(Error::PlanMismatch(what))
        }
    }
}

impl Backend for Cuda {
    type Buffer<T: Element> = CudaBuffer<T>;
    type Queue = super::CudaQueue;

    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<CudaBuffer<T>> {
        CudaBuffer::zeroed(&self.ctx, len)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut CudaBuffer<T>) -> Result<()> {
        check_len("upload source", dst.len, src.len())?;
        bind(&self.ctx)?;
        refuse_in_capture("upload synchronises and cannot be captured into a graph")?;
        let ptr = dst.ptr();
        dst.access.with_host(Mode::Write, || {
            if !src.is_empty() {
                // SAFETY: `dst` holds `size_of_val(src)` bytes and no queued work uses it any
                // more (its reads and writes have finished, and it is held).
                unsafe { cudarc::driver::result::memcpy_htod_sync(ptr, src) }
                    .map_err(|e| device_error("cuMemcpyHtoD", e))?;
                // From pageable memory the copy returns once staged, before the DMA landed.
                driver::legacy_stream_sync()?;
            }
            Ok(())
        })
    }

    fn download<T: Element>(&self, src: &CudaBuffer<T>, dst: &mut [T]) -> Result<()> {
        check_len("download destination", src.len, dst.len())?;
        bind(&self.ctx)?;
        refuse_in_capture("download synchronises and cannot be captured into a graph")?;
        let ptr = src.ptr();
        src.access.with_host(Mode::Read, || {
            if !dst.is_empty() {
                driver::count_read();
                // SAFETY: `src` holds `size_of_val(dst)` bytes, all queued writes to it are
                // done, and it is held.
                unsafe { cudarc::driver::result::memcpy_dtoh_sync(dst, ptr) }
                    .map_err(|e| device_error("cuMemcpyDtoH", e))?;
            }
            Ok(())
        })
    }

    fn read_scalar<T: Element>(&self, src: &CudaBuffer<T>) -> Result<T> {
        if src.is_empty() {
            return Err(Error::Shape {
                what: "out",
                expected: 1,
                got: 0,
            });
        }
        bind(&self.ctx)?;
        let mut value = [T::zeroed()];
        src.access.with_host(Mode::Read, || {
            driver::count_read();
            // SAFETY: `src` holds at least one element and its last write has completed.
            unsafe { cudarc::driver::result::memcpy_dtoh_sync(&mut value, src.ptr()) }
                .map_err(|e| device_error("cuMemcpyDtoH", e))
        })?;
        Ok(value[0])
    }

    fn synchronize(&self) -> Result<()> {
        bind(&self.ctx)?;
        driver::count_wait();
        self.ctx.synchronize().call("cuCtxSynchronize")
    }
}
