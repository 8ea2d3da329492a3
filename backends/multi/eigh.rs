//! `BatchedEigh` on [`Multi`]: the batch split by work, one plan per device, the parts run
//! concurrently.

use crate::backends::cpu::pool::DisjointMut;
use crate::{BatchedEigh, EighOffsets, EighPart, EighSpec, Error, PlanFootprint, Real, Result};

use super::{Multi, MultiBuffer, MultiQueue};

/// A plan of [`Multi`]: the batch's parts ([`EighSpec::split_by_work`], one per device, some
/// empty when there are fewer matrices than devices) and each device's own plan of its part,
/// all made when the plan is made.
///
/// Errors name matrices by their index in the whole batch. A host call that fails for a bad
/// matrix ([`Error::NonFinite`], [`Error::NoConvergence`]: the lowest such index over the
/// parts that report one) leaves that part's outputs untouched, as one device would, but the
/// other parts' outputs are written; [`BatchedEigh::eigh_info`] then reports every matrix.
pub struct MultiEighPlan<B: BatchedEigh<T>, T: Real> {
    owner: u64,
    offsets: EighOffsets,
    vectors: bool,
    parts: Vec<EighPart>,
    plans: Vec<B::EighPlan>,
}

impl<B: BatchedEigh<T>, T: Real> std::fmt::Debug for MultiEighPlan<B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let matrices: Vec<_> = self.parts.iter().map(|p| &p.matrices).collect();
        f.debug_struct("MultiEighPlan")
            .field("parts", &matrices)
            .finish()
    }
}

impl<B: BatchedEigh<T>, T: Real> MultiEighPlan<B, T> {
    /// The parts, one per device in device order: matrix range, element ranges of `a`/`v`
    /// and `w`, and the part's own spec. Device buffers for this plan are split the same way
    /// (`multi.alloc_parts(plan.parts().iter().map(|p| p.a.clone()))` for A and V, `p.w` for W).
    pub fn parts(&self) -> &[EighPart] {
        &self.parts
    }

    /// Device `k`'s own plan.
    pub fn device_plan(&self, k: usize) -> &B::EighPlan {
        &self.plans[k]
    }
}

impl<B: BatchedEigh<T>, T: Real> PlanFootprint for MultiEighPlan<B, T> {
    /// The devices' plans' host bytes together.
    fn scratch_bytes(&self) -> usize {
        self.plans.iter().map(PlanFootprint::scratch_bytes).sum()
    }

    /// The devices' plans' device bytes together.
    fn device_bytes(&self) -> usize {
        self.plans.iter().map(PlanFootprint::device_bytes).sum()
    }
}

/// `e` with a matrix index of part `part` made an index of the whole batch.
fn in_batch(e: Error, part: &EighPart) -> Error {
    match e {
        Error::NonFinite { matrix } => Error::NonFinite {
            matrix: part.matrices.start + matrix,
        },
        Error::NoConvergence { matrix } => Error::NoConvergence {
            matrix: part.matrices.start + matrix,
        },
        other => other,
    }
}

impl<B: crate::Backend> Multi<B> {
    /// Checks that `a`, `w` and `v` are split as `plan` splits them.
    fn check_split<T: Real>(
        plan: &MultiEighPlan<B, T>,
        a: &MultiBuffer<B, T>,
        w: &MultiBuffer<B, T>,
        v: Option<&MultiBuffer<B, T>>,
    ) -> Result<()>
    where
        B: BatchedEigh<T>,
    {
        plan.offsets
            .check(plan.vectors, a.len(), w.len(), v.map(MultiBuffer::len))?;
        let by_a = || plan.parts.iter().map(|p| p.a.clone());
        let ok = a.split_is(by_a())
            && w.split_is(plan.parts.iter().map(|p| p.w.clone()))
            && v.is_none_or(|v| v.split_is(by_a()));
        if ok {
            Ok(())
        } else {
            Err(Error::PlanMismatch(
                "Multi eigh: buffers split otherwise than the plan's parts (allocate them with \
                 Multi::alloc_parts over plan.parts())",
            ))
        }
    }

    /// Runs `call(k, device plan, a_k, w_k, v_k)` for every non-empty part on the device
    /// threads, the buffers being `plan`'s split.
    #[allow(clippy::type_complexity)]
    fn each_part<T: Real>(
        &self,
        plan: &mut MultiEighPlan<B, T>,
        a: &MultiBuffer<B, T>,
        w: &mut MultiBuffer<B, T>,
        v: Option<&mut MultiBuffer<B, T>>,
        call: &(dyn Fn(
            usize,
            &mut B::EighPlan,
            &B::Buffer<T>,
            &mut B::Buffer<T>,
            Option<&mut B::Buffer<T>>,
        ) -> Result<()>
              + Sync),
    ) -> Result<()>
    where
        B: BatchedEigh<T>,
    {
        let parts = &plan.parts;
        let plans = DisjointMut::new(&mut plan.plans[..]);
        let ws = DisjointMut::new(w.parts_mut());
        let vs = v.map(|v| DisjointMut::new(v.parts_mut()));
        self.each_device(&|k| {
            if parts[k].matrices.is_empty() {
                return Ok(());
            }
            // SAFETY: each device index runs once, so these one-element ranges are disjoint.
            let (plan_k, w_k, v_k) = unsafe {
                (
                    &mut plans.range(k, 1)[0],
                    &mut ws.range(k, 1)[0].1,
                    vs.as_ref().map(|vs| &mut vs.range(k, 1)[0].1),
                )
            };
            call(k, plan_k, &a.parts()[k].1, w_k, v_k).map_err(|e| in_batch(e, &parts[k]))
        })
    }
}

impl<B: BatchedEigh<T>, T: Real> BatchedEigh<T> for Multi<B> {
    type EighPlan = MultiEighPlan<B, T>;

    /// Splits `spec` into one part per device ([`EighSpec::split_by_work`]) and plans each
    /// part on its device (empty parts too: their plans hold nothing).
    ///
    /// # Errors
    /// As [`EighSpec::offsets`] and each device's `plan_eigh`.
    fn plan_eigh(&self, spec: &EighSpec) -> Result<MultiEighPlan<B, T>> {
        let offsets = spec.offsets(std::mem::size_of::<T>())?;
        let parts = spec.split_by_work(self.devices.len())?;
        let plans = parts
            .iter()
            .zip(self.devices.iter())
            .map(|(p, d)| d.plan_eigh(&p.spec))
            .collect::<Result<Vec<_>>>()?;
        Ok(MultiEighPlan {
            owner: self.id,
            offsets,
            vectors: spec.vectors(),
            parts,
            plans,
        })
    }

    fn eigh(
        &self,
        plan: &mut MultiEighPlan<B, T>,
        a: &MultiBuffer<B, T>,
        w: &mut MultiBuffer<B, T>,
        v: Option<&mut MultiBuffer<B, T>>,
    ) -> Result<()> {
        self.check_owner(plan.owner)?;
        Self::check_split(plan, a, w, v.as_deref())?;
        self.each_part(plan, a, w, v, &|k, p, a, w, v| {
            self.devices[k].eigh(p, a, w, v)
        })
    }

    fn eigh_on(
        &self,
        queue: &MultiQueue<B::Queue>,
        plan: &mut MultiEighPlan<B, T>,
        a: &MultiBuffer<B, T>,
        w: &mut MultiBuffer<B, T>,
        v: Option<&mut MultiBuffer<B, T>>,
    ) -> Result<()> {
        self.check_owner(plan.owner)?;
        self.check_queue(queue)?;
        Self::check_split(plan, a, w, v.as_deref())?;
        self.each_part(plan, a, w, v, &|k, p, a, w, v| {
            self.devices[k].eigh_on(queue.device(k), p, a, w, v)
        })
    }

    fn eigh_host(
        &self,
        plan: &mut MultiEighPlan<B, T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        self.check_owner(plan.owner)?;
        plan.offsets
            .check(plan.vectors, a.len(), w.len(), v.as_deref().map(<[T]>::len))?;
        let parts = &plan.parts;
        let plans = DisjointMut::new(&mut plan.plans[..]);
        let ws = DisjointMut::new(w);
        let vs = v.map(DisjointMut::new);
        self.each_device(&|k| {
            let part = &parts[k];
            if part.matrices.is_empty() {
                return Ok(());
            }
            // SAFETY: each device index runs once; the parts' element ranges are disjoint.
            let (plan_k, w_k, v_k) = unsafe {
                (
                    &mut plans.range(k, 1)[0],
                    ws.range(part.w.start, part.w.len()),
                    vs.as_ref().map(|vs| vs.range(part.a.start, part.a.len())),
                )
            };
            self.devices[k]
                .eigh_host(plan_k, &a[part.a.clone()], w_k, v_k)
                .map_err(|e| in_batch(e, part))
        })
    }

    fn eigh_info(&self, plan: &mut MultiEighPlan<B, T>, info: &mut [i32]) -> Result<()> {
        self.check_owner(plan.owner)?;
        crate::error::check_len(
            "info",
            plan.parts.last().map_or(0, |p| p.matrices.end),
            info.len(),
        )?;
        for (k, (part, p)) in plan.parts.iter().zip(plan.plans.iter_mut()).enumerate() {
            if !part.matrices.is_empty() {
                self.devices[k].eigh_info(p, &mut info[part.matrices.clone()])?;
            }
        }
        Ok(())
    }
}
