//! One module per backend. The CPU backend is always built; `wgpu` and `cuda` arrive behind
//! their cargo features.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "wgpu")]
pub mod wgpu;
