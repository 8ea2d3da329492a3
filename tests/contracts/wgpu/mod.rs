//! The contracts on wgpu; each test skips without an adapter unless `MEGABATCH_REQUIRE_WGPU=1`.

mod concurrency;
#[cfg(feature = "fault-injection")]
mod faults;
mod footprint;
mod interop;
mod no_alloc;
