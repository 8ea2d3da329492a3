//! `BatchedEigh` on the CPU: validate every matrix, then decompose the batch in balanced
//! chunks across the worker pool, each thread with its own scratch.

mod faer_evd;
mod lanes;
mod solve;
mod tridiag_ql;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::partition::balanced_starts;
use super::pool::{DisjointMut, PerWorker};
use super::{Cpu, CpuQueue};
use crate::error::check_len;
use crate::{
    BatchedEigh, EighOffsets, EighSpec, Error, PlanFootprint, Real, Result, EIGH_NON_FINITE,
    EIGH_NO_CONVERGENCE, EIGH_SOLVED,
};
use solve::{
    lower_max_abs, solve, solve_lane_group, warm_up, Scratch, ScratchReq, FAER_MIN_ORDER, LANES,
    LANE_MAX_ORDER,
};

/// Batches whose estimated work is below this many flops run on the calling thread alone:
/// waking the workers costs more than it saves.
const PARALLEL_MIN_FLOPS: f64 = 2.0e5;
/// Chunks per thread: enough for dynamic load balancing over uneven ragged batches.
const CHUNKS_PER_THREAD: usize = 8;

/// A CPU eigh plan: the batch's offsets, chunk boundaries balanced by work, one scratch
/// arena per thread sized for the largest matrix, and the per-matrix status of the last call.
pub struct CpuEighPlan<T> {
    owner: u64,
    vectors: bool,
    batch: usize,
    offsets: EighOffsets,
    /// Work units in batch order: `(first matrix, count)`, where `count` is either 1 or
    /// `LANES` consecutive matrices of one order that run as a lane group. Fixed by the
    /// spec alone, so every matrix meets the same kernel whatever the thread count.
    units: Vec<(usize, usize)>,
    /// Chunk `c` covers units `chunk_starts[c]..chunk_starts[c + 1]`.
    chunk_starts: Vec<usize>,
    parallel: bool,
    scratch: PerWorker<Scratch<T>>,
    /// Bytes of `scratch`, summed over its allocations when the plan made them.
    scratch_bytes: usize,
    /// Per-matrix status of the last call (`EIGH_*` codes), one per matrix.
    info: Vec<i32>,
}

impl<T> CpuEighPlan<T> {
    /// The per-matrix status of the last call on this plan (`[batch]` `i32`: [`EIGH_SOLVED`],
    /// [`EIGH_NON_FINITE`] or [`EIGH_NO_CONVERGENCE`]), as
    /// [`BatchedEigh::eigh_info`] copies it; all [`EIGH_SOLVED`] before the first call.
    pub fn info(&self) -> &[i32] {
        &self.info
    }
}

impl<T> std::fmt::Debug for CpuEighPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuEighPlan")
            .field("batch", &self.batch)
            .field("vectors", &self.vectors)
            .field("chunks", &(self.chunk_starts.len() - 1))
            .finish()
    }
}

/// Groups the batch into work units: runs of `lanes` consecutive matrices of one order in
/// `2..=LANE_MAX_ORDER` become lane groups, everything else single matrices.
fn work_units(spec: &EighSpec, lanes: usize) -> Vec<(usize, usize)> {
    let batch = spec.batch();
    let mut units = Vec::with_capacity(batch);
    let mut i = 0;
    while i < batch {
        let n = spec.order(i);
        let mut run = 1;
        if (2..=LANE_MAX_ORDER).contains(&n) {
            while run < lanes && i + run < batch && spec.order(i + run) == n {
                run += 1;
            }
        }
        if run == lanes {
            units.push((i, lanes));
        } else {
            units.extend((i..i + run).map(|j| (j, 1)));
        }
        i += run;
    }
    units
}

/// Splits the units into at most `chunks` contiguous ranges of about equal work: n^3 per matrix
/// for the decomposition, +1 per matrix for the call itself.
fn balanced_chunks(spec: &EighSpec, units: &[(usize, usize)], chunks: usize) -> Vec<usize> {
    balanced_starts(units.len(), chunks, |u| {
        let (first, count) = units[u];
        count as f64 * ((spec.order(first) as f64).powi(3) + 1.0)
    })
}

impl Cpu {
    fn eigh_slices<T: Real>(
        &self,
        plan: &mut CpuEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        if plan.owner != self.id {
            return Err(Error::PlanMismatch(
                "the plan was made by another backend instance",
            ));
        }
        let offsets = &plan.offsets;
        offsets.check(plan.vectors, a.len(), w.len(), v.as_deref().map(<[T]>::len))?;
        let chunks = plan.chunk_starts.len() - 1;
        let starts = &plan.chunk_starts;
        let units = &plan.units;
        // Matrices of chunk `c` (none for an empty chunk).
        let matrices = |c: usize| match &units[starts[c]..starts[c + 1]] {
            [] => 0..0,
            [(first, _), ..] => *first..units[starts[c + 1] - 1].0 + units[starts[c + 1] - 1].1,
        };
        let run = |task: &(dyn Fn(usize, usize) + Sync)| {
            if plan.parallel {
                self.pool.run(chunks, task);
            } else {
                (0..chunks).for_each(|c| task(c, 0));
            }
        };

        // Pass 1: every matrix finite, before any output is written; each matrix's status.
        let info = DisjointMut::new(&mut plan.info);
        let first_bad = AtomicUsize::new(usize::MAX);
        run(&|c, _| {
            let range = matrices(c);
            // SAFETY: chunks cover disjoint ranges of matrices, each visited by one task.
            let codes = unsafe { info.range(range.start, range.len()) };
            for (i, code) in range.zip(codes) {
                let slot = offsets.slot(i);
                let m = &a[slot.a_start..slot.a_start + slot.n * slot.n];
                *code = if lower_max_abs(m, slot.n).is_none() {
                    first_bad.fetch_min(i, Ordering::Relaxed);
                    EIGH_NON_FINITE
                } else {
                    EIGH_SOLVED
                };
            }
        });
        let bad = first_bad.load(Ordering::Relaxed);
        if bad != usize::MAX {
            return Err(Error::NonFinite { matrix: bad });
        }

        // Pass 2: decompose.
        let w_out = DisjointMut::new(w);
        let v_out = v.map(DisjointMut::new);
        let scratch = &plan.scratch;
        let failed = AtomicUsize::new(usize::MAX);
        run(&|c, worker| {
            // SAFETY: the pool gives each worker id to one thread at a time.
            let s = unsafe { scratch.get(worker) };
            let range = matrices(c);
            // SAFETY: as in pass 1, this chunk's matrices alone.
            let codes = unsafe { info.range(range.start, range.len()) };
            for &(first, count) in &units[starts[c]..starts[c + 1]] {
                // SAFETY (all `range` calls): matrices occupy disjoint ranges of `w` and `v`
                // (offsets are prefix sums of n and n^2), and each matrix belongs to exactly one
                // unit, which one task visits.
                let failure = if count == 1 {
                    let slot = offsets.slot(first);
                    let nn = slot.n * slot.n;
                    // SAFETY: matrix `first`'s own ranges, as above.
                    let wi = unsafe { w_out.range(slot.w_start, slot.n) };
                    // SAFETY: matrix `first`'s own ranges, as above.
                    let vi = v_out.as_ref().map(|v| unsafe { v.range(slot.a_start, nn) });
                    solve(&a[slot.a_start..slot.a_start + nn], slot.n, wi, vi, s)
                        .err()
                        .map(|_| 0)
                } else {
                    lane_group::<T, LANES>(a, offsets, first, &w_out, v_out.as_ref(), s)
                };
                if let Some(lane) = failure {
                    failed.fetch_min(first + lane, Ordering::Relaxed);
                    codes[first + lane - range.start] = EIGH_NO_CONVERGENCE;
                }
            }
        });
        match failed.load(Ordering::Relaxed) {
            usize::MAX => Ok(()),
            matrix => Err(Error::NoConvergence { matrix }),
        }
    }
}

/// Runs matrices `first..first + L` (one order) as a lane group; the failing lane, if any.
fn lane_group<T: Real, const L: usize>(
    a: &[T],
    offsets: &EighOffsets,
    first: usize,
    w_out: &DisjointMut<'_, T>,
    v_out: Option<&DisjointMut<'_, T>>,
    s: &mut Scratch<T>,
) -> Option<usize> {
    let slots: [_; L] = std::array::from_fn(|q| offsets.slot(first + q));
    let n = slots[0].n;
    let nn = n * n;
    let inputs = slots.map(|sl| &a[sl.a_start..sl.a_start + nn]);
    // SAFETY: as in `eigh_slices`: these matrices' output ranges are disjoint from each other
    // and from every other unit's.
    let w = slots.map(|sl| unsafe { w_out.range(sl.w_start, n) });
    let v = v_out.map(|v| {
        // SAFETY: as for `w`.
        slots.map(|sl| unsafe { v.range(sl.a_start, nn) })
    });
    solve_lane_group(inputs, n, w, v, s).err()
}

impl<T: Real> BatchedEigh<T> for Cpu {
    type EighPlan = CpuEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<CpuEighPlan<T>> {
        let offsets = spec.offsets(std::mem::size_of::<T>())?;
        // The matrices and this plan's per-matrix work list must fit in memory (a batch of
        // 2^54 empty or 1 x 1 matrices passes the overflow checks but not this one).
        crate::limits::host_bytes(
            offsets.a_len().saturating_add(spec.batch()),
            std::mem::size_of::<T>().max(16),
            "eigh batch exceeds this machine's memory",
        )?;
        let max_n = spec.max_order();
        let threads = self.threads();
        let parallel = threads > 1 && spec.flops() >= PARALLEL_MIN_FLOPS;
        // Per worker: what `Scratch::new` allocates, from the same requirement.
        let req = ScratchReq::new::<T>(max_n, spec.vectors())?;
        crate::limits::host_bytes(
            if parallel { threads } else { 1 },
            req.bytes::<T>()?,
            "eigh scratch exceeds this machine's memory",
        )?;
        let chunk_target = if parallel {
            threads * CHUNKS_PER_THREAD
        } else {
            1
        };
        let workers = if parallel { threads } else { 1 };
        let units = work_units(spec, LANES);
        let scratch: Vec<Scratch<T>> = (0..workers).map(|_| Scratch::new(&req)).collect();
        let scratch_bytes = scratch.iter().map(Scratch::bytes).sum();
        let scratch = PerWorker::new(scratch);
        if max_n >= FAER_MIN_ORDER {
            let warm = |_, worker| {
                // SAFETY: `run_on_each_thread` gives each worker id to exactly one thread.
                warm_up(max_n, spec.vectors(), unsafe { scratch.get(worker) });
            };
            if parallel {
                self.pool.run_on_each_thread(&warm);
            } else {
                warm(0, 0);
            }
        }
        Ok(CpuEighPlan {
            owner: self.id,
            vectors: spec.vectors(),
            batch: spec.batch(),
            offsets,
            chunk_starts: balanced_chunks(spec, &units, chunk_target),
            units,
            parallel,
            scratch,
            scratch_bytes,
            info: vec![EIGH_SOLVED; spec.batch()],
        })
    }

    fn eigh(
        &self,
        plan: &mut CpuEighPlan<T>,
        a: &Vec<T>,
        w: &mut Vec<T>,
        v: Option<&mut Vec<T>>,
    ) -> Result<()> {
        self.eigh_slices(plan, a, w, v.map(|v| v.as_mut_slice()))
    }

    fn eigh_on(
        &self,
        queue: &CpuQueue,
        plan: &mut CpuEighPlan<T>,
        a: &Vec<T>,
        w: &mut Vec<T>,
        v: Option<&mut Vec<T>>,
    ) -> Result<()> {
        let workers = plan.parallel.then(|| plan.scratch.len());
        self.on_queue(queue, workers)?
            .eigh_slices(plan, a, w, v.map(|v| v.as_mut_slice()))
    }

    fn eigh_host(
        &self,
        plan: &mut CpuEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        self.eigh_slices(plan, a, w, v)
    }

    fn eigh_info(&self, plan: &mut CpuEighPlan<T>, info: &mut [i32]) -> Result<()> {
        if plan.owner != self.id {
            return Err(Error::PlanMismatch(
                "the plan was made by another backend instance",
            ));
        }
        check_len("info", plan.info.len(), info.len())?;
        info.copy_from_slice(&plan.info);
        Ok(())
    }
}

impl<T> PlanFootprint for CpuEighPlan<T> {
    /// One scratch arena per worker thread (one when the batch runs on the calling thread
    /// alone), each sized for the batch's largest order: the work matrices, faer's workspace
    /// from order 48, and the lane-group arrays up to order 32; and the per-matrix status
    /// (4 bytes a matrix).
    fn scratch_bytes(&self) -> usize {
        self.scratch_bytes + 4 * self.info.len()
    }

    /// Always 0: the CPU has no device memory.
    fn device_bytes(&self) -> usize {
        0
    }
}
