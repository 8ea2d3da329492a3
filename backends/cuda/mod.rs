//! The CUDA backend (feature `cuda`): cudarc's driver API and NVRTC, both loaded at run time,
//! so building needs no CUDA toolkit and a machine without a GPU gets an `Error::Device` from
//! [`Cuda::new`], never a panic.
//!
//! Kernels (`kernels/*.cu`) are compiled once per process for the device's own architecture.
//! Each plan owns a stream, its device workspace and its pinned staging buffers; device calls
//! enqueue work on the plan's stream, or on a [`CudaQueue`] of the caller's (`eigh_on`,
//! `reduce_on`, `attention_on`), and return without waiting. Buffers record their last write
//! and their reads per stream, so work on any queues that shares a buffer runs in order, and
//! two readers on two queues run concurrently; foreign memory, user kernels ([`CudaKernel`])
//! and graphs ([`CudaGraph`]) take part in the same ordering.
//!
//! Files, one concept each and named as in `backends/wgpu`: `adapter` (finding and describing
//! the device), `device` (the [`Cuda`] handle), `buffer` ([`CudaBuffer`], foreign memory,
//! [`PtrGuard`]), `queue` ([`CudaQueue`]), `error` (driver errors as `Error::Device` kinds),
//! `pipeline` (loaded kernels), `command` (launches), `staging` (host staging), `user_kernel`
//! (user CUDA C kernels); CUDA only: `access` (read/write ordering and `enqueue_ordered`, the
//! one path every plan's work takes), `graph` ([`CudaGraph`]), `params` (the kernels'
//! parameter structs), `driver` (owned driver handles), `nvrtc` (compilation), `eigh_chunks`
//! (eigh host calls as a pipeline of chunks); and per operation the plan (`eigh`, `reduce`,
//! `attention`) and its kernel variants (`*_kernel`).

mod access;
mod adapter;
mod attention;
mod attention_kernel;
mod buffer;
mod command;
mod device;
mod driver;
mod eigh;
mod eigh_classes;
mod eigh_kernel;
mod error;
mod graph;
mod nvrtc;
mod params;
mod pipeline;
mod queue;
mod reduce;
mod staging;
mod user_kernel;

pub use adapter::DeviceInfo;
pub use attention::{AttentionOptions, AttentionSchedule, CudaAttentionPlan};
pub use attention_kernel::AttentionKernel;
// Test hooks: the kernels' sources and layout checks, for the NVRTC and emulation tests.
#[doc(hidden)]
pub use attention_kernel::ATTENTION_SOURCE;
pub use buffer::{CudaBuffer, PtrGuard};
/// The cudarc crate megabatch is built on, for its types in this backend's interop API
/// ([`CudaQueue::to_cudarc`], [`Cuda::queue_from_cudarc`], [`Cuda::adopt_cudarc`]).
pub use cudarc;
pub use device::Cuda;
#[doc(hidden)]
pub use eigh::eigh_launch_groups;
pub use eigh::{
    CudaEighAlgorithm, CudaEighPlan, CHUNK_KIB_ENV, CUDA_EIGH_MAX_ORDER, DIRECT_STAGING_BYTES,
    STAGING_ENV,
};
pub use eigh_classes::{
    chains_min_batch, split_min_batch, EighClass, CHAINS_MIN_BATCH_F32, CHAINS_MIN_BATCH_F64,
    DC_MAX_ORDER, DC_WORKSPACE_SHARE, SPLIT_MIN_BATCH_F32, SPLIT_MIN_BATCH_F64, SPLIT_MIN_ORDER,
};
#[doc(hidden)]
pub use eigh_classes::{
    eigh_bucket_launches, eigh_layout_checks, eigh_layout_program, split_chains_shared_bytes,
    split_state_words, SPLIT_ROUNDS,
};
pub use eigh_kernel::EighKernel;
pub use graph::CudaGraph;
#[doc(hidden)]
pub use nvrtc::{compile_kernels, KERNEL_SOURCES};
pub use nvrtc::{compile_source, nvrtc_available, nvrtc_version, KERNEL_CACHE_ENV};
#[doc(hidden)]
pub use params::kernel_params_layout_checks;
pub use queue::CudaQueue;
pub use reduce::CudaReducePlan;
pub use staging::{COPY_SPIN_ENV, COPY_THREADS_ENV};
pub use user_kernel::{CudaKernel, KernelArg, LaunchDims, MAX_KERNEL_ARGS};
