//! `Auto`, the backend chooser: its cost model and environment on the CPU, its choices with a
//! GPU backend present: `cargo test --test auto cuda::` runs the CUDA part.

#[path = "../common/mod.rs"]
mod common;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "wgpu")]
mod wgpu;
