//! The contracts on the CPU.

pub(crate) mod concurrency;
mod footprint;
mod hostile_sizes;
mod no_alloc;
mod queue;
