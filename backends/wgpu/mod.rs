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
//!
//! Files, one concept each and named as in `backends/cuda`: `adapter.rs` (finding and
//! describing the adapter), `device.rs` (the [`Wgpu`] handle, the device and queue, error
//! capture, fault injection), `buffer.rs` ([`WgpuBuffer`]), `error.rs` (wgpu failures as
//! `Error::Device` kinds), `pipeline.rs` (the compiled pipeline cache), `bind.rs` (bind
//! groups), `command.rs` (encoding, submitting and `enqueue_ordered`, the one path every plan's
//! work takes), `staging.rs` (mapped reads back to the host); per operation the plan
//! (`eigh.rs`, `reduce.rs`, `attention.rs`) and its shader variants (`eigh_kernel.rs`,
//! `eigh_subgroup.rs`, `eigh_global.rs`, `reduce_kernel.rs`, `attention_kernel.rs`, sharing
//! `wgsl.rs`).

mod adapter;
mod attention;
mod attention_kernel;
mod bind;
mod buffer;
mod command;
mod device;
mod eigh;
mod eigh_global;
mod eigh_kernel;
mod eigh_subgroup;
mod error;
mod pipeline;
mod queue;
mod reduce;
mod reduce_kernel;
mod staging;
mod user_kernel;
mod wgsl;

pub use adapter::{AdapterSummary, ADAPTER_ENV, SUBGROUP_ENV};
pub use attention::WgpuAttentionPlan;
// Test hooks: the shader variants and their sources, for the naga validation tests.
#[doc(hidden)]
pub use attention_kernel::{AttentionShader, ATTENTION_WORKGROUP};
pub use buffer::WgpuBuffer;
pub use device::Wgpu;
#[doc(hidden)]
pub use eigh::{eigh_dispatch_shaders, eigh_dispatch_shaders_with};
pub use eigh::{
    WgpuEighAlgorithm, WgpuEighPlan, LAVAPIPE_EIGH_MAX_ORDER, SUBGROUP_ORDERS, TRIDIAG_MIN_ORDER,
    TRIDIAG_ROWS_ORDERS, WGPU_EIGH_MAX_ORDER,
};
#[doc(hidden)]
pub use eigh_global::EighGlobalShader;
pub use eigh_global::{
    GLOBAL_MAX_ORDER, GLOBAL_MAX_WORKGROUP, GLOBAL_MIN_WORKGROUP, GLOBAL_WORKSPACE_BUDGET,
};
#[doc(hidden)]
pub use eigh_kernel::{
    EighShader, EighTridiagShader, EIGH_MAX_TEAM, EIGH_MIN_WORKGROUP, EIGH_TRIDIAG_WORKGROUP,
};
#[doc(hidden)]
pub use eigh_subgroup::EighSubgroupShader;
pub use eigh_subgroup::{
    SubgroupSizes, SUBGROUP_MAX_ORDER, SUBGROUP_MAX_ROWS_PER_LANE, SUBGROUP_WORKGROUP,
};
pub use queue::WgpuQueue;
pub use reduce::WgpuReducePlan;
#[doc(hidden)]
pub use reduce_kernel::{ReduceShader, ReduceStage, REDUCE_ROW_LANES, REDUCE_WORKGROUP};
pub use user_kernel::{WgpuArg, WgpuBinding, WgpuBindingKind, WgpuKernel};
#[doc(hidden)]
pub use wgsl::{
    WgslFloat, ATTENTION, EIGH_COMMON, EIGH_GLOBAL, EIGH_JACOBI, EIGH_QL, EIGH_SUBGROUP,
    EIGH_TRIDIAG, EIGH_TRIDIAG_ROWS, REDUCE,
};
