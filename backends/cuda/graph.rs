//! [`CudaGraph`]: a sequence of megabatch operations and user kernels captured once on one
//! queue (`cuStreamBeginCapture` in thread-local mode) and replayed with one `cuGraphLaunch`.
//!
//! What may be captured: plans' device-buffer calls, user kernels and reductions' device calls
//! on the capturing queue, all made and run once before the capture (a plan's first call
//! compiles nothing, but its buffers and plans must exist: anything that allocates or
//! synchronises the host invalidates the capture, and megabatch refuses host calls and work on
//! other queues while one is open). A graph bakes device addresses into its nodes, so it keeps
//! the list of buffers and plans it touched: every replay first waits for their earlier work
//! (as any operation does, see `access.rs`), then records itself as their last read or write,
//! and refuses to launch once one of them was dropped.

use std::cell::RefCell;
use std::sync::Arc;

use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use super::access::{holding, order_replay, Access, Mode, Use};
use super::driver::{bind, Event, Stream};
use super::error::DriverResultExt;
use super::queue::CudaQueue;
use super::Cuda;
use crate::{Error, Result};

/// The capture open on this thread: its stream and what the captured work touched.
struct Capture {
    stream: usize,
    uses: Vec<(Arc<Access>, Mode)>,
}

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Whether work on `stream` is being captured by this thread (then `uses` are remembered for
/// the graph); an error for work on another stream while this thread captures.
pub(crate) fn capturing(stream: &Stream, uses: &[Option<Use<'_>>]) -> Result<bool> {
    CAPTURE.with(|c| {
        let mut c = c.borrow_mut();
        let Some(capture) = c.as_mut() else {
            return Ok(false);
        };
        if capture.stream != stream.id() {
            return Err(Error::InvalidArgument(
                "while a graph is being captured, queue work only on the capturing queue",
            ));
        }
        for (access, mode) in uses.iter().flatten() {
            match capture
                .uses
                .iter_mut()
                .find(|(a, _)| Arc::ptr_eq(a, access))
            {
                Some(seen) if *mode == Mode::Write => seen.1 = Mode::Write,
                Some(_) => {}
                None => capture.uses.push((Arc::clone(access), *mode)),
            }
        }
        Ok(true)
    })
}

/// `Err` while this thread captures a graph: for host calls, which synchronise.
pub(crate) fn refuse_in_capture(what: &'static str) -> Result<()> {
    let open = CAPTURE.with(|c| c.borrow().is_some());
    if open {
        return Err(Error::InvalidArgument(what));
    }
    Ok(())
}

/// An instantiated CUDA graph of megabatch work, replayed by [`CudaGraph::launch`].
///
/// Made by [`Cuda::capture`]. Replays on any queue of its context; each replay is ordered
/// after earlier work on the buffers and plans it uses and before later work on them, like a
/// single operation. `Send` (one thread replays it at a time: `launch` takes `&mut self`).
pub struct CudaGraph {
    exec: sys::CUgraphExec,
    graph: sys::CUgraph,
    ctx: Arc<CudaContext>,
    /// Recorded after each replay: `Drop` waits for it before destroying the graph.
    done: Event,
    /// Distinct, in address order (the order `holding` needs).
    uses: Vec<(Arc<Access>, Mode)>,
}

// SAFETY: graph handles may be used from any thread with the context current; `launch` takes
// `&mut self`, so one thread launches a given executable graph at a time.
unsafe impl Send for CudaGraph {}

impl std::fmt::Debug for CudaGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaGraph")
            .field("buffers_and_plans", &self.uses.len())
            .finish()
    }
}

/// Ends the capture on this thread's stream, returning the graph (null if nothing was
/// captured) or the driver's error, and clears the thread's capture state.
fn end_capture(stream: &Stream) -> (Result<sys::CUgraph>, Vec<(Arc<Access>, Mode)>) {
    let uses = CAPTURE
        .with(|c| c.borrow_mut().take())
        .map(|c| c.uses)
        .unwrap_or_default();
    let mut graph: sys::CUgraph = std::ptr::null_mut();
    // SAFETY: `stream` is capturing (begun by `Cuda::capture` on this thread); `graph` is
    // valid for writes.
    let ended = unsafe { sys::cuStreamEndCapture(stream.raw, &mut graph) }
        .result()
        .call("cuStreamEndCapture")
        .map(|()| graph);
    (ended, uses)
}

/// Ends the capture if `record` panics, so the stream and the thread are not left capturing.
struct OpenCapture<'a> {
    stream: &'a Stream,
}

impl Drop for OpenCapture<'_> {
    fn drop(&mut self) {
        if let (Ok(g), _) = end_capture(self.stream) {
            if !g.is_null() {
                // SAFETY: a graph returned by cuStreamEndCapture, destroyed once.
                let _ = unsafe { sys::cuGraphDestroy(g) };
            }
        }
    }
}

impl Cuda {
    /// Captures the work `record` queues on `queue` into a graph, without running it.
    ///
    /// Inside `record`, queue megabatch device calls (`eigh_on`, `reduce_on`,
    /// `attention_on`, [`Cuda::launch_kernel`]) on `queue` only; make every plan, buffer and
    /// kernel before, and run each once eagerly first (so nothing is compiled or allocated
    /// lazily inside). The capture is `CU_STREAM_CAPTURE_MODE_THREAD_LOCAL`: other threads are
    /// unaffected.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a capture is already open on this thread, for host
    /// calls, allocations or work on another queue inside `record`, and when `record` queued
    /// nothing (then no graph is made); [`Error::Device`] when the driver refuses (the legacy
    /// default stream cannot be captured; a foreign call that synchronises invalidates the
    /// capture); whatever `record` returns.
    pub fn capture(
        &self,
        queue: &CudaQueue,
        record: impl FnOnce(&CudaQueue) -> Result<()>,
    ) -> Result<CudaGraph> {
        self.check_queue(queue)?;
        bind(&self.ctx)?;
        refuse_in_capture("a graph capture is already open on this thread")?;
        let done = Event::new(&self.ctx)?;
        let stream = &queue.stream;
        // SAFETY: the stream is alive and belongs to the current context.
        unsafe {
            sys::cuStreamBeginCapture_v2(
                stream.raw,
                sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
        }
        .result()
        .call("cuStreamBeginCapture")?;
        CAPTURE.with(|c| {
            *c.borrow_mut() = Some(Capture {
                stream: stream.id(),
                uses: Vec::new(),
            })
        });
        let open = OpenCapture { stream };
        let recorded = record(queue);
        std::mem::forget(open);
        let (ended, mut uses) = end_capture(stream);
        let graph = match ended {
            Ok(g) => g,
            // The capture's own error explains an invalidated capture better than the driver's.
            Err(e) => return Err(recorded.err().unwrap_or(e)),
        };
        if let Err(e) = recorded {
            if !graph.is_null() {
                // SAFETY: a graph returned by cuStreamEndCapture, destroyed once.
                let _ = unsafe { sys::cuGraphDestroy(graph) };
            }
            return Err(e);
        }
        let mut nodes = 0usize;
        // SAFETY: `graph` is null or a live graph; with a null node array the call only
        // counts the nodes.
        let uncountable = graph.is_null()
            || unsafe { sys::cuGraphGetNodes(graph, std::ptr::null_mut(), &mut nodes) }
                != sys::CUresult::CUDA_SUCCESS;
        if uncountable || nodes == 0 {
            if !graph.is_null() {
                // SAFETY: a graph returned by cuStreamEndCapture, destroyed once.
                let _ = unsafe { sys::cuGraphDestroy(graph) };
            }
            return Err(Error::InvalidArgument("the capture recorded no work"));
        }
        let mut exec: sys::CUgraphExec = std::ptr::null_mut();
        // SAFETY: `graph` is a valid graph; `exec` is valid for writes.
        let made = unsafe { sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0) }
            .result()
            .call("cuGraphInstantiate");
        if let Err(e) = made {
            // SAFETY: created above, destroyed once.
            let _ = unsafe { sys::cuGraphDestroy(graph) };
            return Err(e);
        }
        uses.sort_unstable_by_key(|(a, _)| Arc::as_ptr(a) as usize);
        Ok(CudaGraph {
            exec,
            graph,
            ctx: self.ctx.clone(),
            done,
            uses,
        })
    }
}

impl CudaGraph {
    /// Replays the graph on `queue` (any queue of the context it was captured in): waits for
    /// earlier work on its buffers and plans, one `cuGraphLaunch`, records itself as their
    /// last use. No allocation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a buffer or plan the graph uses was dropped (nothing is
    /// launched), if `queue` belongs to another context, or inside a capture;
    /// [`Error::Device`] if the launch fails.
    pub fn launch(&mut self, queue: &CudaQueue) -> Result<()> {
        if !Arc::ptr_eq(queue.stream.ctx(), &self.ctx) {
            return Err(Error::PlanMismatch(
                "graph replayed on a queue of another CUDA context",
            ));
        }
        refuse_in_capture("a graph cannot be launched inside another capture")?;
        bind(&self.ctx)?;
        let stream = &queue.stream;
        holding(self.uses.iter().map(|(a, _)| a), || {
            order_replay(stream, &self.uses, true)?;
            // SAFETY: `exec` is a live executable graph of this context; every buffer and plan
            // it addresses is alive (held, and not retired) and stays so until the stream has
            // passed the launch (their retirement waits for the events recorded below).
            let launched = unsafe { sys::cuGraphLaunch(self.exec, stream.raw) }
                .result()
                .call("cuGraphLaunch");
            self.done.record(stream)?;
            order_replay(stream, &self.uses, false)?;
            launched
        })
    }

    /// Number of distinct buffers and plans the graph touches.
    pub fn resources(&self) -> usize {
        self.uses.len()
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            let _ = self.done.synchronize();
            // SAFETY: created by `capture`, destroyed once, executable first.
            unsafe {
                let _ = sys::cuGraphExecDestroy(self.exec);
                let _ = sys::cuGraphDestroy(self.graph);
            }
        }
    }
}
