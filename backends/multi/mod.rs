//! `Multi<B>`: one batch over several devices of one backend (every GPU of a host, or CPU
//! backends standing in for devices in tests). Each plan splits its batch into contiguous
//! parts of about equal work ([`crate::EighSpec::split_by_work`]), makes one plan per device
//! at plan time, and runs the parts concurrently, one host thread per device, each device on
//! its own context and queue; results are those of the same kernels on one device, matrix for
//! matrix, because every matrix is solved by the same code on its part's device.
//!
//! Buffers ([`MultiBuffer`]) are one buffer per device, each holding one contiguous range of
//! the whole: a plan's device calls take buffers split as the plan splits its operands
//! ([`MultiEighPlan::parts`], [`Multi::alloc_parts`]); host calls split the caller's slices by
//! range. Issue "One batch over every GPU of a host": eigh, reductions and attention;
//! `Auto` over a `Multi` is the next step.

mod attention;
mod buffer;
mod eigh;
mod reduce;
mod rows;

pub use attention::{AttentionPart, MultiAttentionPlan};
pub use buffer::MultiBuffer;
pub use eigh::MultiEighPlan;
pub use reduce::MultiReducePlan;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backends::cpu::pool::WorkerPool;
use crate::{Backend, BackendKind, Element, Error, Result};

/// Several devices of backend `B` as one backend: plans split their batch over the devices
/// by work and run the parts concurrently (one host thread per device, started here).
///
/// `kind()` is the devices' kind. Clones share the devices and the threads.
#[derive(Clone)]
pub struct Multi<B> {
    devices: Arc<[B]>,
    pool: Arc<WorkerPool>,
    id: u64,
}

impl<B> std::fmt::Debug for Multi<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multi")
            .field("devices", &self.devices.len())
            .finish()
    }
}

/// Distinguishes `Multi` instances, so that a plan is only run by the one that made it.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One queue per device of a [`Multi`], in device order: what its `*_on` calls run on.
pub struct MultiQueue<Q> {
    queues: Vec<Q>,
}

impl<Q> MultiQueue<Q> {
    /// The queues, one per device in the order of [`Multi::devices`] (for CUDA, streams of
    /// each device's context, e.g. `cuda.new_queue()` of each).
    pub fn new(queues: Vec<Q>) -> Self {
        Self { queues }
    }

    /// The queue of device `k`.
    pub fn device(&self, k: usize) -> &Q {
        &self.queues[k]
    }
}

impl<B: Backend> Multi<B> {
    /// The devices `devices` (at least one, all of one kind) as one backend, with one host
    /// thread per device to drive them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no devices or devices of different kinds;
    /// [`Error::Device`] if the threads cannot start.
    pub fn new(devices: Vec<B>) -> Result<Self> {
        let Some(first) = devices.first() else {
            return Err(Error::InvalidArgument("Multi needs at least one device"));
        };
        if devices.iter().any(|d| d.kind() != first.kind()) {
            return Err(Error::InvalidArgument(
                "Multi takes devices of one backend kind",
            ));
        }
        let pool = WorkerPool::new(devices.len()).map_err(|e| {
            Error::device(
                first.kind(),
                crate::DeviceErrorKind::Other,
                format!("Multi: cannot start one thread per device: {e}"),
            )
        })?;
        Ok(Self {
            devices: devices.into(),
            pool: Arc::new(pool),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The devices, in the order parts are given to them.
    pub fn devices(&self) -> &[B] {
        &self.devices
    }

    /// A buffer of `ranges.len()` parts (one per device, in device order), part `k` on device
    /// `k` holding elements `ranges[k]` of the whole, zeroed. The ranges must tile `0..len`
    /// in order (as a plan's parts do).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a number of ranges other than the device count or ranges
    /// that do not tile; the device's allocation errors.
    pub fn alloc_parts<T: Element>(
        &self,
        ranges: impl IntoIterator<Item = Range<usize>>,
    ) -> Result<MultiBuffer<B, T>> {
        let ranges: Vec<Range<usize>> = ranges.into_iter().collect();
        if ranges.len() != self.devices.len() {
            return Err(Error::InvalidArgument(
                "Multi::alloc_parts takes one range per device",
            ));
        }
        let mut end = 0;
        for r in &ranges {
            if r.start != end || r.end < r.start {
                return Err(Error::InvalidArgument(
                    "Multi::alloc_parts: the ranges must tile 0..len in order",
                ));
            }
            end = r.end;
        }
        let parts = ranges
            .into_iter()
            .zip(self.devices.iter())
            .map(|(r, d)| Ok((r.clone(), d.alloc::<T>(r.len())?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(MultiBuffer::new(parts, end))
    }

    /// `PlanMismatch` unless `owner` (a plan's) is this instance's id.
    fn check_owner(&self, owner: u64) -> Result<()> {
        if owner == self.id {
            Ok(())
        } else {
            Err(Error::PlanMismatch(
                "the plan was made by another Multi instance",
            ))
        }
    }

    /// `PlanMismatch` unless `queue` has one queue per device.
    fn check_queue(&self, queue: &MultiQueue<B::Queue>) -> Result<()> {
        if queue.queues.len() == self.devices.len() {
            Ok(())
        } else {
            Err(Error::PlanMismatch(
                "a MultiQueue needs one queue per device of its Multi",
            ))
        }
    }

    /// Runs `task(k)` for every device `k`, device `k` always on thread `k` of the pool (the
    /// calling thread for device 0), and returns the error of the lowest-numbered device that
    /// failed, if any (a device error's message naming the device). No allocation. A fixed thread per device keeps its context current
    /// there and its thread-local scratch (faer's, on a CPU) made once.
    fn each_device(&self, task: &(dyn Fn(usize) -> Result<()> + Sync)) -> Result<()> {
        let first_error = std::sync::Mutex::new(None::<(usize, Error)>);
        self.pool.run_on_each_thread(&|k, _| {
            if let Err(e) = task(k).map_err(|e| name_device(e, k)) {
                let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_none_or(|(j, _)| k < *j) {
                    *slot = Some((k, e));
                }
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "cuda")]
impl Multi<crate::backends::cuda::Cuda> {
    /// Every CUDA device of this host (`Cuda::with_device(k)` for `k` below
    /// `Cuda::device_count()`), each with its own context and plans' streams.
    ///
    /// # Errors
    /// [`Error::Device`] without a driver or device, or when a device fails to start.
    pub fn every_cuda_device() -> Result<Self> {
        use crate::backends::cuda::Cuda;
        let devices = (0..Cuda::device_count()?)
            .map(Cuda::with_device)
            .collect::<Result<Vec<_>>>()?;
        if devices.is_empty() {
            return Err(Error::device(
                BackendKind::Cuda,
                crate::DeviceErrorKind::Other,
                "no CUDA device",
            ));
        }
        Self::new(devices)
    }
}

/// `e` with a device error's message naming device `k` (its index in [`Multi::devices`]).
fn name_device(e: Error, k: usize) -> Error {
    match e {
        Error::Device {
            kind,
            backend,
            message,
        } => Error::Device {
            kind,
            backend,
            message: format!("device {k} of the Multi: {message}"),
        },
        other => other,
    }
}

impl<B: Backend> Backend for Multi<B> {
    type Buffer<T: Element> = MultiBuffer<B, T>;
    type Queue = MultiQueue<B::Queue>;

    fn kind(&self) -> BackendKind {
        self.devices[0].kind()
    }

    /// `len` elements split evenly by element count over the devices (earlier devices take
    /// the remainder). Plans whose parts are split by work need [`Multi::alloc_parts`].
    fn alloc<T: Element>(&self, len: usize) -> Result<MultiBuffer<B, T>> {
        self.alloc_parts(reduce::even_ranges(len, self.devices.len()))
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut MultiBuffer<B, T>) -> Result<()> {
        crate::error::check_len("dst", src.len(), dst.len())?;
        let parts = crate::backends::cpu::pool::DisjointMut::new(dst.parts_mut());
        self.each_device(&|k| {
            // SAFETY: each device index runs once, so the one-element ranges are disjoint.
            let (range, buffer) = unsafe { &mut parts.range(k, 1)[0] };
            self.devices[k].upload(&src[range.clone()], buffer)
        })
    }

    fn download<T: Element>(&self, src: &MultiBuffer<B, T>, dst: &mut [T]) -> Result<()> {
        crate::error::check_len("dst", src.len(), dst.len())?;
        let out = crate::backends::cpu::pool::DisjointMut::new(dst);
        self.each_device(&|k| {
            let (range, buffer) = &src.parts()[k];
            // SAFETY: the parts' ranges tile the buffer, so they are disjoint.
            let dst = unsafe { out.range(range.start, range.len()) };
            self.devices[k].download(buffer, dst)
        })
    }

    /// The first element: from the first part that holds one.
    fn read_scalar<T: Element>(&self, src: &MultiBuffer<B, T>) -> Result<T> {
        for (k, (range, buffer)) in src.parts().iter().enumerate() {
            if !range.is_empty() {
                return self.devices[k].read_scalar(buffer);
            }
        }
        Err(Error::Shape {
            what: "scalar",
            expected: 1,
            got: 0,
        })
    }

    fn synchronize(&self) -> Result<()> {
        self.each_device(&|k| self.devices[k].synchronize())
    }
}
