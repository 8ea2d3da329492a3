//! [`Owned`]: a plan's `Auto` and state, bound to the process that made them.
//!
//! After `os.fork()` the child has a copy of the plan object but not the parent's worker
//! threads or CUDA context (and its lock may be held by a thread that was not copied): calls
//! there are refused with `RuntimeError`, and dropping the plan there leaks its state instead
//! of freeing the parent's device memory or joining threads that do not exist.

use std::mem::ManuallyDrop;
use std::sync::{Mutex, MutexGuard, PoisonError};

use megabatch::{Auto, Error};
use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;

/// The backend and the per-dtype state of one Python plan object (`EighPlan`, `ReducePlan`,
/// `AttentionPlan`).
pub struct Owned<S> {
    /// The backend the plan was made on.
    pub auto: ManuallyDrop<Auto>,
    /// Locked by a call for its whole run, without the GIL: calls from many threads on one
    /// plan take turns.
    state: ManuallyDrop<Mutex<S>>,
    /// The process that made the plan.
    pid: u32,
    /// The Python class name, for the error in a forked child.
    class: &'static str,
}

impl<S> Owned<S> {
    /// Binds `auto` and `state` to this process; `class` names the plan in errors.
    pub fn new(auto: Auto, state: S, class: &'static str) -> Self {
        Self {
            auto: ManuallyDrop::new(auto),
            state: ManuallyDrop::new(Mutex::new(state)),
            pid: std::process::id(),
            class,
        }
    }

    /// `RuntimeError` in a process forked from the one that made the plan.
    pub fn check_process(&self) -> PyResult<()> {
        if std::process::id() == self.pid {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(format!(
            "this {} was made in another process (this one was forked from it): its threads \
             and device state do not exist here; make a new plan in this process",
            self.class
        )))
    }

    /// The state, locked (a poisoned lock, after a panic in an earlier call, is an error: the
    /// plan may be half-updated).
    pub fn lock(&self) -> Result<MutexGuard<'_, S>, Error> {
        self.state.lock().map_err(|_: PoisonError<_>| {
            Error::InvalidArgument("plan unusable: an earlier call panicked")
        })
    }
}

impl<S> Drop for Owned<S> {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            // SAFETY: dropped once, here; neither field is used after.
            unsafe {
                ManuallyDrop::drop(&mut self.state);
                ManuallyDrop::drop(&mut self.auto);
            }
        }
        // In a forked child: leaked. Freeing CUDA memory of the parent's context, or joining
        // the parent's worker threads, would fail or hang here.
    }
}
