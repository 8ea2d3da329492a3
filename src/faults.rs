//! Fault injection for tests of error handling (feature `fault-injection`, never in normal
//! builds): arm a fault on the calling thread, and the next GPU driver call of that kind on
//! this thread fails as the real fault would, through the same error path.

use std::cell::Cell;

/// A GPU failure to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The next device allocation fails with `CUDA_ERROR_OUT_OF_MEMORY` (at plan time).
    OutOfMemory,
    /// The next kernel launch fails with `CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES`, an error that
    /// leaves the context usable.
    LaunchError,
    /// The next kernel launch fails with `CUDA_ERROR_LAUNCH_FAILED`, a sticky error: the
    /// process's context is lost, as after a device fault or reset.
    DeviceLost,
}

thread_local! {
    static ARMED: Cell<Option<Fault>> = const { Cell::new(None) };
}

/// Arms `fault` for the next matching driver call on this thread (replacing any armed one).
pub fn inject(fault: Fault) {
    ARMED.with(|armed| armed.set(Some(fault)));
}

/// Disarms whatever is armed on this thread.
pub fn clear() {
    ARMED.with(|armed| armed.set(None));
}

/// Takes the armed fault if `wanted` accepts it.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn take(wanted: impl Fn(Fault) -> bool) -> Option<Fault> {
    ARMED.with(|armed| match armed.get() {
        Some(f) if wanted(f) => {
            armed.set(None);
            Some(f)
        }
        _ => None,
    })
}
