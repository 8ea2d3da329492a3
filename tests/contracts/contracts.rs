//! The contracts every backend keeps, a module per backend: no allocation after planning,
//! injected faults, a lost device, many threads on one handle, hostile sizes.
//! `cargo test --test contracts cuda::` runs the CUDA part.
//!
//! The no-allocation and device-lost tests watch or end process-wide state; each of their
//! modules runs alone in a child process of this binary (`common::child`).

#[path = "../common/mod.rs"]
mod common;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "wgpu")]
mod wgpu;

use common::counting_alloc::Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;
