//! The CUDA backend (feature `cuda`): cudarc's driver API and NVRTC, both loaded at run time,
//! so building needs no CUDA toolkit and a machine without a GPU gets an `Error::Device` from
//! [`Cuda::new`], never a panic.
//!
//! Kernels (`kernels/*.cu`) are compiled once per process for the device's own architecture.
//! Each plan owns a stream, its device workspace and its pinned staging buffers; execute calls
//! enqueue work on the plan's stream and return without waiting unless a host output was asked
//! for. Buffers carry an event marking their last use, so work on two plans' streams that
//! shares a buffer runs in submission order.

mod attention;
mod attention_kernel;
mod driver;
mod eigh;
mod eigh_kernel;
mod error;
mod module;
mod nvrtc;
mod reduce;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use crate::error::check_len;
use crate::{Backend, BackendKind, DeviceErrorKind, Element, Error, Result};
pub use attention::{AttentionOptions, AttentionSchedule, CudaAttentionPlan};
pub use attention_kernel::{AttentionKernel, ATTENTION_SOURCE};
use driver::{bind, bytes_for, DeviceMemory, Event, Stream};
pub use eigh::{
    CudaEighAlgorithm, CudaEighPlan, EighArgs, CUDA_EIGH_MAX_ORDER, DIRECT_STAGING_BYTES,
    STAGING_ENV,
};
pub use eigh_kernel::{
    chains_min_batch, split_chains_shared_bytes, split_min_batch, split_state_words, EighClass,
    EighKernel, CHAINS_MIN_BATCH_F32, CHAINS_MIN_BATCH_F64, SPLIT_MIN_BATCH_F32,
    SPLIT_MIN_BATCH_F64, SPLIT_MIN_ORDER, SPLIT_ROUNDS,
};
use error::{cuda_error, device_error, DriverResultExt};
use module::Kernels;
pub use nvrtc::{
    compile_kernels, compile_source, nvrtc_available, nvrtc_version, KERNEL_CACHE_ENV,
    KERNEL_SOURCES,
};
pub use reduce::CudaReducePlan;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A CUDA device: its primary context and the kernels loaded into it. `Send + Sync`: share one
/// handle between threads (in an `Arc`, or cloned: clones share the context and kernels and
/// accept each other's plans), each thread with its own plans.
#[derive(Clone)]
pub struct Cuda {
    ctx: Arc<CudaContext>,
    kernels: Arc<Kernels>,
    /// Kernel variants compiled as their own programs (attention's [`AttentionKernel`], eigh's
    /// [`EighKernel`]) loaded so far, by name; compiled on first use, shared by clones.
    variant_modules: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Kernels>>>>,
    info: DeviceInfo,
    id: u64,
}

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
        let attr = |a| ctx.attribute(a).call("cuDeviceGetAttribute");
        use sys::CUdevice_attribute as A;
        let info = DeviceInfo {
            name: ctx.name().call("cuDeviceGetName")?,
            compute_capability: ctx.compute_capability().call("cuDeviceGetAttribute")?,
            multiprocessors: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as usize,
            max_shared_per_block: attr(A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?
                as usize,
            total_memory: ctx.total_mem().call("cuDeviceTotalMem")?,
            driver_version: driver_version()?,
        };
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
        // SAFETY: only tries to dlopen the library.
        if !unsafe { sys::is_culib_present() } {
            return Ok(0);
        }
        let count = CudaContext::device_count().call("cuDeviceGetCount")?;
        Ok(count.max(0) as usize)
    }

    /// How many device allocations (`cuMemAlloc`) megabatch has made in this process: plans
    /// and buffers allocate, execute calls never do, which tests check with this counter.
    pub fn device_allocations() -> u64 {
        driver::DEVICE_ALLOCATIONS.load(Ordering::Relaxed)
    }

    /// Whether a sticky CUDA error (an illegal address, a failed launch, an ECC error, a
    /// device that fell off the bus) has made CUDA unusable in this process. Every call on
    /// any `Cuda` handle then returns `Error::Device` at once; `Auto` stops choosing CUDA.
    pub fn is_lost(&self) -> bool {
        error::device_lost()
    }

    /// The device's name, compute capability, size and limits.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The module of the variant `name`, compiled from `source()` (NVRTC, cached in the process
    /// and on disk) and loaded on first use.
    fn variant_module(&self, name: &str, source: impl FnOnce() -> String) -> Result<Arc<Kernels>> {
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

    fn check_owner(&self, plan_owner: u64, what: &'static str) -> Result<()> {
        if plan_owner == self.id {
            Ok(())
        } else {
            Err(Error::PlanMismatch(what))
        }
    }
}

fn driver_version() -> Result<i32> {
    let mut version = 0;
    // SAFETY: libcuda is loaded (checked by the caller) and `version` outlives the call.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .call("cuDriverGetVersion")?;
    Ok(version)
}

/// A device array of `T` in one `Cuda` context, with an event marking its last use.
pub struct CudaBuffer<T> {
    mem: DeviceMemory,
    len: usize,
    last_use: Event,
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

    /// Orders work on `stream` after every earlier use of this buffer.
    fn wait_on(&self, stream: &Stream) -> Result<()> {
        stream.wait(&self.last_use)
    }

    /// Marks the work queued on `stream` so far as this buffer's last use.
    fn used_by(&self, stream: &Stream) -> Result<()> {
        self.last_use.record(stream)
    }
}

impl Backend for Cuda {
    type Buffer<T: Element> = CudaBuffer<T>;

    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<CudaBuffer<T>> {
        let bytes = bytes_for(len, std::mem::size_of::<T>())?;
        Ok(CudaBuffer {
            mem: DeviceMemory::zeroed(&self.ctx, bytes)?,
            len,
            last_use: Event::new(&self.ctx)?,
            _t: std::marker::PhantomData,
        })
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut CudaBuffer<T>) -> Result<()> {
        check_len("upload source", dst.len, src.len())?;
        bind(&self.ctx)?;
        dst.last_use.synchronize()?;
        if !src.is_empty() {
            // SAFETY: `dst` holds `size_of_val(src)` bytes and no queued work uses it any more.
            unsafe { cudarc::driver::result::memcpy_htod_sync(dst.mem.ptr(), src) }
                .map_err(|e| device_error("cuMemcpyHtoD", e))?;
            // From pageable memory the copy returns once staged, before the DMA landed.
            driver::legacy_stream_sync()?;
        }
        Ok(())
    }

    fn download<T: Element>(&self, src: &CudaBuffer<T>, dst: &mut [T]) -> Result<()> {
        check_len("download destination", src.len, dst.len())?;
        bind(&self.ctx)?;
        src.last_use.synchronize()?;
        if !dst.is_empty() {
            // SAFETY: `src` holds `size_of_val(dst)` bytes, all queued writes to it are done.
            unsafe { cudarc::driver::result::memcpy_dtoh_sync(dst, src.mem.ptr()) }
                .map_err(|e| device_error("cuMemcpyDtoH", e))?;
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        bind(&self.ctx)?;
        self.ctx.synchronize().call("cuCtxSynchronize")
    }
}

/// Grid size for `work` items handled `per_block` at a time, as the `u32` the driver takes.
fn blocks_for(work: usize, per_block: usize) -> Result<u32> {
    u32::try_from(work.div_ceil(per_block.max(1)).max(1))
        .map_err(|_| Error::TooLarge("grid exceeds 2^32 blocks"))
}
