//! The wgpu backend (feature `wgpu`): WGSL compute shaders (`shaders/*.wgsl`) on any adapter
//! wgpu reaches, Vulkan in this build (NVIDIA, AMD, Intel, and Mesa's lavapipe on CPUs).
//!
//! Construction picks an adapter (discrete first; `MEGABATCH_WGPU_ADAPTER` selects one by a
//! substring of its name) and asks for every feature megabatch can use (`SHADER_F64`,
//! `SHADER_F16`, `SUBGROUP`, `TIMESTAMP_QUERY`) and the adapter's own limits. What the adapter
//! lacks comes back as `Error::Unsupported` from `plan_*`, never as a wgpu validation error at
//! execute time. Plans build their pipelines (cached per shader variant in the handle), bind
//! groups, parameter and staging buffers once; an execute call records one command buffer and
//! submits it.

mod attention;
mod attention_kernel;
mod device;
mod eigh;
mod eigh_kernel;
mod reduce;
mod reduce_kernel;
mod wgsl;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::check_len;
use crate::{Backend, BackendKind, Element, Error, Result};

pub use attention::WgpuAttentionPlan;
pub use attention_kernel::{AttentionShader, ATTENTION_WORKGROUP};
use device::Context;
pub use device::{AdapterSummary, ADAPTER_ENV};
pub use eigh::{
    WgpuEighAlgorithm, WgpuEighPlan, LAVAPIPE_EIGH_MAX_ORDER, TRIDIAG_MIN_ORDER,
    TRIDIAG_ROWS_ORDERS, WGPU_EIGH_MAX_ORDER,
};
pub use eigh_kernel::{
    EighShader, EighTridiagShader, EIGH_MAX_TEAM, EIGH_MIN_WORKGROUP, EIGH_TRIDIAG_WORKGROUP,
};
pub use reduce::WgpuReducePlan;
pub use reduce_kernel::{ReduceShader, ReduceStage, REDUCE_ROW_LANES, REDUCE_WORKGROUP};
pub use wgsl::{
    WgslFloat, ATTENTION, EIGH_COMMON, EIGH_JACOBI, EIGH_QL, EIGH_TRIDIAG, EIGH_TRIDIAG_ROWS,
    REDUCE,
};

static NEXT_BUFFER_ID: AtomicU64 = AtomicU64::new(1);

/// A wgpu device and queue with megabatch's pipelines. `Send + Sync`; clones share the device
/// and accept each other's plans.
#[derive(Clone)]
pub struct Wgpu {
    ctx: Arc<Context>,
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

    /// Every adapter this build of wgpu can see: name, backend, device type, dtypes.
    pub fn adapters() -> Vec<AdapterSummary> {
        device::list_adapters()
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

    fn check_owner(&self, owner: &Arc<Context>, what: &'static str) -> Result<()> {
        if Arc::ptr_eq(owner, &self.ctx) {
            Ok(())
        } else {
            Err(Error::PlanMismatch(what))
        }
    }
}

/// A storage buffer of `len` elements of `T` on one wgpu device. Sizes are padded to 4 bytes
/// (wgpu's copy alignment), so an odd-length f16 buffer holds one spare element.
pub struct WgpuBuffer<T> {
    buffer: wgpu::Buffer,
    len: usize,
    id: u64,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::fmt::Debug for WgpuBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBuffer")
            .field("len", &self.len)
            .finish()
    }
}

impl<T> WgpuBuffer<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying `wgpu::Buffer` (usage `STORAGE | COPY_SRC | COPY_DST`), for interop
    /// with other wgpu code on the same device.
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// A process-unique identity, which plans use to reuse bind groups across calls.
    fn key(&self) -> u64 {
        self.id
    }
}

impl Backend for Wgpu {
    type Buffer<T: Element> = WgpuBuffer<T>;

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<WgpuBuffer<T>> {
        let buffer = self
            .ctx
            .storage_buffer("megabatch buffer", len, std::mem::size_of::<T>())?;
        Ok(WgpuBuffer {
            buffer,
            len,
            id: NEXT_BUFFER_ID.fetch_add(1, Ordering::Relaxed),
            _t: std::marker::PhantomData,
        })
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut WgpuBuffer<T>) -> Result<()> {
        check_len("dst", dst.len, src.len())?;
        self.ctx.write(&dst.buffer, bytemuck::cast_slice(src))
    }

    fn download<T: Element>(&self, src: &WgpuBuffer<T>, dst: &mut [T]) -> Result<()> {
        check_len("dst", src.len, dst.len())?;
        let bytes = std::mem::size_of_val(dst) as u64;
        let staging = self.ctx.staging_buffer(bytes)?;
        let mut encoder = self.ctx.encoder();
        if bytes > 0 {
            encoder.copy_buffer_to_buffer(&src.buffer, 0, &staging, 0, device::padded(bytes));
        }
        self.ctx.submit(encoder)?;
        self.ctx.read_back(&staging, bytemuck::cast_slice_mut(dst))
    }

    fn synchronize(&self) -> Result<()> {
        self.ctx.wait()
    }
}
