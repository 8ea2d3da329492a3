//! The CPU backend: host memory, a fixed pool of worker threads, per-thread scratch arenas.
//! Always built.

mod attention;
mod eigh;
mod partition;
pub(crate) mod pool;
mod queue;

use std::sync::Arc;
pub(crate) mod reduce;

use std::sync::atomic::{AtomicU64, Ordering};

pub use attention::CpuAttentionPlan;
pub use eigh::CpuEighPlan;
use pool::WorkerPool;
pub use queue::CpuQueue;
pub use reduce::CpuReducePlan;

use crate::error::check_len;
use crate::{Backend, BackendKind, Element, Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The CPU backend. Buffers are host `Vec<T>`s; work is spread across the batch over a fixed
/// set of worker threads owned by this handle (the calling thread is one of them).
///
/// A `Cpu` is `Send + Sync` and can be shared by many threads; each plan is used through
/// `&mut`, so one plan cannot run in two threads at once. When two threads run plans on the
/// same `Cpu` at the same moment, the second runs its batch on its own thread instead of
/// waiting for the pool. Clones share the threads (and accept each other's plans).
#[derive(Clone)]
pub struct Cpu {
    pool: Arc<WorkerPool>,
    id: u64,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Cpu {
    /// A CPU backend with one thread per available core
    /// (`std::thread::available_parallelism`).
    ///
    /// # Errors
    /// [`Error::Device`] if the operating system refuses to start the threads.
    pub fn new() -> Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(threads)
    }

    /// A CPU backend running on `threads` threads (the calling thread counts as one).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `threads == 0`; [`Error::Device`] if the threads cannot
    /// be started.
    pub fn with_threads(threads: usize) -> Result<Self> {
        Ok(Self {
            pool: CpuQueue::with_threads(threads)?.pool,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Number of threads that run a batch, the caller included.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

impl Backend for Cpu {
    type Buffer<T: Element> = Vec<T>;
    type Queue = CpuQueue;

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<Vec<T>> {
        let fits = len
            .checked_mul(std::mem::size_of::<T>())
            .is_some_and(|b| b <= isize::MAX as usize);
        if !fits {
            return Err(Error::TooLarge("buffer length in bytes overflows isize"));
        }
        crate::limits::host_bytes(
            len,
            std::mem::size_of::<T>(),
            "buffer exceeds this machine's memory",
        )?;
        let mut v = Vec::new();
        v.try_reserve_exact(len)
            .map_err(|_| Error::TooLarge("buffer allocation refused by the allocator"))?;
        v.resize(len, T::zeroed());
        Ok(v)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut Vec<T>) -> Result<()> {
        check_len("dst", src.len(), dst.len())?;
        dst.copy_from_slice(src);
        Ok(())
    }

    fn download<T: Element>(&self, src: &Vec<T>, dst: &mut [T]) -> Result<()> {
        check_len("dst", src.len(), dst.len())?;
        dst.copy_from_slice(src);
        Ok(())
    }

    fn read_scalar<T: Element>(&self, src: &Vec<T>) -> Result<T> {
        src.first().copied().ok_or(Error::Shape {
            what: "out",
            expected: 1,
            got: 0,
        })
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}
