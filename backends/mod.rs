//! One module per backend. The CPU backend is always built; `wgpu` and `cuda` arrive behind
//! their cargo features. `multi` runs one batch over several devices of any of them.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod multi;
#[cfg(feature = "wgpu")]
pub mod wgpu;
