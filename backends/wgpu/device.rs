//! The backend handle [`Wgpu`] and the device and queue it holds ([`Context`]): the lost flag,
//! the capture of wgpu's errors (`check`, `scoped`) and the fault injection hook.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::adapter::{self, AdapterSummary};
use super::buffer::{padded, WgpuBuffer};
use super::error::{device_error, lost_error, scope_error, uncaptured_kind};
use super::pipeline::Pipelines;
use super::staging;
use crate::error::check_len;
use crate::{Backend, BackendKind, DeviceErrorKind, Element, Error, Result};

/// A wgpu device and queue with megabatch's pipelines. `Send + Sync`; clones share the device
/// and accept each other's plans.
#[derive(Clone)]
pub struct Wgpu {
    pub(crate) ctx: Arc<Context>,
}

impl std::fmt::Debug for Wgpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wgpu")
            .field("adapter", &self.ctx.summary)
            .finish()
    }
}

impl Wgpu {
    /// Opens the preferred adapter (see the module docs) with every useful feature.
    ///
    /// # Errors
    /// [`Error::Device`] when no adapter exists (no Vulkan driver, or none matching
    /// `MEGABATCH_WGPU_ADAPTER`) or the device cannot be created.
    pub fn new() -> Result<Self> {
        Ok(Self {
            ctx: Arc::new(Context::open()?),
        })
    }

    /// Adopts a device and queue the application created, so that megabatch's plans and the
    /// application's own pipelines share buffers and one queue (submissions run in order).
    /// The device keeps the application's features and limits: f64 eigh needs
    /// `Features::SHADER_F64`, f16 `SHADER_F16`, and the eigh shaders use as much workgroup
    /// memory as `limits().max_compute_workgroup_storage_size` allows (request the adapter's
    /// limits for the full range of orders). megabatch installs no device-lost callback and
    /// no uncaptured-error handler on an adopted device (they are the application's): its
    /// calls run inside error scopes and return their errors, and [`Wgpu::is_lost`] stays
    /// false (the application's callback learns of a loss).
    ///
    /// # Errors
    /// None today; a `Result` so that future checks of the device are not a breaking change.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Ok(Self {
            ctx: Arc::new(Context::adopt(device, queue)),
        })
    }

    /// The wgpu device, for the application's own pipelines and buffers (a clone shares it).
    pub fn device(&self) -> &wgpu::Device {
        &self.ctx.device
    }

    /// The wgpu queue megabatch submits to; the application's submissions to it run in order
    /// with megabatch's.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.ctx.queue
    }

    /// This device's queue as the backend's [`crate::Backend::Queue`], for `_on` calls.
    pub fn queue_handle(&self) -> super::WgpuQueue {
        super::WgpuQueue {
            ctx: Arc::clone(&self.ctx),
        }
    }

    /// How many times megabatch mapped a staging buffer to read results back to the host in
    /// this process (downloads, host calls, `read_scalar`): a device-resident iteration that
    /// reads one scalar adds one.
    pub fn host_reads() -> u64 {
        staging::HOST_READS.load(Ordering::Relaxed)
    }

    /// Every adapter this build of wgpu can see: name, backend, device type, dtypes.
    pub fn adapters() -> Vec<AdapterSummary> {
        adapter::list_adapters()
    }

    /// The opened adapter: name, driver, which dtypes and features it has, its limits.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.ctx.summary
    }

    /// Whether the device was lost (driver reset, removal): every later call fails with
    /// [`Error::Device`] and `Auto` stops choosing this backend.
    pub fn is_lost(&self) -> bool {
        self.ctx.is_lost()
    }

    pub(crate) fn check_owner(&self, owner: &Arc<Context>, what: &'static str) -> Result<()> {
        if Arc::ptr_eq(owner, &self.ctx) {
            Ok(())
        } else {
            Err(Error::PlanMismatch(what))
        }
    }
}

impl Backend for Wgpu {
    type Buffer<T: Element> = WgpuBuffer<T>;
    type Queue = super::WgpuQueue;

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<WgpuBuffer<T>> {
        WgpuBuffer::alloc(&self.ctx, len)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut WgpuBuffer<T>) -> Result<()> {
        check_len("dst", dst.len, src.len())?;
        self.ctx.write(&dst.buffer, bytemuck::cast_slice(src))
    }

    fn download<T: Element>(&self, src: &WgpuBuffer<T>, dst: &mut [T]) -> Result<()> {
        check_len("dst", src.len, dst.len())?;
        let bytes = std::mem::size_of_val(dst) as u64;
        let staging = self.ctx.staging_buffer(bytes)?;
        self.ctx.enqueue_ordered(|encoder| {
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(&src.buffer, 0, &staging, 0, padded(bytes));
            }
        })?;
        self.ctx.read_back(&staging, bytemuck::cast_slice_mut(dst))
    }

    fn read_scalar<T: Element>(&self, src: &WgpuBuffer<T>) -> Result<T> {
        if src.len == 0 {
            return Err(Error::Shape {
                what: "out",
                expected: 1,
                got: 0,
            });
        }
        let mut value = [T::zeroed()];
        self.ctx
            .read_first(&src.buffer, bytemuck::cast_slice_mut(&mut value))?;
        Ok(value[0])
    }

    fn synchronize(&self) -> Result<()> {
        self.ctx.wait()
    }
}

/// The opened device. Errors wgpu reports outside an error scope (there should be none: plans
/// validate first) are kept and returned by the next call.
pub(crate) struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    lost: Arc<AtomicBool>,
    /// The first error wgpu reported outside an error scope since the last `check`.
    uncaptured: Arc<Mutex<Option<(DeviceErrorKind, String)>>>,
    pub(crate) pipelines: Pipelines,
    /// 8 bytes for `read_first`: one scalar read back without allocating.
    pub(crate) scalar: Mutex<wgpu::Buffer>,
    /// The application's device ([`Wgpu::from_device`]): errors come from error scopes only.
    pub(crate) adopted: bool,
    /// Most bytes of an eigh plan's global-layout workspace
    /// ([`Wgpu::set_eigh_workspace_budget`]).
    pub(crate) eigh_workspace_budget: AtomicUsize,
}

impl Context {
    pub(crate) fn open() -> Result<Self> {
        let adapter = adapter::choose()?;
        let mut summary = AdapterSummary::of(&adapter);
        let mut wanted = wgpu::Features::SHADER_F64
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY;
        if adapter::subgroups_disabled() {
            wanted.remove(wgpu::Features::SUBGROUP);
            summary.subgroups = false;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("megabatch"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| {
            device_error(
                DeviceErrorKind::Other,
                format!("request_device on {}: {e}", summary.name),
            )
        })?;
        let ctx = Self::with(device, queue, summary, false);
        let flag = Arc::clone(&ctx.lost);
        ctx.device
            .set_device_lost_callback(move |_, _| flag.store(true, Ordering::SeqCst));
        let sink = Arc::clone(&ctx.uncaptured);
        ctx.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| (uncaptured_kind(&e), e.to_string()));
            }));
        Ok(ctx)
    }

    /// A device and queue the application made: megabatch installs no handler on it (the
    /// lost callback and the uncaptured-error handler are the application's) and wraps each
    /// submission in error scopes instead.
    pub(crate) fn adopt(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        let summary = AdapterSummary::describe(info, device.features(), device.limits());
        Self::with(device, queue, summary, true)
    }

    fn with(
        device: wgpu::Device,
        queue: wgpu::Queue,
        summary: AdapterSummary,
        adopted: bool,
    ) -> Self {
        let scalar = staging::scalar_buffer(&device);
        Self {
            device,
            queue,
            summary,
            lost: Arc::new(AtomicBool::new(false)),
            uncaptured: Arc::new(Mutex::new(None)),
            pipelines: Pipelines::default(),
            scalar: Mutex::new(scalar),
            adopted,
            eigh_workspace_budget: AtomicUsize::new(super::GLOBAL_WORKSPACE_BUDGET),
        }
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The fault armed by `megabatch::faults::inject` for an allocation (`launch` false) or a
    /// submission, as the error the real fault gives; `DeviceLost` also marks the device lost.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn injected(&self, launch: bool) -> Result<()> {
        use crate::faults::Fault;
        match crate::faults::take(|f| (f == Fault::OutOfMemory) != launch) {
            Some(f) => {
                if f == Fault::DeviceLost {
                    self.lost.store(true, Ordering::SeqCst);
                }
                Err(super::error::injected_error(f))
            }
            None => Ok(()),
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub(crate) fn injected(&self, _launch: bool) -> Result<()> {
        Ok(())
    }

    /// `Err` if the device is lost or wgpu reported an error since the last check.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_lost() {
            return Err(lost_error());
        }
        let mut slot = self.uncaptured.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some((kind, e)) => Err(device_error(kind, e)),
            None => Ok(()),
        }
    }

    /// Runs `make` inside validation and out-of-memory error scopes, so a failure becomes an
    /// `Error::Device` of this call instead of an uncaptured error.
    pub(crate) fn scoped<R>(&self, what: &str, make: impl FnOnce() -> R) -> Result<R> {
        self.check()?;
        self.injected(false)?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let made = make();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        match scope_error(what, v, o) {
            Some(e) => Err(e),
            None => Ok(made),
        }
    }
}
