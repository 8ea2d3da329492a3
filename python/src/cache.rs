//! Plans kept between one-shot calls on CUDA arrays (`megabatch.eigh(tensor)`, reductions):
//! making a CUDA plan allocates device memory, and dropping one waits for its work, so a
//! one-shot call that made and dropped its own plan would synchronise the device on every
//! call. Instead the last few plans are kept, keyed by what they were made for, as cuSOLVER
//! users keep handles; a call of a shape seen before reuses its plan (calls on one plan take
//! turns).

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

/// Plans kept per cache.
const SLOTS: usize = 8;

/// The process that made the plans, and the plans by key.
type Slots<K, V> = (u32, Vec<(K, Arc<V>)>);

/// The last [`SLOTS`] plans of one kind, most recently used last, with the process that made
/// them (a forked child leaks its parent's: their devices do not exist there).
pub struct PlanCache<K, V> {
    slots: Mutex<Slots<K, V>>,
}

impl<K: PartialEq + Send, V: Send + Sync> PlanCache<K, V> {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            slots: Mutex::new((0, Vec::new())),
        }
    }

    /// The plan made for `key`, or a new one from `make` (kept, the least recently used plan
    /// dropped without the GIL if the cache is full).
    pub fn get_or_make(
        &self,
        py: Python<'_>,
        key: K,
        make: impl FnOnce() -> PyResult<V>,
    ) -> PyResult<Arc<V>> {
        let pid = std::process::id();
        {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if slots.0 != pid {
                std::mem::forget(std::mem::take(&mut slots.1));
                slots.0 = pid;
            }
            if let Some(i) = slots.1.iter().position(|(k, _)| *k == key) {
                let entry = slots.1.remove(i);
                let plan = Arc::clone(&entry.1);
                slots.1.push(entry);
                return Ok(plan);
            }
        }
        let plan = Arc::new(make()?);
        let evicted = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.1.push((key, Arc::clone(&plan)));
            if slots.1.len() > SLOTS {
                Some(slots.1.remove(0))
            } else {
                None
            }
        };
        // Dropping a GPU plan waits for its work: without the GIL.
        py.detach(move || drop(evicted));
        Ok(plan)
    }
}
