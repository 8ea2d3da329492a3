//! `Reducer` on [`Multi`]: whole-array reductions split evenly by elements, each device's
//! partial combined on the host in device order (deterministic: the same split and order on
//! every call); segment reductions split by whole segments of about equal length, each device
//! writing its segments' results; row reductions split by rows (`rows.rs`).

use std::ops::Range;

use crate::backends::cpu::pool::DisjointMut;
use crate::backends::cpu::reduce::pairwise::{max_nan, min_nan};
use crate::{
    Backend, Error, PlanFootprint, Real, ReduceOp, ReduceShape, ReduceSpec, Reducer, Reducible,
    Result,
};

use super::{Multi, MultiBuffer, MultiQueue};

/// A plan of [`Multi`]: each device's part of the operands, its own plan of the part, and for
/// whole-array reductions the per-device partial results (host values and one-element device
/// buffers), all made when the plan is made.
///
/// Whole-array (`Full`) reductions take `x` and `y` split as [`Backend::alloc`] splits them
/// (evenly by element count, [`MultiReducePlan::x_parts`]); the partials are read back one
/// value per device and combined in device order, so a device call waits for the devices and
/// writes the result into whichever part of `out` holds element 0. The result is
/// deterministic, but its rounding differs from one device's (another summation tree), and a
/// NaN anywhere makes it NaN as on one device. `Mean` sums per device and divides once;
/// `MaxRelDiff` takes each device's max |x - y| and max |y|.
///
/// Segment reductions take `x` (and `y`) split by [`MultiReducePlan::x_parts`] and `out` by
/// [`MultiReducePlan::out_parts`] (see [`Multi::alloc_parts`]); each device computes whole
/// segments, so results equal one device's bit for bit.
///
/// Row reductions take `x` split by [`MultiReducePlan::x_parts`] (whole rows, evenly), the
/// weights `y` of `WeightedMean` by [`MultiReducePlan::y_parts`], and `out` split any way;
/// each device's column partials are read back and combined on the host in device order
/// (see `rows.rs` for `WeightedMean`).
pub struct MultiReducePlan<B: Reducer<T>, T: Reducible> {
    owner: u64,
    shape: ReduceShape,
    full: Option<ReduceOp>,
    x_parts: Vec<Range<usize>>,
    out_parts: Vec<Range<usize>>,
    plans: Vec<B::ReducePlan>,
    /// `MaxRelDiff`: each device's max |y| plan.
    y_max: Vec<B::ReducePlan>,
    /// Whole-array reductions: two partials per device (the second for `MaxRelDiff`).
    partials: Vec<[T::Acc; 2]>,
    device_partials: Vec<[B::Buffer<T::Acc>; 2]>,
    /// Row reductions' own parts.
    rows: Option<super::rows::RowPlans<B, T>>,
}

impl<B: Reducer<T>, T: Reducible> std::fmt::Debug for MultiReducePlan<B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiReducePlan")
            .field("x_parts", &self.x_parts)
            .finish()
    }
}

impl<B: Reducer<T>, T: Reducible> MultiReducePlan<B, T> {
    /// Each device's element range of `x` (and `y`).
    pub fn x_parts(&self) -> &[Range<usize>] {
        &self.x_parts
    }

    /// Each device's element range of `y`: as [`MultiReducePlan::x_parts`], except the
    /// weights of a row reduction (one per row).
    pub fn y_parts(&self) -> Vec<Range<usize>> {
        match &self.rows {
            Some(rows) => rows.y_ranges(),
            None => self.x_parts.clone(),
        }
    }

    /// Each device's element range of `out` (whole-array reductions: the one value, with
    /// device 0; row reductions: an even split, though any split is taken).
    pub fn out_parts(&self) -> &[Range<usize>] {
        &self.out_parts
    }
}

impl<B: Reducer<T>, T: Reducible> PlanFootprint for MultiReducePlan<B, T> {
    /// The devices' plans' host bytes and the host partials.
    fn scratch_bytes(&self) -> usize {
        let plans: usize = self
            .plans
            .iter()
            .chain(&self.y_max)
            .chain(self.rows.iter().flat_map(|r| r.plans()))
            .map(PlanFootprint::scratch_bytes)
            .sum();
        plans
            + std::mem::size_of_val(&self.partials[..])
            + self.rows.as_ref().map_or(0, |r| r.host_bytes())
    }

    /// The devices' plans' device bytes (the one-element partial buffers are not counted).
    fn device_bytes(&self) -> usize {
        self.plans
            .iter()
            .chain(&self.y_max)
            .chain(self.rows.iter().flat_map(|r| r.plans()))
            .map(PlanFootprint::device_bytes)
            .sum()
    }
}

/// `len` elements split evenly over `count` parts, earlier parts taking the remainder (as
/// [`Backend::alloc`] of [`Multi`] splits buffers).
pub(super) fn even_ranges(len: usize, count: usize) -> Vec<Range<usize>> {
    let (per, extra) = (len / count, len % count);
    let mut start = 0;
    (0..count)
        .map(|k| {
            let r = start..start + per + usize::from(k < extra);
            start = r.end;
            r
        })
        .collect()
}

/// The operation each device runs on its part of a whole-array reduction, and its identity
/// for an empty part.
fn part_op<A: Real>(op: ReduceOp) -> (ReduceOp, A) {
    match op {
        ReduceOp::Mean => (ReduceOp::Sum, A::zero()),
        ReduceOp::MaxRelDiff => (ReduceOp::MaxAbsDiff, A::zero()),
        ReduceOp::Min => (op, A::infinity()),
        ReduceOp::Max => (op, A::neg_infinity()),
        _ => (op, A::zero()),
    }
}

/// The whole array's result from the devices' partials, in device order.
fn combine<A: Real>(op: ReduceOp, len: usize, partials: &[[A; 2]]) -> A {
    let fold = |f: &dyn Fn(A, A) -> A, start: A, j: usize| {
        partials.iter().fold(start, |acc, p| f(acc, p[j]))
    };
    let sum = |a: A, b: A| a + b;
    match op {
        ReduceOp::Sum | ReduceOp::Dot => fold(&sum, A::zero(), 0),
        ReduceOp::Mean => fold(&sum, A::zero(), 0) / A::of(len as f64),
        ReduceOp::Min => fold(&min_nan, A::infinity(), 0),
        ReduceOp::Max => fold(&max_nan, A::neg_infinity(), 0),
        ReduceOp::MaxRelDiff => {
            fold(&max_nan, A::zero(), 0) / max_nan(fold(&max_nan, A::zero(), 1), A::SAFE_MIN)
        }
        _ => fold(&max_nan, A::zero(), 0),
    }
}

impl<B: Backend> Multi<B> {
    /// Runs the plan on each device's operands (`x_k`, `y_k`, `out_k`: device buffers or host
    /// slices, through `run`), then for whole-array reductions combines the partials.
    #[allow(clippy::type_complexity)]
    fn reduce_parts<T: Reducible>(
        &self,
        plan: &mut MultiReducePlan<B, T>,
        run: &(dyn Fn(
            usize,
            &mut B::ReducePlan,
            Option<&mut B::ReducePlan>,
            &mut [T::Acc; 2],
        ) -> Result<()>
              + Sync),
    ) -> Result<Option<T::Acc>>
    where
        B: Reducer<T>,
    {
        let full = plan.full;
        let identity = full.map(|op| part_op::<T::Acc>(op).1);
        let x_parts = &plan.x_parts;
        let plans = DisjointMut::new(&mut plan.plans[..]);
        let y_max = DisjointMut::new(&mut plan.y_max[..]);
        let has_y_max = full == Some(ReduceOp::MaxRelDiff);
        let out_parts = &plan.out_parts;
        let partials = DisjointMut::new(&mut plan.partials[..]);
        self.each_device(&|k| {
            // SAFETY: each device index runs once, so these one-element ranges are disjoint.
            let (p, ym, out) = unsafe {
                (
                    &mut plans.range(k, 1)[0],
                    has_y_max.then(|| &mut y_max.range(k, 1)[0]),
                    &mut partials.range(k, 1)[0],
                )
            };
            if let Some(id) = identity {
                *out = [id, T::Acc::of(0.0)];
                if x_parts[k].is_empty() {
                    return Ok(());
                }
            } else if out_parts[k].is_empty() {
                return Ok(());
            }
            run(k, p, ym, out)
        })?;
        Ok(full.map(|op| combine(op, plan.shape.x_len, &plan.partials)))
    }
}

impl<B: Reducer<T>, T: Reducible> Reducer<T> for Multi<B> {
    type ReducePlan = MultiReducePlan<B, T>;

    /// Splits `spec` over the devices and plans each part there.
    ///
    /// # Errors
    /// As [`ReduceSpec::shape`] and each device's `plan_reduce`.
    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<MultiReducePlan<B, T>> {
        let shape = spec.shape()?;
        let count = self.devices.len();
        let (full, x_parts, out_parts, specs, y_specs) = match spec {
            ReduceSpec::Full { op, len } => {
                let x_parts = even_ranges(*len, count);
                let (part, _) = part_op::<T::Acc>(*op);
                let specs = x_parts
                    .iter()
                    .map(|r| ReduceSpec::Full {
                        op: part,
                        len: r.len(),
                    })
                    .collect::<Vec<_>>();
                let y_specs = if *op == ReduceOp::MaxRelDiff {
                    x_parts
                        .iter()
                        .map(|r| ReduceSpec::Full {
                            op: ReduceOp::MaxAbs,
                            len: r.len(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let mut out_parts = vec![0..0; count];
                out_parts[0] = 0..1;
                (Some(*op), x_parts, out_parts, specs, y_specs)
            }
            ReduceSpec::Segments { op, offsets } => {
                let segments = offsets.len() - 1;
                // Work: each segment's elements plus one (its output).
                let prefix: Vec<f64> = offsets
                    .iter()
                    .enumerate()
                    .map(|(s, &o)| (o + s) as f64)
                    .collect();
                let ends = crate::split::balanced_ends(&prefix, count);
                let mut start = 0;
                let mut x_parts = Vec::with_capacity(count);
                let mut out_parts = Vec::with_capacity(count);
                let mut specs = Vec::with_capacity(count);
                for end in ends {
                    let base = offsets[start];
                    specs.push(ReduceSpec::Segments {
                        op: *op,
                        offsets: offsets[start..=end].iter().map(|o| o - base).collect(),
                    });
                    x_parts.push(base..offsets[end]);
                    out_parts.push(start..end);
                    start = end;
                }
                debug_assert_eq!(start, segments);
                (None, x_parts, out_parts, specs, Vec::new())
            }
            ReduceSpec::Rows { op, rows, cols } => {
                let row_plans = super::rows::plan::<B, T>(self, *op, *rows, *cols)?;
                return Ok(MultiReducePlan {
                    owner: self.id,
                    shape,
                    full: None,
                    x_parts: row_plans.x_ranges(),
                    out_parts: even_ranges(*cols, count),
                    plans: Vec::new(),
                    y_max: Vec::new(),
                    partials: Vec::new(),
                    device_partials: Vec::new(),
                    rows: Some(row_plans),
                });
            }
        };
        let plans = specs
            .iter()
            .zip(self.devices.iter())
            .map(|(s, d)| d.plan_reduce(s))
            .collect::<Result<Vec<_>>>()?;
        let y_max = y_specs
            .iter()
            .zip(self.devices.iter())
            .map(|(s, d)| d.plan_reduce(s))
            .collect::<Result<Vec<_>>>()?;
        let device_partials = if full.is_some() {
            self.devices
                .iter()
                .map(|d| Ok([d.alloc::<T::Acc>(1)?, d.alloc::<T::Acc>(1)?]))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(MultiReducePlan {
            owner: self.id,
            shape,
            full,
            x_parts,
            out_parts,
            plans,
            y_max,
            partials: vec![[T::Acc::of(0.0); 2]; count],
            device_partials,
            rows: None,
        })
    }

    fn reduce(
        &self,
        plan: &mut MultiReducePlan<B, T>,
        x: &MultiBuffer<B, T>,
        y: Option<&MultiBuffer<B, T>>,
        out: &mut MultiBuffer<B, T::Acc>,
    ) -> Result<()> {
        self.reduce_with(None, plan, x, y, out)
    }

    fn reduce_on(
        &self,
        queue: &MultiQueue<B::Queue>,
        plan: &mut MultiReducePlan<B, T>,
        x: &MultiBuffer<B, T>,
        y: Option<&MultiBuffer<B, T>>,
        out: &mut MultiBuffer<B, T::Acc>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.reduce_with(Some(queue), plan, x, y, out)
    }

    fn reduce_host(
        &self,
        plan: &mut MultiReducePlan<B, T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        self.check_owner(plan.owner)?;
        plan.shape.check(x.len(), y.map(<[T]>::len), out.len())?;
        if let Some(rows) = &mut plan.rows {
            return self.rows_host(rows, x, y, out);
        }
        let x_parts = plan.x_parts.clone();
        let out_parts = plan.out_parts.clone();
        let full = plan.full.is_some();
        let outs = DisjointMut::new(&mut *out);
        let result = self.reduce_parts(plan, &|k, p, ym, partial| {
            let r = x_parts[k].clone();
            let (xk, yk) = (&x[r.clone()], y.map(|y| &y[r.clone()]));
            let device = &self.devices[k];
            if full {
                device.reduce_host(p, xk, yk, &mut partial[..1])?;
                if let (Some(ym), Some(yk)) = (ym, yk) {
                    device.reduce_host(ym, yk, None, &mut partial[1..])?;
                }
                Ok(())
            } else {
                let o = &out_parts[k];
                // SAFETY: the devices' output ranges are disjoint.
                let ok = unsafe { outs.range(o.start, o.len()) };
                device.reduce_host(p, xk, yk, ok)
            }
        })?;
        if let Some(value) = result {
            out[0] = value;
        }
        Ok(())
    }
}

impl<B: Backend> Multi<B> {
    /// Device `k`'s `reduce`, on `queue`'s `k`-th queue when one is given.
    pub(super) fn reduce_device<T: Reducible>(
        &self,
        k: usize,
        queue: Option<&MultiQueue<B::Queue>>,
        plan: &mut B::ReducePlan,
        x: &B::Buffer<T>,
        y: Option<&B::Buffer<T>>,
        out: &mut B::Buffer<T::Acc>,
    ) -> Result<()>
    where
        B: Reducer<T>,
    {
        match queue {
            Some(q) => self.devices[k].reduce_on(q.device(k), plan, x, y, out),
            None => self.devices[k].reduce(plan, x, y, out),
        }
    }

    /// The device-buffer call, on each device's plan queue or on `queue`'s.
    fn reduce_with<T: Reducible>(
        &self,
        queue: Option<&MultiQueue<B::Queue>>,
        plan: &mut MultiReducePlan<B, T>,
        x: &MultiBuffer<B, T>,
        y: Option<&MultiBuffer<B, T>>,
        out: &mut MultiBuffer<B, T::Acc>,
    ) -> Result<()>
    where
        B: Reducer<T>,
    {
        self.check_owner(plan.owner)?;
        plan.shape
            .check(x.len(), y.map(MultiBuffer::len), out.len())?;
        let split_ok = x.split_is(plan.x_parts.iter().cloned())
            && y.is_none_or(|y| y.split_is(plan.y_parts().into_iter()))
            && (plan.full.is_some()
                || plan.rows.is_some()
                || out.split_is(plan.out_parts.iter().cloned()));
        if !split_ok {
            return Err(Error::PlanMismatch(
                "Multi reduce: buffers split otherwise than the plan's parts (allocate x with \
                 Multi::alloc_parts over plan.x_parts(), y over plan.y_parts(), out over \
                 plan.out_parts())",
            ));
        }
        if let Some(rows) = &mut plan.rows {
            return self.rows_device(queue, rows, x, y, out);
        }
        let full = plan.full.is_some();
        // Out of the plan while its parts run (no allocation: an empty Vec takes its place).
        let mut own_partials = std::mem::take(&mut plan.device_partials);
        let device_partials = DisjointMut::new(&mut own_partials[..]);
        let outs = DisjointMut::new(out.parts_mut());
        let result = self.reduce_parts(plan, &|k, p, ym, partial| {
            let device = &self.devices[k];
            let xk = &x.parts()[k].1;
            let yk = y.map(|y| &y.parts()[k].1);
            let call = |p: &mut B::ReducePlan, x, y, o: &mut B::Buffer<T::Acc>| {
                self.reduce_device(k, queue, p, x, y, o)
            };
            if full {
                // SAFETY: each device index runs once.
                let [d0, d1] = unsafe { &mut device_partials.range(k, 1)[0] };
                call(p, xk, yk, d0)?;
                partial[0] = device.read_scalar(d0)?;
                if let (Some(ym), Some(yk)) = (ym, yk) {
                    call(ym, yk, None, d1)?;
                    partial[1] = device.read_scalar(d1)?;
                }
                Ok(())
            } else {
                // SAFETY: each device index runs once.
                let ok = unsafe { &mut outs.range(k, 1)[0].1 };
                call(p, xk, yk, ok)
            }
        });
        plan.device_partials = own_partials;
        if let Some(value) = result? {
            let (k, (_, part)) = out
                .parts_mut()
                .iter_mut()
                .enumerate()
                .find(|(_, (r, _))| !r.is_empty())
                .expect("a one-element output has a non-empty part");
            self.devices[k].upload(&[value], part)?;
        }
        Ok(())
    }
}
