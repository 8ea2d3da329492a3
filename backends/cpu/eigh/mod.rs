//! `BatchedEigh` on the CPU: validate every matrix, then decompose the batch in balanced
//! chunks across the worker pool, each thread with its own scratch.

mod faer_evd;
mod solve;
mod tridiag_ql;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::pool::{DisjointMut, PerWorker};
use super::{check_len, Cpu};
use crate::{BatchedEigh, EighOffsets, EighSpec, Error, Real, Result};
use solve::{lower_max_abs, solve, warm_up, Scratch, FAER_MIN_ORDER};

/// Batches whose estimated work is below this many flops run on the calling thread alone:
/// waking the workers costs more than it saves.
const PARALLEL_MIN_FLOPS: f64 = 2.0e5;
/// Chunks per thread: enough for dynamic load balancing over uneven ragged batches.
const CHUNKS_PER_THREAD: usize = 8;

/// A CPU eigh plan: the batch's offsets, chunk boundaries balanced by work, and one scratch
/// arena per thread sized for the largest matrix.
pub struct CpuEighPlan<T> {
    owner: u64,
    vectors: bool,
    batch: usize,
    offsets: EighOffsets,
    chunk_starts: Vec<usize>,
    parallel: bool,
    scratch: PerWorker<Scratch<T>>,
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

/// Splits `0..batch` into at most `chunks` contiguous ranges of about equal work.
fn balanced_chunks(spec: &EighSpec, chunks: usize) -> Vec<usize> {
    // Work of one matrix, up to a constant: n^3 for the decomposition, +1 for the call itself.
    let weight = |i: usize| (spec.order(i) as f64).powi(3) + 1.0;
    let batch = spec.batch();
    let total: f64 = (0..batch).map(weight).sum();
    let per_chunk = total / chunks.max(1) as f64;
    let mut starts = vec![0];
    let mut acc = 0.0;
    for i in 0..batch {
        acc += weight(i);
        if acc >= per_chunk && i + 1 < batch {
            starts.push(i + 1);
            acc = 0.0;
        }
    }
    starts.push(batch);
    starts.dedup();
    starts
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
        if plan.vectors != v.is_some() {
            return Err(Error::PlanMismatch(if plan.vectors {
                "the plan computes eigenvectors but no `v` buffer was given"
            } else {
                "`v` was given but the plan was made without eigenvectors"
            }));
        }
        let offsets = &plan.offsets;
        check_len("a", offsets.a_len(), a.len())?;
        check_len("w", offsets.w_len(), w.len())?;
        if let Some(v) = v.as_deref() {
            check_len("v", offsets.a_len(), v.len())?;
        }
        let chunks = plan.chunk_starts.len() - 1;
        let starts = &plan.chunk_starts;
        let run = |task: &(dyn Fn(usize, usize) + Sync)| {
            if plan.parallel {
                self.pool.run(chunks, task);
            } else {
                (0..chunks).for_each(|c| task(c, 0));
            }
        };

        // Pass 1: every matrix finite, before any output is written.
        let first_bad = AtomicUsize::new(usize::MAX);
        run(&|c, _| {
            for i in starts[c]..starts[c + 1] {
                let slot = offsets.slot(i);
                let m = &a[slot.a_start..slot.a_start + slot.n * slot.n];
                if lower_max_abs(m, slot.n).is_none() {
                    first_bad.fetch_min(i, Ordering::Relaxed);
                    return;
                }
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
            for i in starts[c]..starts[c + 1] {
                let slot = offsets.slot(i);
                let nn = slot.n * slot.n;
                // SAFETY: matrices occupy disjoint ranges of `w` and `v` (offsets are prefix
                // sums of n and n^2), and each matrix index is visited by exactly one task.
                let wi = unsafe { w_out.range(slot.w_start, slot.n) };
                let vi = v_out.as_ref().map(|v| unsafe { v.range(slot.a_start, nn) });
                let ai = &a[slot.a_start..slot.a_start + nn];
                if solve(ai, slot.n, wi, vi, s).is_err() {
                    failed.fetch_min(i, Ordering::Relaxed);
                }
            }
        });
        match failed.load(Ordering::Relaxed) {
            usize::MAX => Ok(()),
            matrix => Err(Error::NoConvergence { matrix }),
        }
    }
}

impl<T: Real> BatchedEigh<T> for Cpu {
    type EighPlan = CpuEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<CpuEighPlan<T>> {
        let offsets = spec.offsets(std::mem::size_of::<T>())?;
        let max_n = spec.max_order();
        max_n
            .checked_mul(max_n)
            .and_then(|nn| nn.checked_mul(2 * std::mem::size_of::<T>()))
            .ok_or(Error::TooLarge("eigh scratch size overflows usize"))?;
        let threads = self.threads();
        let parallel = threads > 1 && spec.flops() >= PARALLEL_MIN_FLOPS;
        let chunk_target = if parallel {
            threads * CHUNKS_PER_THREAD
        } else {
            1
        };
        let workers = if parallel { threads } else { 1 };
        let scratch = PerWorker::new((0..workers).map(|_| Scratch::new(max_n, spec.vectors())));
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
            chunk_starts: balanced_chunks(spec, chunk_target),
            parallel,
            scratch,
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

    fn eigh_host(
        &self,
        plan: &mut CpuEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        self.eigh_slices(plan, a, w, v)
    }
}
