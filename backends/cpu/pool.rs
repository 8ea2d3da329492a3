//! A fixed set of worker threads that run one indexed task at a time, allocation-free.
//!
//! Why not rayon: `ThreadPool::install` from a thread outside the pool pushes its job onto
//! crossbeam's `Injector`, which heap-allocates a new block every 63 pushes, and
//! `ThreadPool::broadcast` allocates its job list on every call. The plan/execute contract says
//! execute never allocates, so the CPU backend parks its own workers on a condition variable
//! (futex-backed on Linux, no allocation) and hands out items through one atomic counter.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A task: called once per item with the item index and the id of the worker running it.
/// Worker ids run from 0 (the calling thread) to `threads - 1`.
pub(crate) type Task<'a> = dyn Fn(usize, usize) + Sync + 'a;

#[derive(Clone, Copy)]
struct TaskPtr(*const Task<'static>);
// SAFETY: the pointer is only dereferenced while `run` keeps the referent alive and blocks until
// every worker has stopped using it; the referent is `Sync`.
unsafe impl Send for TaskPtr {}

struct State {
    generation: u64,
    task: Option<TaskPtr>,
    items: usize,
    // Run the task once per thread, as task(worker, worker), instead of draining items.
    each_thread: bool,
    running: usize,
    panicked: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
    next: AtomicUsize,
    // Mirrors of `State::generation` and `State::running`, read without the lock by threads
    // that spin before parking (see `WorkerPool::spinning`).
    published: AtomicU64,
    busy: AtomicUsize,
    spin: Duration,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic inside a task is caught before it can poison this lock; recover regardless.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `task(i, worker)` for every `i` in `0..items`, taking items from a shared counter.
fn drain(next: &AtomicUsize, items: usize, task: &Task<'_>, worker: usize) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= items {
            return;
        }
        task(i, worker);
    }
}

/// `threads - 1` parked worker threads plus the calling thread.
pub(crate) struct WorkerPool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    // One parallel run at a time; a second concurrent caller runs its items on its own thread.
    run_lock: Mutex<()>,
}

impl WorkerPool {
    /// Starts `threads - 1` workers (`threads >= 1`) that park as soon as they run out of work.
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        Self::spinning(threads, Duration::ZERO)
    }

    /// Like [`WorkerPool::new`], but a worker out of work, and a caller waiting for the
    /// workers, spin for up to `spin` before parking. For pools that run many short tasks in
    /// a row (the CUDA host copies: several runs of a few microseconds per call), where waking
    /// a parked thread (a futex wake, on a virtual machine an inter-processor interrupt and a
    /// VM exit: tens of microseconds) would cost more than the work.
    pub(crate) fn spinning(threads: usize, spin: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                task: None,
                items: 0,
                each_thread: false,
                running: 0,
                panicked: false,
                shutdown: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
            next: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            spin,
        });
        let mut handles = Vec::with_capacity(threads.saturating_sub(1));
        for worker in 1..threads {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("megabatch-cpu-{worker}"))
                .spawn(move || worker_loop(&shared, worker))?;
            handles.push(handle);
        }
        Ok(Self {
            shared,
            handles,
            run_lock: Mutex::new(()),
        })
    }

    /// Number of threads that run items, the caller included.
    pub(crate) fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// Runs `task(i, worker)` for `i in 0..items` across all threads and returns when every
    /// item is done. Each worker id is used by one thread at a time, so per-worker scratch
    /// indexed by it is exclusive. If the pool is busy with another caller's run, the items run
    /// on this thread with worker id 0 (so scratch must not be shared between plans).
    pub(crate) fn run(&self, items: usize, task: &Task<'_>) {
        let guard = match self.run_lock.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if guard.is_none() || self.handles.is_empty() || items <= 1 {
            for i in 0..items {
                task(i, 0);
            }
            return;
        }
        self.dispatch(items, false, task);
        drop(guard);
    }

    /// Runs `task(worker, worker)` exactly once on every thread of the pool (the caller as
    /// worker 0), waiting for the pool if another run is in progress. For plan-time work that
    /// must happen on each thread, such as first-use initialisation of thread-local buffers.
    pub(crate) fn run_on_each_thread(&self, task: &Task<'_>) {
        let guard = self.run_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.handles.is_empty() {
            task(0, 0);
        } else {
            self.dispatch(0, true, task);
        }
        drop(guard);
    }

    /// Hands `task` to every worker and runs the caller's share; the caller holds `run_lock`.
    fn dispatch(&self, items: usize, each_thread: bool, task: &Task<'_>) {
        // SAFETY: only the lifetime is erased. Workers dereference the pointer only between
        // the notification below and their `running -= 1`, and this function does not return
        // (nor unwind) before `running` is back to 0, so `task` outlives every use.
        let ptr =
            TaskPtr(unsafe { std::mem::transmute::<*const Task<'_>, *const Task<'static>>(task) });
        {
            let mut st = lock(&self.shared.state);
            st.generation = st.generation.wrapping_add(1);
            st.task = Some(ptr);
            st.items = items;
            st.each_thread = each_thread;
            st.running = self.handles.len();
            self.shared.busy.store(st.running, Ordering::Relaxed);
            self.shared.next.store(0, Ordering::Relaxed);
            self.shared
                .published
                .store(st.generation, Ordering::Release);
            self.shared.start.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| {
            if each_thread {
                task(0, 0);
            } else {
                drain(&self.shared.next, items, task, 0);
            }
        }));
        let shared = &*self.shared;
        spin_until(shared.spin, || shared.busy.load(Ordering::Acquire) == 0);
        let worker_panicked = {
            let mut st = lock(&self.shared.state);
            while st.running > 0 {
                st = self
                    .shared
                    .done
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            st.task = None;
            std::mem::replace(&mut st.panicked, false)
        };
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        assert!(
            !worker_panicked,
            "a megabatch CPU worker panicked while running a task"
        );
    }
}

fn worker_loop(shared: &Shared, worker: usize) {
    let mut seen = 0u64;
    loop {
        spin_until(shared.spin, || {
            shared.published.load(Ordering::Acquire) != seen
        });
        let (task, items, each_thread) = {
            let mut st = lock(&shared.state);
            while st.generation == seen && !st.shutdown {
                st = shared
                    .start
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            match st.task {
                Some(t) => (t, st.items, st.each_thread),
                None => continue,
            }
        };
        // SAFETY: see `run`: the task stays alive until this worker decrements `running`.
        let f: &Task<'_> = unsafe { &*task.0 };
        let result = catch_unwind(AssertUnwindSafe(|| {
            if each_thread {
                f(worker, worker);
            } else {
                drain(&shared.next, items, f, worker);
            }
        }));
        let mut st = lock(&shared.state);
        if result.is_err() {
            st.panicked = true;
        }
        st.running -= 1;
        shared.busy.store(st.running, Ordering::Release);
        if st.running == 0 {
            shared.done.notify_all();
        }
    }
}

/// Spins until `ready()` or `limit` has passed (at once when `limit` is zero); the caller then
/// takes the lock path, which is correct whether or not `ready()` became true.
fn spin_until(limit: Duration, ready: impl Fn() -> bool) {
    if limit.is_zero() {
        return;
    }
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.start.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One scratch value per worker id, handed out mutably inside a [`WorkerPool::run`] task.
pub(crate) struct PerWorker<S> {
    slots: Vec<UnsafeCell<S>>,
}

// SAFETY: a slot is only reached through `get`, whose contract gives each worker id to one
// thread at a time; `S: Send` lets that thread own it for the duration.
unsafe impl<S: Send> Sync for PerWorker<S> {}

impl<S> PerWorker<S> {
    pub(crate) fn new(slots: impl IntoIterator<Item = S>) -> Self {
        Self {
            slots: slots.into_iter().map(UnsafeCell::new).collect(),
        }
    }

    /// Number of slots (worker ids served).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// # Safety
    /// No other reference to slot `worker` may be live: call it with the worker id that
    /// [`WorkerPool::run`] passed to the current task invocation, and drop the reference before
    /// that invocation returns.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self, worker: usize) -> &mut S {
        // SAFETY: exclusivity is the caller's contract.
        unsafe { &mut *self.slots[worker].get() }
    }
}

/// A mutable output slice shared by tasks that write disjoint ranges of it.
pub(crate) struct DisjointMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _life: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: tasks write disjoint ranges only (the `range` contract), so sharing is sound for
// `T: Send`.
unsafe impl<T: Send> Sync for DisjointMut<'_, T> {}

impl<'a, T> DisjointMut<'a, T> {
    pub(crate) fn new(slice: &'a mut [T]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _life: std::marker::PhantomData,
        }
    }

    /// # Safety
    /// Ranges handed out while any earlier one is still live must not overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        assert!(
            start <= self.len && len <= self.len - start,
            "range out of bounds"
        );
        // SAFETY: in bounds (checked above); disjointness is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item runs exactly once per run, over many back-to-back runs (the spinning pool's
    /// hand-off without the lock), with worker ids below `threads()`.
    fn each_item_once(pool: &WorkerPool) {
        let counts: Vec<AtomicUsize> = (0..97).map(|_| AtomicUsize::new(0)).collect();
        for run in 0..300 {
            let items = 1 + run % counts.len();
            pool.run(items, &|i, worker| {
                assert!(worker < pool.threads());
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        for (i, c) in counts.iter().enumerate() {
            let expected = (0..300).filter(|run| i < 1 + run % counts.len()).count();
            assert_eq!(c.load(Ordering::Relaxed), expected, "item {i}");
        }
        let seen: Vec<AtomicUsize> = (0..pool.threads()).map(|_| AtomicUsize::new(0)).collect();
        pool.run_on_each_thread(&|w, _| {
            seen[w].fetch_add(1, Ordering::Relaxed);
        });
        assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn parked_and_spinning_pools_run_every_item_once() {
        each_item_once(&WorkerPool::new(3).unwrap());
        each_item_once(&WorkerPool::spinning(3, Duration::from_micros(500)).unwrap());
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_pool_stays_usable() {
        let pool = WorkerPool::spinning(3, Duration::from_micros(200)).unwrap();
        let hit = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(64, &|i, _| assert!(i != 40, "item 40"));
        }));
        assert!(hit.is_err());
        each_item_once(&pool);
    }
}
