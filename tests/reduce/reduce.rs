//! Reductions (full, row, segment), a module per backend over the shared checks of
//! `tests/common`: `cargo test --test reduce cuda::` runs the CUDA part.

#[path = "../common/mod.rs"]
mod common;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
mod multi;
#[cfg(feature = "wgpu")]
mod wgpu;
