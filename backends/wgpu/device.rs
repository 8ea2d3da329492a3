//! The device, the queue, and the few wgpu calls every plan needs: buffers with typed errors,
//! one submission, one mapped readback, pipelines compiled once per shader variant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::wgsl::WgslFloat;
use crate::{BackendKind, DeviceErrorKind, Error, Result};

/// Selects an adapter by a case-insensitive substring of its name (e.g. `H100`, `llvmpipe`).
pub const ADAPTER_ENV: &str = "MEGABATCH_WGPU_ADAPTER";

/// What megabatch knows about an adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. `"NVIDIA H100 80GB HBM3"` or `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub name: String,
    /// The graphics API wgpu drives it through (`"Vulkan"`).
    pub backend: String,
    /// Discrete, integrated, virtual GPU or CPU (lavapipe).
    pub device_type: String,
    /// The driver and its version string.
    pub driver: String,
    /// `SHADER_F64`: f64 eigh and reductions.
    pub f64: bool,
    /// `SHADER_F16`: f16 attention and reductions.
    pub f16: bool,
    /// `SUBGROUP` operations.
    pub subgroups: bool,
    /// `TIMESTAMP_QUERY`.
    pub timestamps: bool,
    /// Largest storage-buffer binding, in bytes.
    pub max_storage_binding: u64,
    /// Largest workgroup (shared) memory, in bytes.
    pub max_workgroup_storage: u32,
    /// Largest number of invocations in one workgroup.
    pub max_invocations: u32,
    /// Largest workgroup count in one dimension of a dispatch.
    pub max_workgroups_per_dim: u32,
}

impl AdapterSummary {
    /// Whether this is Mesa's lavapipe (llvmpipe), a CPU rasteriser with a per-invocation
    /// loop limit (see `LAVAPIPE_EIGH_MAX_ORDER`).
    pub fn is_llvmpipe(&self) -> bool {
        self.name.to_lowercase().contains("llvmpipe")
    }

    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
            f64: features.contains(wgpu::Features::SHADER_F64),
            f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
        }
    }
}

fn device_error(kind: DeviceErrorKind, message: impl Into<String>) -> Error {
    Error::device(BackendKind::Wgpu, kind, message)
}

pub(crate) fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported {
        backend: BackendKind::Wgpu,
        message: message.into(),
    }
}

/// The WGSL element type of `T`, if this adapter can run it.
pub(crate) fn element_on<T: 'static>(ctx: &Context, what: &str) -> Result<WgslFloat> {
    let elem = WgslFloat::of::<T>().ok_or_else(|| {
        unsupported(format!(
            "{what} of {}: WGSL has no such type",
            std::any::type_name::<T>()
        ))
    })?;
    let missing = match elem {
        WgslFloat::F64 if !ctx.summary.f64 => Some("SHADER_F64"),
        WgslFloat::F16 if !ctx.summary.f16 => Some("SHADER_F16"),
        _ => None,
    };
    match missing {
        Some(feature) => Err(unsupported(format!(
            "{what} of {}: adapter {} lacks {feature}",
            elem.name(),
            ctx.summary.name
        ))),
        None => Ok(elem),
    }
}

/// `bytes` rounded up to wgpu's copy alignment (4).
pub(crate) fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(wgpu::COPY_BUFFER_ALIGNMENT) * wgpu::COPY_BUFFER_ALIGNMENT
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    wgpu::Instance::new(desc)
}

fn rank(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

pub(crate) fn list_adapters() -> Vec<AdapterSummary> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(AdapterSummary::of)
        .collect()
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
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    /// 8 bytes for `read_first`: one scalar read back without allocating.
    scalar: Mutex<wgpu::Buffer>,
}

impl Context {
    pub(crate) fn open() -> Result<Self> {
        let instance = instance();
        let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        if let Ok(wanted) = std::env::var(ADAPTER_ENV) {
            let wanted = wanted.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
        }
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = adapters.into_iter().next().ok_or_else(|| {
            device_error(
                DeviceErrorKind::Other,
                match std::env::var(ADAPTER_ENV) {
                    Ok(w) => format!("no wgpu adapter matches {ADAPTER_ENV}={w}"),
                    Err(_) => "no wgpu adapter (no Vulkan driver on this machine?)".into(),
                },
            )
        })?;
        let summary = AdapterSummary::of(&adapter);
        let wanted = wgpu::Features::SHADER_F64
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY;
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
        let lost = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |_, _| flag.store(true, Ordering::SeqCst));
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            let kind = match e {
                wgpu::Error::OutOfMemory { .. } => DeviceErrorKind::OutOfMemory,
                _ => DeviceErrorKind::Other,
            };
            slot.get_or_insert_with(|| (kind, e.to_string()));
        }));
        let scalar = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("megabatch scalar"),
            size: 8,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Self {
            device,
            queue,
            summary,
            lost,
            uncaptured,
            pipelines: Mutex::new(HashMap::new()),
            scalar: Mutex::new(scalar),
        })
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The fault armed by `megabatch::faults::inject` for an allocation (`launch` false) or a
    /// submission, as the error the real fault gives; `DeviceLost` also marks the device lost.
    #[cfg(feature = "fault-injection")]
    fn injected(&self, launch: bool) -> Result<()> {
        use crate::faults::Fault;
        match crate::faults::take(|f| (f == Fault::OutOfMemory) != launch) {
            Some(Fault::DeviceLost) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(device_error(
                    DeviceErrorKind::Lost,
                    "the wgpu device was lost (injected)",
                ))
            }
            Some(f) => Err(device_error(
                match f {
                    Fault::OutOfMemory => DeviceErrorKind::OutOfMemory,
                    _ => DeviceErrorKind::LaunchFailure,
                },
                format!("{f:?} (injected)"),
            )),
            None => Ok(()),
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    fn injected(&self, _launch: bool) -> Result<()> {
        Ok(())
    }

    /// `Err` if the device is lost or wgpu reported an error since the last check.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_lost() {
            return Err(device_error(
                DeviceErrorKind::Lost,
                "the wgpu device was lost",
            ));
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
        let failed = match (v, o) {
            (Some(e), _) => Some((DeviceErrorKind::Other, e)),
            (None, Some(e)) => Some((DeviceErrorKind::OutOfMemory, e)),
            (None, None) => None,
        };
        match failed {
            Some((kind, e)) => Err(device_error(kind, format!("{what}: {e}"))),
            None => Ok(made),
        }
    }

    fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let limits = self.device.limits();
        let size = padded(bytes.max(4));
        if size > limits.max_buffer_size {
            return Err(Error::TooLarge(
                "buffer exceeds the adapter's max_buffer_size",
            ));
        }
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// A zeroed storage buffer of `len` elements of `elem` bytes, usable by copies.
    pub(crate) fn storage_buffer(
        &self,
        label: &str,
        len: usize,
        elem: usize,
    ) -> Result<wgpu::Buffer> {
        let bytes = len
            .checked_mul(elem)
            .ok_or(Error::TooLarge("buffer size overflows usize"))? as u64;
        self.buffer(
            label,
            bytes,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A host-readable buffer for results.
    pub(crate) fn staging_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        self.buffer(
            "megabatch staging",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A uniform buffer holding `data`.
    pub(crate) fn uniform_buffer(&self, data: &[u8]) -> Result<wgpu::Buffer> {
        let buf = self.buffer(
            "megabatch params",
            data.len() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        self.write(&buf, data)?;
        Ok(buf)
    }

    /// Queues a write of `data` to the start of `buffer` (a length that is not a multiple of 4
    /// has its tail padded with zeros, inside the buffer's own padding).
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, data: &[u8]) -> Result<()> {
        self.check()?;
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(buffer, 0, &data[..whole]);
        }
        if whole < data.len() {
            let mut tail = [0u8; 4];
            tail[..data.len() - whole].copy_from_slice(&data[whole..]);
            self.queue.write_buffer(buffer, whole as u64, &tail);
        }
        Ok(())
    }

    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.check()?;
        self.injected(true)?;
        self.queue.submit(Some(encoder.finish()));
        self.check()
    }

    /// Waits until all submitted work has finished.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| device_error(DeviceErrorKind::Other, format!("poll: {e}")))?;
        self.check()
    }

    /// Maps `staging` (already written by submitted work), copies its first `dst.len()` bytes
    /// to `dst` and unmaps it.
    pub(crate) fn read_back(&self, staging: &wgpu::Buffer, dst: &mut [u8]) -> Result<()> {
        self.read_mapped(staging, dst.len() as u64, |view| {
            dst.copy_from_slice(&view[..dst.len()])
        })
    }

    /// Reads the first `dst.len()` (at most 8) bytes of `src` through the handle's scalar
    /// staging buffer: one copy, one wait, one mapping.
    pub(crate) fn read_first(&self, src: &wgpu::Buffer, dst: &mut [u8]) -> Result<()> {
        let staging = self.scalar.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = padded(dst.len() as u64);
        let mut encoder = self.encoder();
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.submit(encoder)?;
        self.read_back(&staging, dst)
    }

    /// Maps the first `bytes` of `staging`, waiting for submitted work, and hands them to `read`.
    pub(crate) fn read_mapped<R>(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        if bytes == 0 {
            self.wait()?;
            return Ok(read(&[]));
        }
        let bytes = padded(bytes);
        staging.map_async(wgpu::MapMode::Read, ..bytes, |_| {});
        self.wait()?;
        let out = {
            let view = staging
                .get_mapped_range(..bytes)
                .map_err(|e| device_error(DeviceErrorKind::Other, format!("map: {e}")))?;
            read(&view)
        };
        staging.unmap();
        Ok(out)
    }

    /// The compute pipeline for `key`, compiled from `source()` on first use, with an explicit
    /// layout: group 0, binding `i` of kind `bindings[i]` (so bindings a variant does not use
    /// stay in the layout, unlike wgpu's derived layouts).
    pub(crate) fn pipeline(
        &self,
        key: &str,
        bindings: &[Binding],
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(key) {
            return Ok(Arc::clone(p));
        }
        let source = source();
        let pipeline = self.scoped(key, || {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match b {
                            Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                            Binding::ReadWrite => {
                                wgpu::BufferBindingType::Storage { read_only: false }
                            }
                            Binding::Uniform => wgpu::BufferBindingType::Uniform,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let group = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(key),
                    entries: &entries,
                });
            let layout = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(key),
                    bind_group_layouts: &[Some(&group)],
                    immediate_size: 0,
                });
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(key),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(key),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })?;
        let pipeline = Arc::new(pipeline);
        cache.insert(key.to_owned(), Arc::clone(&pipeline));
        Ok(pipeline)
    }

    /// A bind group of `pipeline`'s group 0 with `buffers` at bindings 0, 1, ...
    pub(crate) fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup> {
        self.scoped("bind group", || {
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        })
    }

    /// Records `dispatches` (pipeline, bind group, workgroups) into one compute pass.
    pub(crate) fn record<'a>(
        encoder: &mut wgpu::CommandEncoder,
        dispatches: impl IntoIterator<Item = (&'a wgpu::ComputePipeline, &'a wgpu::BindGroup, u32)>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        for (pipeline, group, workgroups) in dispatches {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(workgroups, 1, 1);
        }
    }

    /// Checks that a binding of `bytes` fits the adapter.
    pub(crate) fn check_binding(&self, bytes: usize, what: &'static str) -> Result<()> {
        if bytes as u64 > self.summary.max_storage_binding {
            return Err(Error::TooLarge(what));
        }
        Ok(())
    }
}

/// One dispatch of a plan: its pipeline and workgroup count.
pub(crate) struct Dispatch {
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    pub(crate) workgroups: u32,
}

/// Records `dispatches`, dispatch `i` with bind group `groups[i]`, in one compute pass.
pub(crate) fn record_dispatches(
    encoder: &mut wgpu::CommandEncoder,
    dispatches: &[Dispatch],
    groups: &[wgpu::BindGroup],
) {
    Context::record(
        encoder,
        dispatches
            .iter()
            .zip(groups)
            .map(|(d, g)| (&*d.pipeline, g, d.workgroups)),
    );
}

/// The bind groups (one per dispatch) of the last `N` caller buffers a plan's device-buffer
/// call bound, keyed by the buffers' ids (0 for an absent one): a loop over the same buffers
/// creates them once.
#[derive(Default)]
pub(crate) struct BindCache<const N: usize> {
    key: Option<[u64; N]>,
    groups: Vec<wgpu::BindGroup>,
}

impl<const N: usize> BindCache<N> {
    pub(crate) fn holds(&self, key: [u64; N]) -> bool {
        self.key == Some(key)
    }

    pub(crate) fn set(&mut self, key: [u64; N], groups: Vec<wgpu::BindGroup>) {
        self.key = Some(key);
        self.groups = groups;
    }

    pub(crate) fn groups(&self) -> &[wgpu::BindGroup] {
        &self.groups
    }
}

/// How a shader uses one binding.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`.
    Uniform,
}
