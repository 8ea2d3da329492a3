//! `Reducer` on the CPU: fixed-size tasks on the worker pool write partial results into the
//! plan's buffer; the caller combines them pairwise in a fixed order.

pub(crate) mod pairwise;

use std::marker::PhantomData;

use num_traits::{Float, Zero};

use super::partition::balanced_starts;
use super::pool::DisjointMut;
use super::{Cpu, CpuQueue};
use crate::{
    Error, PlanFootprint, Real, ReduceOp, ReduceShape, ReduceSpec, Reducer, Reducible, Result,
    RowReduceOp, SegmentReduceOp,
};
use pairwise::{extremum, max_nan, min_nan, pairwise, tree_rows, BLOCK};

/// Elements per task of a whole-array reduction. Fixed, so the summation tree depends on the
/// length alone.
const CHUNK: usize = 4096;
/// Columns per task of a row reduction.
const COL_CHUNK: usize = 4096;
/// A reduction runs on the pool only with at least this many input elements per thread:
/// below it, waking the workers costs more than they save (measured on 16 threads at 10^5
/// elements: 8.3 GB/s on the pool against 18.7 GB/s on one thread; docs/benchmarks/cpu-reduce.md).
const PARALLEL_MIN_ELEMENTS_PER_THREAD: usize = 1 << 15;
/// Segment tasks per thread, for load balance over uneven segments.
const SEGMENT_TASKS_PER_THREAD: usize = 8;

/// A CPU reduction plan: the validated spec and the partial-result buffer.
pub struct CpuReducePlan<T: Reducible> {
    owner: u64,
    spec: ReduceSpec,
    shape: ReduceShape,
    partials: Vec<T::Acc>,
    segment_tasks: Vec<usize>,
    parallel: bool,
    _input: PhantomData<fn(T)>,
}

impl<T: Reducible> std::fmt::Debug for CpuReducePlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuReducePlan")
            .field("spec", &self.spec)
            .field("parallel", &self.parallel)
            .finish()
    }
}

fn of_count<A: Real>(n: usize) -> A {
    A::of(n as f64)
}

/// Splits segments into about `tasks` contiguous ranges of equal length (+1 per segment).
fn segment_tasks(offsets: &[usize], tasks: usize) -> Vec<usize> {
    balanced_starts(offsets.len() - 1, tasks, |s| {
        (offsets[s + 1] - offsets[s] + 1) as f64
    })
}

impl Cpu {
    fn run_tasks(&self, parallel: bool, tasks: usize, task: &(dyn Fn(usize, usize) + Sync)) {
        if parallel {
            self.pool.run(tasks, task);
        } else {
            (0..tasks).for_each(|t| task(t, 0));
        }
    }

    fn reduce_slices<T: Reducible>(
        &self,
        plan: &mut CpuReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        if plan.owner != self.id {
            return Err(Error::PlanMismatch(
                "the plan was made by another backend instance",
            ));
        }
        plan.shape.check(x.len(), y.map(<[T]>::len), out.len())?;
        match &plan.spec {
            &ReduceSpec::Full { op, len } => out[0] = self.reduce_full(plan, op, len, x, y),
            &ReduceSpec::Rows { op, rows, cols } => {
                self.reduce_rows(plan, op, rows, cols, x, y, out)
            }
            ReduceSpec::Segments { op, offsets } => {
                self.reduce_segments(plan, *op, offsets, x, y, out)
            }
        }
        Ok(())
    }

    fn reduce_full<T: Reducible>(
        &self,
        plan: &mut CpuReducePlan<T>,
        op: ReduceOp,
        len: usize,
        x: &[T],
        y: Option<&[T]>,
    ) -> T::Acc {
        let zero = T::Acc::zero();
        let inf = T::Acc::infinity();
        let tasks = len.div_ceil(CHUNK);
        let relative = op == ReduceOp::MaxRelDiff;
        let partials = &mut plan.partials[..tasks * (1 + usize::from(relative))];
        {
            let p = DisjointMut::new(partials);
            let y = y.unwrap_or(&[]);
            self.run_tasks(plan.parallel, tasks, &|c, _| {
                let (lo, hi) = (c * CHUNK, (c * CHUNK + CHUNK).min(len));
                let xw = |i: usize| x[i].widen();
                let diff = |i: usize| (x[i].widen() - y[i].widen()).abs();
                let value = match op {
                    ReduceOp::Sum | ReduceOp::Mean => pairwise(lo, hi, &xw),
                    ReduceOp::Dot => pairwise(lo, hi, &|i| x[i].widen() * y[i].widen()),
                    ReduceOp::Min => extremum(lo, hi, inf, min_nan, &xw),
                    ReduceOp::Max => extremum(lo, hi, -inf, max_nan, &xw),
                    ReduceOp::MaxAbs => extremum(lo, hi, zero, max_nan, &|i| x[i].widen().abs()),
                    ReduceOp::MaxAbsDiff | ReduceOp::MaxRelDiff => {
                        extremum(lo, hi, zero, max_nan, &diff)
                    }
                };
                // SAFETY: task `c` alone writes partials `c` and `tasks + c`.
                unsafe { p.range(c, 1)[0] = value };
                if relative {
                    let scale = extremum(lo, hi, zero, max_nan, &|i| y[i].widen().abs());
                    // SAFETY: as above, partial `tasks + c` belongs to task `c` alone.
                    unsafe { p.range(tasks + c, 1)[0] = scale };
                }
            });
        }
        let add = |a: T::Acc, b: T::Acc| a + b;
        let (head, tail) = plan.partials[..tasks * (1 + usize::from(relative))].split_at_mut(tasks);
        let tree = |p: &mut [T::Acc], f: &dyn Fn(T::Acc, T::Acc) -> T::Acc, identity: T::Acc| {
            tree_rows(p, 1, f).map_or(identity, |r| r[0])
        };
        match op {
            ReduceOp::Sum | ReduceOp::Dot => tree(head, &add, zero),
            ReduceOp::Mean => tree(head, &add, zero) / of_count::<T::Acc>(len),
            ReduceOp::Min => tree(head, &min_nan, inf),
            ReduceOp::Max => tree(head, &max_nan, -inf),
            ReduceOp::MaxAbs | ReduceOp::MaxAbsDiff => tree(head, &max_nan, zero),
            ReduceOp::MaxRelDiff => {
                let num = tree(head, &max_nan, zero);
                let den = tree(tail, &max_nan, zero);
                num / max_nan(den, T::Acc::SAFE_MIN)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reduce_rows<T: Reducible>(
        &self,
        plan: &mut CpuReducePlan<T>,
        op: RowReduceOp,
        rows: usize,
        cols: usize,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) {
        let zero = T::Acc::zero();
        let weighted = op == RowReduceOp::WeightedMean;
        let width = cols + usize::from(weighted);
        let blocks = rows.div_ceil(BLOCK);
        let col_tasks = cols.div_ceil(COL_CHUNK).max(usize::from(weighted));
        let identity = if op == RowReduceOp::Max {
            -T::Acc::infinity()
        } else {
            zero
        };
        let partials = &mut plan.partials[..blocks * width];
        {
            let p = DisjointMut::new(partials);
            let w = y.unwrap_or(&[]);
            // Each task: up to BLOCK rows (summed in row order) of up to COL_CHUNK columns.
            self.run_tasks(plan.parallel, blocks * col_tasks, &|t, _| {
                let (b, cc) = (t / col_tasks, t % col_tasks);
                let (r0, r1) = (b * BLOCK, (b * BLOCK + BLOCK).min(rows));
                let (c0, c1) = (
                    (cc * COL_CHUNK).min(cols),
                    (cc * COL_CHUNK + COL_CHUNK).min(cols),
                );
                // SAFETY: tasks write disjoint (block, column range) cells; the weight-sum cell
                // of block b is written only by its column task 0.
                let dst = unsafe { p.range(b * width + c0, c1 - c0) };
                dst.fill(identity);
                for r in r0..r1 {
                    let row = &x[r * cols + c0..r * cols + c1];
                    match op {
                        RowReduceOp::Sum | RowReduceOp::Mean => {
                            for (d, v) in dst.iter_mut().zip(row) {
                                *d += v.widen();
                            }
                        }
                        RowReduceOp::WeightedMean => {
                            let wr = w[r].widen();
                            for (d, v) in dst.iter_mut().zip(row) {
                                *d += wr * v.widen();
                            }
                        }
                        RowReduceOp::Max => {
                            for (d, v) in dst.iter_mut().zip(row) {
                                *d = max_nan(*d, v.widen());
                            }
                        }
                    }
                }
                if weighted && cc == 0 {
                    // SAFETY: the weight-sum cell of block `b` is written by its column task 0 only.
                    let total = unsafe { p.range(b * width + cols, 1) };
                    total[0] = (r0..r1).fold(zero, |s, r| s + w[r].widen());
                }
            });
        }
        let combined = if op == RowReduceOp::Max {
            tree_rows(&mut plan.partials[..blocks * width], width, max_nan)
        } else {
            tree_rows(&mut plan.partials[..blocks * width], width, |a, b| a + b)
        };
        match combined {
            None => out.fill(match op {
                RowReduceOp::Sum => zero,
                RowReduceOp::Mean | RowReduceOp::WeightedMean => T::Acc::nan(),
                RowReduceOp::Max => -T::Acc::infinity(),
            }),
            Some(r) => match op {
                RowReduceOp::Sum | RowReduceOp::Max => out.copy_from_slice(&r[..cols]),
                RowReduceOp::Mean => {
                    for (o, &s) in out.iter_mut().zip(r) {
                        *o = s / of_count::<T::Acc>(rows);
                    }
                }
                RowReduceOp::WeightedMean => {
                    for (o, &s) in out.iter_mut().zip(r) {
                        *o = s / r[cols];
                    }
                }
            },
        }
    }

    fn reduce_segments<T: Reducible>(
        &self,
        plan: &CpuReducePlan<T>,
        op: SegmentReduceOp,
        offsets: &[usize],
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) {
        let inf = T::Acc::infinity();
        let starts = &plan.segment_tasks;
        let o = DisjointMut::new(out);
        let y = y.unwrap_or(&[]);
        self.run_tasks(plan.parallel, starts.len().saturating_sub(1), &|t, _| {
            for s in starts[t]..starts[t + 1] {
                let (lo, hi) = (offsets[s], offsets[s + 1]);
                let xw = |i: usize| x[i].widen();
                let value = match op {
                    SegmentReduceOp::Sum => pairwise(lo, hi, &xw),
                    SegmentReduceOp::Mean => pairwise(lo, hi, &xw) / of_count::<T::Acc>(hi - lo),
                    SegmentReduceOp::Max => extremum(lo, hi, -inf, max_nan, &xw),
                    SegmentReduceOp::Min => extremum(lo, hi, inf, min_nan, &xw),
                    SegmentReduceOp::Dot => pairwise(lo, hi, &|i| x[i].widen() * y[i].widen()),
                };
                // SAFETY: each segment index belongs to exactly one task.
                unsafe { o.range(s, 1)[0] = value };
            }
        });
    }
}

impl<T: Reducible> Reducer<T> for Cpu {
    type ReducePlan = CpuReducePlan<T>;

    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<CpuReducePlan<T>> {
        let shape = spec.shape()?;
        // An input that cannot exist in this machine's memory can never be passed: refuse the
        // plan before sizing partials by it.
        crate::limits::host_bytes(
            shape.x_len,
            std::mem::size_of::<T>(),
            "reduction input exceeds this machine's memory",
        )?;
        let parallel =
            self.threads() > 1 && shape.x_len >= PARALLEL_MIN_ELEMENTS_PER_THREAD * self.threads();
        let partials_len = match spec {
            ReduceSpec::Full { op, len } => {
                len.div_ceil(CHUNK) * if *op == ReduceOp::MaxRelDiff { 2 } else { 1 }
            }
            ReduceSpec::Rows { op, rows, cols } => {
                let width = cols + usize::from(*op == RowReduceOp::WeightedMean);
                rows.div_ceil(BLOCK)
                    .checked_mul(width)
                    .ok_or(Error::TooLarge("row-reduction partials overflow usize"))?
            }
            ReduceSpec::Segments { .. } => 0,
        };
        let segment_tasks = match spec {
            ReduceSpec::Segments { offsets, .. } => {
                let tasks = if parallel {
                    self.threads() * SEGMENT_TASKS_PER_THREAD
                } else {
                    1
                };
                segment_tasks(offsets, tasks)
            }
            _ => Vec::new(),
        };
        crate::limits::host_bytes(
            partials_len,
            std::mem::size_of::<T::Acc>(),
            "reduction partials exceed this machine's memory",
        )?;
        let mut partials = Vec::new();
        partials
            .try_reserve_exact(partials_len)
            .map_err(|_| Error::TooLarge("reduction partials refused by the allocator"))?;
        partials.resize(partials_len, T::Acc::zero());
        Ok(CpuReducePlan {
            owner: self.id,
            spec: spec.clone(),
            shape,
            partials,
            segment_tasks,
            parallel,
            _input: PhantomData,
        })
    }

    fn reduce(
        &self,
        plan: &mut CpuReducePlan<T>,
        x: &Vec<T>,
        y: Option<&Vec<T>>,
        out: &mut Vec<T::Acc>,
    ) -> Result<()> {
        self.reduce_slices(plan, x, y.map(|y| y.as_slice()), out)
    }

    fn reduce_on(
        &self,
        queue: &CpuQueue,
        plan: &mut CpuReducePlan<T>,
        x: &Vec<T>,
        y: Option<&Vec<T>>,
        out: &mut Vec<T::Acc>,
    ) -> Result<()> {
        // Partial results are per task, not per thread: any pool serves.
        self.on_queue(queue, None)?
            .reduce_slices(plan, x, y.map(|y| y.as_slice()), out)
    }

    fn reduce_host(
        &self,
        plan: &mut CpuReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        self.reduce_slices(plan, x, y, out)
    }
}

impl<T: Reducible> PlanFootprint for CpuReducePlan<T> {
    /// The partial results, in `T::Acc`: one per 4096-element task of a whole-array reduction
    /// (two for `MaxRelDiff`), one row of `cols` (+1 for `WeightedMean`) per 128-row block of
    /// a row reduction, none for segments.
    fn scratch_bytes(&self) -> usize {
        self.partials.len() * std::mem::size_of::<T::Acc>()
    }

    /// Always 0: the CPU has no device memory.
    fn device_bytes(&self) -> usize {
        0
    }
}
