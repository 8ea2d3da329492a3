//! Host calls of a uniform batch as a pipeline of chunks, each on its own stream: the copy of
//! chunk c + 1 into pinned memory, chunk c's transfer to the device, the solves of earlier
//! chunks and their transfers back all overlap, and the caller's outputs fill chunk by chunk
//! as each arrives. At a few megabytes (the 1,582 x 12 x 12 f64 seed workload: 1.8 MB each way)
//! the two PCIe transfers and the latency-bound solve take about as long as each other, so
//! one after another they cost about three times what the slowest of them costs alone.
//!
//! The default below 16 MiB of input (`MEGABATCH_CUDA_STAGING=pinned` turns it off): on an
//! H100 the seed workload takes 0.39-0.45 ms this way, 0.49-0.53 ms in one pass. Taken by plans of one
//! uniform launch of a class whose matrices are independent given their
//! index (the warp, chains and block classes; not the split classes, which share one
//! workspace across rounds, nor Jacobi) with pinned staging and at least two chunks' worth of
//! input; the others keep `CudaEighPlan::run_host`'s single pass.
//!
//! Contract kept from the single pass: a non-finite input leaves `w` and `v` unwritten. The
//! copy into pinned memory tests every value it copies (in cache, on the copy threads); only
//! when all are finite, so that no chunk can report `NonFinite`, do outputs leave before the
//! last chunk is done. Otherwise the call waits for every chunk and decides on the kernels'
//! status words, which look at the lower triangles only.

use super::{launch_class, Bucket, ClassLaunch, CudaEighPlan, EighClass, HostStaging};
use crate::backends::cuda::access::{enqueue_ordered, Mode};
use crate::backends::cuda::device::Cuda;
use crate::backends::cuda::driver::{copy_to_host, fill_bytes, DeviceMemory, Event, Stream};
use crate::backends::cuda::graph::refuse_in_capture;
use crate::backends::cuda::staging::PinnedHost;
use crate::{Error, Real, Result};

/// Bytes of input per chunk the pipeline aims for: large enough that a transfer runs near
/// PCIe speed and a chunk's solve still fills a good part of the GPU, small enough that the
/// first transfer starts soon.
const CHUNK_BYTES: usize = 384 << 10;

/// Environment variable: KiB of input per chunk of the chunked host path (default 384; a
/// tuning knob for hosts whose PCIe and copy rates differ from the H100 it was measured on).
pub const CHUNK_KIB_ENV: &str = "MEGABATCH_CUDA_CHUNK_KIB";

fn chunk_bytes() -> usize {
    std::env::var(CHUNK_KIB_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&k| k > 0)
        .map_or(CHUNK_BYTES, |k| k << 10)
}

/// Most chunks (and streams) per plan.
const MAX_CHUNKS: usize = 8;

/// A status word's value before any matrix reports (larger than any index; `atomicMin`).
const NO_MATRIX: i32 = 0x7f7f_7f7f;

/// One chunk: matrices `first..first + launch.count`, its own stream, and the event recorded
/// once its outputs are in the pinned mirrors.
struct Chunk {
    first: usize,
    launch: ClassLaunch,
    stream: Stream,
    done: Event,
}

/// The chunks of a plan's host calls, made with its host staging.
pub(super) struct ChunkPipeline {
    chunks: Vec<Chunk>,
    /// Recorded on the plan's stream before the chunks start: they wait for the plan's
    /// earlier work.
    fork: Event,
    /// Two status words (first non-finite, first unconverged; indices within the chunk) per
    /// chunk, and their pinned copy, read once after every chunk (one copy and one event
    /// instead of a copy per chunk: each API call on a chunk's stream delays the next
    /// chunk's start by the host time it takes).
    status: DeviceMemory,
    status_host: PinnedHost<i32>,
    /// Recorded on the plan's stream once the status words are in `status_host`.
    status_read: Event,
}

impl ChunkPipeline {
    /// The pipeline for `plan`'s host calls, or `None` where it does not apply (ragged
    /// batches, several launches, the split and Jacobi classes, or a batch small enough for
    /// one chunk).
    pub(super) fn for_plan<T: Real>(cuda: &Cuda, plan: &CudaEighPlan<T>) -> Result<Option<Self>> {
        let [launch] = plan.launches.as_slice() else {
            return Ok(None);
        };
        let independent = matches!(
            launch.class,
            EighClass::Warp { .. } | EighClass::Chains { .. } | EighClass::Block { .. }
        );
        let a_bytes = plan.offsets.a_len() * std::mem::size_of::<T>();
        let count = a_bytes
            .div_ceil(chunk_bytes())
            .min(MAX_CHUNKS)
            .min(plan.batch);
        if plan.tables.is_some() || launch.list != 0 || !independent || count < 2 {
            return Ok(None);
        }
        let ctx = &cuda.ctx;
        let per = plan.batch.div_ceil(count);
        let mut chunks = Vec::with_capacity(count);
        for first in (0..plan.batch).step_by(per) {
            let matrices = per.min(plan.batch - first);
            // The class's own shape for a batch of this chunk's size (the chains classes
            // pack fewer matrices per block into a smaller batch).
            let bucket = Bucket {
                count: matrices,
                nmax: plan.uniform_n as usize,
                elem: std::mem::size_of::<T>(),
                vectors: plan.vectors,
                a_len: plan.offsets.a_len(),
                algorithm: plan.algorithm,
            };
            let [shape] = launch
                .class
                .desc()
                .plan(launch.class, &bucket, &cuda.info)?
                .launches[..]
            else {
                return Ok(None);
            };
            chunks.push(Chunk {
                first,
                launch: ClassLaunch {
                    count: matrices as i32,
                    shape,
                    ..*launch
                },
                stream: Stream::new(ctx)?,
                done: Event::new(ctx)?,
            });
        }
        Ok(Some(Self {
            status: DeviceMemory::zeroed(ctx, 8 * chunks.len())?,
            status_host: PinnedHost::zeroed(ctx, 2 * chunks.len())?,
            status_read: Event::new(ctx)?,
            fork: Event::new(ctx)?,
            chunks,
        }))
    }

    /// Chunks (and streams).
    pub(super) fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of the pinned status copy.
    pub(super) fn host_bytes(&self) -> usize {
        self.status_host.bytes()
    }

    /// Bytes of the status words on the device.
    pub(super) fn device_bytes(&self) -> usize {
        self.status.bytes()
    }

    /// The first matrix (batch index) whose status word `word` (0: non-finite, 1: not
    /// converged) is set, chunks being in batch order.
    fn first_reported(&self, word: usize) -> Option<usize> {
        let s = self.status_host.as_slice();
        self.chunks.iter().enumerate().find_map(|(c, chunk)| {
            let idx = s[2 * c + word];
            (idx != NO_MATRIX).then(|| chunk.first + idx as usize)
        })
    }
}

impl<T: Real> CudaEighPlan<T> {
    /// `eigh_host` through `pipe`: chunk by chunk into pinned memory and onto its stream, then
    /// each chunk's outputs into `w` and `v` as soon as its event fires.
    pub(super) fn run_chunked(
        &mut self,
        host: &mut HostStaging<T>,
        pipe: &mut ChunkPipeline,
        a: &[T],
        w: &mut [T],
        mut v: Option<&mut [T]>,
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        let n = self.uniform_n as usize;
        let (a_dev, w_dev) = (host.a.ptr(), host.w.ptr());
        let v_dev = if self.vectors { host.v.ptr() } else { 0 };
        let elem = std::mem::size_of::<T>() as u64;
        let finite = |s: &[T]| s.iter().all(|x| x.is_finite());
        let plan_use = [
            Some((&self.access, Mode::Write)),
            Some((&self.info.access, Mode::Write)),
        ];
        let mut all_finite = true;
        let queued = enqueue_ordered(&self.stream, &plan_use, || {
            fill_bytes(pipe.status.ptr(), 0x7f, pipe.status.bytes(), &self.stream)?;
            pipe.fork.record(&self.stream)?;
            for (c, chunk) in pipe.chunks.iter().enumerate() {
                let s = &chunk.stream;
                let count = chunk.launch.count as usize;
                let (a_at, w_at) = (chunk.first * n * n, chunk.first * n);
                s.wait(&pipe.fork)?;
                all_finite &=
                    host.a
                        .send_range(&a[a_at..a_at + count * n * n], a_at, s, &finite)?;
                let status = pipe.status.ptr() + 8 * c as u64;
                let offset = |base: u64, at: usize| {
                    if base == 0 {
                        0
                    } else {
                        base + at as u64 * elem
                    }
                };
                let mut args = self.args(
                    &chunk.launch,
                    (
                        offset(a_dev, a_at),
                        offset(w_dev, w_at),
                        offset(v_dev, a_at),
                    ),
                    status,
                    self.info.ptr() + 4 * chunk.first as u64,
                );
                if args.gwork != 0 {
                    // The chains classes' rotation lists: a word per element of A.
                    args.gwork += a_at as u64 * elem;
                }
                launch_class(&chunk.launch, &args, s)?;
                host.w.fetch_range(w_at, count * n, s)?;
                if self.vectors {
                    host.v.fetch_range(a_at, count * n * n, s)?;
                }
                chunk.done.record(s)?;
                self.stream.wait(&chunk.done)?;
            }
            copy_to_host(
                pipe.status.ptr(),
                pipe.status_host.as_mut_slice(),
                &self.stream,
            )?;
            pipe.status_read.record(&self.stream)
        });
        if let Err(e) = queued {
            // Chunks already queued read and write the staging: let them finish first.
            for chunk in &pipe.chunks {
                let _ = chunk.stream.synchronize();
            }
            return Err(e);
        }
        for chunk in &pipe.chunks {
            chunk.done.synchronize()?;
            if all_finite {
                copy_out(host, chunk, n, w, v.as_deref_mut());
            }
        }
        pipe.status_read.synchronize()?;
        if let Some(matrix) = pipe.first_reported(0) {
            return Err(Error::NonFinite { matrix });
        }
        if !all_finite {
            // Non-finite values in upper triangles only: nothing reported, nothing copied yet.
            for chunk in &pipe.chunks {
                copy_out(host, chunk, n, w, v.as_deref_mut());
            }
        }
        match pipe.first_reported(1) {
            Some(matrix) => Err(Error::NoConvergence { matrix }),
            None => Ok(()),
        }
    }
}

/// Copies a finished chunk's eigenvalues and eigenvectors from the pinned mirrors.
fn copy_out<T: Real>(
    host: &HostStaging<T>,
    chunk: &Chunk,
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
) {
    let count = chunk.launch.count as usize;
    let (a_at, w_at) = (chunk.first * n * n, chunk.first * n);
    host.w
        .copy_received_range(w_at, &mut w[w_at..w_at + count * n]);
    if let Some(v) = v {
        host.v
            .copy_received_range(a_at, &mut v[a_at..a_at + count * n * n]);
    }
}
