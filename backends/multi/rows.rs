//! Row reductions on [`Multi`]: the rows split evenly over the devices, each device's column
//! partials combined on the host in device order (deterministic, rounded otherwise than on one
//! device).
//!
//! `Sum` and `Mean` add the devices' column sums (then divide by the row count once); `Max`
//! takes the NaN-propagating maximum; `WeightedMean` (the tree search's average over sampled
//! worlds) takes each device's weighted mean `m_k` and weight sum `W_k` and forms
//! `sum_k W_k m_k / sum_k W_k`. A part whose weights sum to 0 contributes 0 to a column unless
//! that column of its rows holds a non-finite value (found by its plain column sums), which
//! makes the column NaN, as one device's `0 * NaN` would.

use std::ops::Range;

use num_traits::Float;

use crate::backends::cpu::pool::DisjointMut;
use crate::backends::cpu::reduce::pairwise::max_nan;
use crate::{Backend, Real, ReduceOp, ReduceSpec, Reducer, Reducible, Result, RowReduceOp};

use super::{Multi, MultiBuffer, MultiQueue};

/// One device's pieces of a row reduction.
pub(super) struct RowPart<B: Reducer<T>, T: Reducible> {
    /// Rows of the whole matrix.
    rows: Range<usize>,
    /// Its plan of the rows (`Sum` for `Mean`).
    main: B::ReducePlan,
    /// `WeightedMean`: the plan of its weight sum and of its plain column sums.
    weighted: Option<(B::ReducePlan, B::ReducePlan)>,
    /// Host partials.
    host: Partials<Vec<T::Acc>, [T::Acc; 1]>,
    /// Device partials, the same three.
    device: Partials<B::Buffer<T::Acc>, B::Buffer<T::Acc>>,
}

/// A part's partials: its main result and its plain column sums (`cols` each), and its
/// weight sum.
struct Partials<C, W> {
    main: C,
    plain: C,
    weight: W,
}

/// A row reduction's parts and the combined columns.
pub(super) struct RowPlans<B: Reducer<T>, T: Reducible> {
    op: RowReduceOp,
    rows: usize,
    cols: usize,
    parts: Vec<RowPart<B, T>>,
    combined: Vec<T::Acc>,
}

impl<B: Reducer<T>, T: Reducible> RowPlans<B, T> {
    /// The element ranges of `x` per device, and of `y` (weights, one per row).
    pub(super) fn x_ranges(&self) -> Vec<Range<usize>> {
        self.parts
            .iter()
            .map(|p| p.rows.start * self.cols..p.rows.end * self.cols)
            .collect()
    }

    pub(super) fn y_ranges(&self) -> Vec<Range<usize>> {
        self.parts.iter().map(|p| p.rows.clone()).collect()
    }

    /// Host bytes of the partials.
    pub(super) fn host_bytes(&self) -> usize {
        let per = std::mem::size_of::<T::Acc>();
        (self.parts.len() * (2 * self.cols + 1) + self.cols) * per
    }

    /// The devices' plans.
    pub(super) fn plans(&self) -> impl Iterator<Item = &B::ReducePlan> {
        self.parts.iter().flat_map(|p| {
            std::iter::once(&p.main).chain(p.weighted.iter().flat_map(|(a, b)| [a, b]))
        })
    }
}

/// Plans a row reduction of `rows` x `cols` over `multi`'s devices.
pub(super) fn plan<B: Reducer<T>, T: Reducible>(
    multi: &Multi<B>,
    op: RowReduceOp,
    rows: usize,
    cols: usize,
) -> Result<RowPlans<B, T>> {
    let ranges = super::reduce::even_ranges(rows, multi.devices.len());
    let main_op = if op == RowReduceOp::Mean {
        RowReduceOp::Sum
    } else {
        op
    };
    let parts = ranges
        .into_iter()
        .zip(multi.devices.iter())
        .map(|(r, d)| {
            let n = r.len();
            let main = d.plan_reduce(&ReduceSpec::Rows {
                op: main_op,
                rows: n,
                cols,
            })?;
            let weighted = if op == RowReduceOp::WeightedMean {
                Some((
                    d.plan_reduce(&ReduceSpec::Full {
                        op: ReduceOp::Sum,
                        len: n,
                    })?,
                    d.plan_reduce(&ReduceSpec::Rows {
                        op: RowReduceOp::Sum,
                        rows: n,
                        cols,
                    })?,
                ))
            } else {
                None
            };
            let zero = T::Acc::of(0.0);
            Ok(RowPart {
                rows: r,
                main,
                weighted,
                host: Partials {
                    main: vec![zero; cols],
                    plain: vec![zero; cols],
                    weight: [zero],
                },
                device: Partials {
                    main: d.alloc::<T::Acc>(cols)?,
                    plain: d.alloc::<T::Acc>(cols)?,
                    weight: d.alloc::<T::Acc>(1)?,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RowPlans {
        op,
        rows,
        cols,
        parts,
        combined: vec![T::Acc::of(0.0); cols],
    })
}

/// The columns from the devices' partials, in device order, into `plans.combined`.
fn combine<B: Reducer<T>, T: Reducible>(plans: &mut RowPlans<B, T>) {
    let zero = T::Acc::of(0.0);
    for c in 0..plans.cols {
        let parts = plans.parts.iter().map(|p| &p.host);
        plans.combined[c] = match plans.op {
            RowReduceOp::Max => parts.fold(T::Acc::neg_infinity(), |m, h| max_nan(m, h.main[c])),
            RowReduceOp::WeightedMean => {
                let (mut sum, mut weight) = (zero, zero);
                for h in parts {
                    let w = h.weight[0];
                    if w != zero {
                        sum += w * h.main[c];
                    } else if !h.plain[c].is_finite() {
                        sum = T::Acc::nan();
                    }
                    weight += w;
                }
                sum / weight
            }
            RowReduceOp::Mean => {
                parts.fold(zero, |s, h| s + h.main[c]) / T::Acc::of(plans.rows as f64)
            }
            _ => parts.fold(zero, |s, h| s + h.main[c]),
        };
    }
}

impl<B: Backend> Multi<B> {
    /// A row reduction on host slices.
    pub(super) fn rows_host<T: Reducible>(
        &self,
        plans: &mut RowPlans<B, T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()>
    where
        B: Reducer<T>,
    {
        let cols = plans.cols;
        let parts = DisjointMut::new(&mut plans.parts[..]);
        self.each_device(&|k| {
            // SAFETY: each device index runs once.
            let part = unsafe { &mut parts.range(k, 1)[0] };
            if part.rows.is_empty() {
                return Ok(());
            }
            let device = &self.devices[k];
            let xk = &x[part.rows.start * cols..part.rows.end * cols];
            let yk = y.map(|y| &y[part.rows.clone()]);
            device.reduce_host(&mut part.main, xk, yk, &mut part.host.main)?;
            if let (Some((w_sum, plain)), Some(yk)) = (&mut part.weighted, yk) {
                device.reduce_host(w_sum, yk, None, &mut part.host.weight)?;
                device.reduce_host(plain, xk, None, &mut part.host.plain)?;
            }
            Ok(())
        })?;
        self.finish_rows(plans);
        out.copy_from_slice(&plans.combined);
        Ok(())
    }

    /// A row reduction on device buffers split by the plan (checked by the caller): each
    /// device's partials read back, combined, and the columns uploaded into `out`.
    pub(super) fn rows_device<T: Reducible>(
        &self,
        queue: Option<&MultiQueue<B::Queue>>,
        plans: &mut RowPlans<B, T>,
        x: &MultiBuffer<B, T>,
        y: Option<&MultiBuffer<B, T>>,
        out: &mut MultiBuffer<B, T::Acc>,
    ) -> Result<()>
    where
        B: Reducer<T>,
    {
        let parts = DisjointMut::new(&mut plans.parts[..]);
        self.each_device(&|k| {
            // SAFETY: each device index runs once.
            let part = unsafe { &mut parts.range(k, 1)[0] };
            if part.rows.is_empty() {
                return Ok(());
            }
            let device = &self.devices[k];
            let xk = &x.parts()[k].1;
            let yk = y.map(|y| &y.parts()[k].1);
            let call = |p: &mut B::ReducePlan, x, y, o: &mut B::Buffer<T::Acc>| {
                self.reduce_device(k, queue, p, x, y, o)
            };
            let out = &mut part.device;
            call(&mut part.main, xk, yk, &mut out.main)?;
            device.download(&out.main, &mut part.host.main)?;
            if let (Some((w_sum, plain)), Some(yk)) = (&mut part.weighted, yk) {
                call(w_sum, yk, None, &mut out.weight)?;
                call(plain, xk, None, &mut out.plain)?;
                device.download(&out.weight, &mut part.host.weight)?;
                device.download(&out.plain, &mut part.host.plain)?;
            }
            Ok(())
        })?;
        self.finish_rows(plans);
        self.upload(&plans.combined, out)
    }

    /// Sets empty parts' partials to their identities, then combines.
    fn finish_rows<T: Reducible>(&self, plans: &mut RowPlans<B, T>)
    where
        B: Reducer<T>,
    {
        let identity = if plans.op == RowReduceOp::Max {
            T::Acc::neg_infinity()
        } else {
            T::Acc::of(0.0)
        };
        for part in plans.parts.iter_mut().filter(|p| p.rows.is_empty()) {
            part.host.main.fill(identity);
            part.host.plain.fill(T::Acc::of(0.0));
            part.host.weight = [T::Acc::of(0.0)];
        }
        combine(plans);
    }
}
