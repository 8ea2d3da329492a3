//! Finding and describing the adapter: the wgpu instance, the ranking of adapters and the
//! choice by [`ADAPTER_ENV`], [`AdapterSummary`], and which element types an adapter runs.

use super::device::Context;
use super::error::{device_error, unsupported};
use super::wgsl::WgslFloat;
use crate::{DeviceErrorKind, Result};

/// Selects an adapter by a case-insensitive substring of its name (e.g. `H100`, `llvmpipe`).
pub const ADAPTER_ENV: &str = "MEGABATCH_WGPU_ADAPTER";

/// `0` turns the adapter's subgroup operations off for devices megabatch opens
/// ([`super::Wgpu::new`]): the device is made without `Features::SUBGROUP` and
/// [`AdapterSummary::subgroups`] reads false, so the eigh keeps its workgroup layouts, as on an
/// adapter without subgroups (to test and measure that path on one that has them).
pub const SUBGROUP_ENV: &str = "MEGABATCH_WGPU_SUBGROUPS";

/// Whether [`SUBGROUP_ENV`] turns subgroups off.
pub(crate) fn subgroups_disabled() -> bool {
    std::env::var(SUBGROUP_ENV).is_ok_and(|v| v.trim() == "0")
}

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
    /// Smallest and largest subgroup size (`AdapterInfo::subgroup_min_size`,
    /// `subgroup_max_size`); meaningful only with `subgroups`.
    pub subgroup_sizes: (u32, u32),
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

    /// The subgroup sizes the eigh's subgroup layout is shaped for, or `None` without
    /// `SUBGROUP` (or with it turned off by [`SUBGROUP_ENV`]).
    pub fn subgroup_range(&self) -> Option<super::SubgroupSizes> {
        self.subgroups.then_some(super::SubgroupSizes {
            min: self.subgroup_sizes.0 as usize,
            max: self.subgroup_sizes.1 as usize,
        })
    }

    pub(crate) fn of(adapter: &wgpu::Adapter) -> Self {
        Self::describe(adapter.get_info(), adapter.features(), adapter.limits())
    }

    /// The summary of an adapter (or an adopted device) with these features and limits.
    pub(crate) fn describe(
        info: wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: wgpu::Limits,
    ) -> Self {
        let subgroup_sizes = (info.subgroup_min_size, info.subgroup_max_size);
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
            f64: features.contains(wgpu::Features::SHADER_F64),
            f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            subgroup_sizes,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
        }
    }
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

/// Every adapter this build of wgpu can see.
pub(crate) fn list_adapters() -> Vec<AdapterSummary> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(AdapterSummary::of)
        .collect()
}

/// The preferred adapter: discrete first, among those whose name contains [`ADAPTER_ENV`]'s
/// value when it is set.
pub(crate) fn choose() -> Result<wgpu::Adapter> {
    let instance = instance();
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if let Ok(wanted) = std::env::var(ADAPTER_ENV) {
        let wanted = wanted.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
    }
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    adapters.into_iter().next().ok_or_else(|| {
        device_error(
            DeviceErrorKind::Other,
            match std::env::var(ADAPTER_ENV) {
                Ok(w) => format!("no wgpu adapter matches {ADAPTER_ENV}={w}"),
                Err(_) => "no wgpu adapter (no Vulkan driver on this machine?)".into(),
            },
        )
    })
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
