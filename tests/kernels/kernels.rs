//! Every GPU kernel compiles (and the CUDA eigh kernels pass the LAPACK checks under a CPU
//! emulation), a module per backend: `cargo test --test kernels cuda::` runs the CUDA part.

#[path = "../common/mod.rs"]
mod common;

mod cuda;
mod wgpu;
