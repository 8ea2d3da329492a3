//! Block-sparse attention, a module per backend over the shared checks of `tests/common`, and
//! its block masks (`mask`): `cargo test --test attention cuda::` runs the CUDA part.

#[path = "../common/mod.rs"]
mod common;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
mod element_bits;
mod mask;
mod multi;
#[cfg(feature = "wgpu")]
mod wgpu;
