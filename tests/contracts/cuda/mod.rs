//! The contracts on CUDA; each test skips without a device unless `MEGABATCH_REQUIRE_CUDA=1`.

mod concurrency;
#[cfg(feature = "fault-injection")]
mod device_lost;
#[cfg(feature = "fault-injection")]
mod faults;
mod footprint;
mod graph;
mod interop;
mod no_alloc;
mod resident;
