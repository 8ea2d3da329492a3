//! [`Access`]: the read and write ordering of one device resource (a buffer, or a plan's own
//! workspace) across streams, and [`enqueue_ordered`], the one way work on such resources is
//! queued.
//!
//! The model is cudarc's `CudaSlice`: a write waits for every earlier read and write, a read
//! waits only for the last write, so two plans on two streams that read one buffer run
//! concurrently. cudarc keeps one read event, which the second of two concurrent readers
//! overwrites (a later writer then waits for one reader only); here each buffer keeps
//! [`READ_SLOTS`] read events tagged with the stream that recorded them, and a reader on a
//! further stream first joins the oldest slot's event (its stream waits on it after its own
//! work, so only what follows is delayed) before taking that slot over.
//!
//! An operation *holds* every resource it touches from its first wait to its last record (a
//! flag under the resource's mutex, taken in address order, so two operations never deadlock),
//! which makes each operation's waits, launches and records atomic with respect to the others.
//! The borrow checker already keeps a writer (`&mut`) apart from readers (`&`); holding matters
//! for graphs, whose replays write buffers they do not borrow. A dropped resource is *retired*:
//! it waits for its recorded work, and graphs that still name it refuse to launch.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cudarc::driver::CudaContext;

use super::driver::{Event, Stream};
use super::graph;
use crate::{Error, Result};

/// Read events per resource: distinct streams reading one buffer concurrently before a writer.
pub(crate) const READ_SLOTS: usize = 4;

/// Most distinct resources one operation touches (a plan's workspace, inputs, outputs, or a
/// user kernel's buffer arguments).
pub(crate) const MAX_USES: usize = 32;

/// How an operation touches a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// One resource an operation touches, and how.
pub(crate) type Use<'a> = (&'a Arc<Access>, Mode);

/// The ordering state of one resource. See the module docs.
pub(crate) struct Access {
    write: Event,
    reads: [Event; READ_SLOTS],
    state: Mutex<State>,
    released: Condvar,
}

#[derive(Default)]
struct State {
    /// An operation (or a retirement) holds the resource.
    held: bool,
    /// The owner was dropped: no further work may be queued on it.
    retired: bool,
    /// The write event holds a record (until then there is nothing to wait for, and waits,
    /// synchronisations and queries on it are skipped: each is a driver call, and a buffer
    /// borrowed for one call makes few).
    written: bool,
    /// The stream (`Stream::id`) whose read each slot's event records, if any.
    readers: [Option<usize>; READ_SLOTS],
    /// The slot a reader on a new stream takes over when all are in use.
    evict: usize,
}

impl Access {
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            write: Event::new(ctx)?,
            reads: [
                Event::new(ctx)?,
                Event::new(ctx)?,
                Event::new(ctx)?,
                Event::new(ctx)?,
            ],
            state: Mutex::new(State::default()),
            released: Condvar::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the resource, waiting while another operation holds it.
    fn hold(&self) -> Result<()> {
        let mut s = self.lock();
        while s.held {
            s = self.released.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.retired {
            return Err(Error::InvalidArgument(
                "a buffer or plan this work uses was dropped (a graph replayed after one of its \
                 buffers or plans was dropped?)",
            ));
        }
        s.held = true;
        Ok(())
    }

    fn release(&self) {
        self.lock().held = false;
        self.released.notify_all();
    }

    /// Whether the write event holds a record, and the stream of each read slot's record.
    fn recorded(&self) -> (bool, [Option<usize>; READ_SLOTS]) {
        let s = self.lock();
        (s.written, s.readers)
    }

    /// Makes `stream` wait for what an access of `mode` must follow: the last write, and for a
    /// write every read since.
    fn wait_before(&self, stream: &Stream, mode: Mode) -> Result<()> {
        let (written, readers) = self.recorded();
        if written {
            stream.wait(&self.write)?;
        }
        if mode == Mode::Write {
            for (slot, reader) in readers.iter().enumerate() {
                if reader.is_some() {
                    stream.wait(&self.reads[slot])?;
                }
            }
        }
        Ok(())
    }

    /// Records the work queued on `stream` as this resource's last access of `mode`.
    fn record_after(&self, stream: &Stream, mode: Mode) -> Result<()> {
        let mut s = self.lock();
        match mode {
            Mode::Write => {
                self.write.record(stream)?;
                s.written = true;
                // The write waited for every read, so its event covers them.
                s.readers = [None; READ_SLOTS];
            }
            Mode::Read => {
                let id = stream.id();
                let slot = match s.readers.iter().position(|r| *r == Some(id)) {
                    Some(slot) => slot,
                    None => match s.readers.iter().position(Option::is_none) {
                        Some(slot) => slot,
                        None => {
                            let slot = s.evict;
                            s.evict = (slot + 1) % READ_SLOTS;
                            // Join the evicted reader, so this slot covers both reads.
                            stream.wait(&self.reads[slot])?;
                            slot
                        }
                    },
                };
                self.reads[slot].record(stream)?;
                s.readers[slot] = Some(id);
            }
        }
        Ok(())
    }

    fn sync_events(&self, mode: Mode) -> Result<()> {
        let (written, readers) = self.recorded();
        if written {
            self.write.synchronize()?;
        }
        if mode == Mode::Write {
            for (slot, reader) in readers.iter().enumerate() {
                if reader.is_some() {
                    self.reads[slot].synchronize()?;
                }
            }
        }
        Ok(())
    }

    /// Whether every recorded access has finished on the device, without blocking.
    pub(crate) fn is_idle(&self) -> Result<bool> {
        let (written, readers) = self.recorded();
        if written && !self.write.is_done()? {
            return Ok(false);
        }
        for (slot, reader) in readers.iter().enumerate() {
            if reader.is_some() && !self.reads[slot].is_done()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Runs `f` with the resource held, after every recorded access of `mode`'s predecessors
    /// finished on the device (for host copies into or out of it).
    pub(crate) fn with_host<R>(&self, mode: Mode, f: impl FnOnce() -> Result<R>) -> Result<R> {
        self.hold()?;
        let out = self.sync_events(mode).and_then(|()| f());
        self.release();
        out
    }

    /// Marks the resource dropped once every recorded access has finished, so that its memory
    /// can be freed; later holds (a graph's replay) fail. Errors are ignored: this runs in
    /// `Drop`, and a lost device has nothing left to wait for.
    pub(crate) fn retire(&self) {
        if self.hold().is_err() {
            return;
        }
        let _ = self.sync_events(Mode::Write);
        self.lock().retired = true;
        self.release();
    }

    /// Whether the two are the same resource.
    fn same(a: &Arc<Access>, b: &Arc<Access>) -> bool {
        Arc::ptr_eq(a, b)
    }
}

/// The distinct resources of `uses` in address order, a resource used both ways as a write.
/// Returns how many of `out` are filled.
pub(crate) fn sorted_uses<'a>(
    uses: impl IntoIterator<Item = Use<'a>>,
    out: &mut [Option<Use<'a>>; MAX_USES],
) -> Result<usize> {
    let mut n = 0;
    for (access, mode) in uses {
        if let Some(seen) = out[..n]
            .iter_mut()
            .flatten()
            .find(|(a, _)| Access::same(a, access))
        {
            if mode == Mode::Write {
                seen.1 = Mode::Write;
            }
            continue;
        }
        if n == MAX_USES {
            return Err(Error::InvalidArgument(
                "more than 32 distinct buffers in one operation",
            ));
        }
        out[n] = Some((access, mode));
        n += 1;
    }
    out[..n].sort_unstable_by_key(|u| u.map(|(a, _)| Arc::as_ptr(a) as usize));
    Ok(n)
}

/// Holds every resource of `accesses` (distinct, in address order), runs `f`, releases them.
pub(crate) fn holding<'a, R>(
    accesses: impl Iterator<Item = &'a Arc<Access>> + Clone,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let mut held = 0;
    let mut outcome = Ok(());
    for access in accesses.clone() {
        if let Err(e) = access.hold() {
            outcome = Err(e);
            break;
        }
        held += 1;
    }
    let result = outcome.and_then(|()| f());
    for access in accesses.take(held) {
        access.release();
    }
    result
}

/// Waits on inputs, enqueues, marks outputs: orders `stream` after the accesses each resource
/// in `uses` must follow (see [`Access`]), runs `enqueue` (which queues the work on `stream`),
/// then records the work as each resource's last read or write. `None` entries (an absent
/// optional buffer) are skipped; nothing allocates.
///
/// While the calling thread captures a graph on `stream` ([`super::CudaGraph`]), the work is
/// captured instead and the resources are remembered for the graph's replays, which do the
/// waiting and recording; work on another stream during a capture is refused.
pub(crate) fn enqueue_ordered(
    stream: &Stream,
    uses: &[Option<Use<'_>>],
    enqueue: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let mut sorted = [None; MAX_USES];
    let n = sorted_uses(uses.iter().flatten().copied(), &mut sorted)?;
    let sorted = &sorted[..n];
    if graph::capturing(stream, sorted)? {
        return enqueue();
    }
    holding(sorted.iter().flatten().map(|(a, _)| *a), || {
        for (access, mode) in sorted.iter().flatten() {
            access.wait_before(stream, *mode)?;
        }
        // Record even when `enqueue` failed part-way: what it did queue stays ordered.
        let queued = enqueue();
        for (access, mode) in sorted.iter().flatten() {
            access.record_after(stream, *mode)?;
        }
        queued
    })
}

/// Orders already-queued or about-to-be-queued work on `stream` with the resources of `uses`,
/// for a graph's replay: the waits before it (`before`) or the records after it.
pub(crate) fn order_replay(
    stream: &Stream,
    uses: &[(Arc<Access>, Mode)],
    before: bool,
) -> Result<()> {
    for (access, mode) in uses {
        if before {
            access.wait_before(stream, *mode)?;
        } else {
            access.record_after(stream, *mode)?;
        }
    }
    Ok(())
}
