//! The CUDA kernels: through NVRTC for every architecture and variant (no GPU needed), each
//! launched on a device against the CPU, and the eigh kernels under a CPU emulation.

mod emulated;
#[cfg(feature = "cuda")]
mod emulated_plans;
#[cfg(feature = "cuda")]
mod every_kernel;
#[cfg(feature = "cuda")]
mod nvrtc;
