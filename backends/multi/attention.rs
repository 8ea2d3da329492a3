//! `SparseAttention` on [`Multi`]: the (batch, key/value head) groups split across devices by
//! kept blocks, each part a call of its own.

use std::ops::Range;

use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::pool::DisjointMut;
use crate::{Backend, Error, PlanFootprint, Result};

use super::{Multi, MultiBuffer, MultiQueue};

/// One device's part of an attention call: (batch, key/value head) groups `groups` of the
/// whole call, its element ranges of Q and O, of K and V, and of LSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionPart {
    /// Groups `b * Hkv + g` of the whole call (each one key/value head and the `Hq / Hkv`
    /// query heads that read it).
    pub groups: Range<usize>,
    /// Elements of Q and O.
    pub q: Range<usize>,
    /// Elements of K and V.
    pub kv: Range<usize>,
    /// Elements of LSE.
    pub lse: Range<usize>,
}

/// A plan of [`Multi`]: the call's (batch, key/value head) groups split into one contiguous
/// part per device with about equal kept blocks, and each device's plan of its part, a call
/// of `batch = groups`, `heads_q = Hq / Hkv`, `heads_kv = 1` with the mask's rows of those
/// heads ([`AttentionPart`]; the layouts `[B, H, S, D]` make each part one range of every
/// tensor). The scale is the whole call's. Every row is computed by the same kernel as on one
/// device, so results are one device's bit for bit. Device buffers are split by
/// [`MultiAttentionPlan::parts`] (`multi.alloc_parts(plan.parts().iter().map(|p| p.q.clone()))`
/// for Q and O, `p.kv` for K and V, `p.lse` for LSE).
pub struct MultiAttentionPlan<B: SparseAttention<T>, T: AttentionElement> {
    owner: u64,
    lens: (usize, usize, usize),
    parts: Vec<AttentionPart>,
    /// `None` for a part without groups.
    plans: Vec<Option<B::AttentionPlan>>,
}

impl<B: SparseAttention<T>, T: AttentionElement> std::fmt::Debug for MultiAttentionPlan<B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiAttentionPlan")
            .field("parts", &self.parts)
            .finish()
    }
}

impl<B: SparseAttention<T>, T: AttentionElement> MultiAttentionPlan<B, T> {
    /// The parts, one per device in device order.
    pub fn parts(&self) -> &[AttentionPart] {
        &self.parts
    }
}

impl<B: SparseAttention<T>, T: AttentionElement> PlanFootprint for MultiAttentionPlan<B, T> {
    /// The devices' plans' host bytes together.
    fn scratch_bytes(&self) -> usize {
        self.plans
            .iter()
            .flatten()
            .map(PlanFootprint::scratch_bytes)
            .sum()
    }

    /// The devices' plans' device bytes together.
    fn device_bytes(&self) -> usize {
        self.plans
            .iter()
            .flatten()
            .map(PlanFootprint::device_bytes)
            .sum()
    }
}

impl<B: Backend> Multi<B> {
    /// The device-buffer call, on each device's plan queue or on `queue`'s.
    #[allow(clippy::too_many_arguments)]
    fn attention_with<T: AttentionElement>(
        &self,
        queue: Option<&MultiQueue<B::Queue>>,
        plan: &mut MultiAttentionPlan<B, T>,
        q: &MultiBuffer<B, T>,
        k: &MultiBuffer<B, T>,
        v: &MultiBuffer<B, T>,
        o: &mut MultiBuffer<B, T>,
        lse: Option<&mut MultiBuffer<B, f32>>,
    ) -> Result<()>
    where
        B: SparseAttention<T>,
    {
        self.check_owner(plan.owner)?;
        crate::attention::check_operand_lens(
            plan.lens,
            [q.len(), k.len(), v.len(), o.len()],
            lse.as_ref().map(|l| l.len()),
        )?;
        let by = |f: fn(&AttentionPart) -> Range<usize>| plan.parts.iter().map(f);
        let split_ok = q.split_is(by(|p| p.q.clone()))
            && o.split_is(by(|p| p.q.clone()))
            && k.split_is(by(|p| p.kv.clone()))
            && v.split_is(by(|p| p.kv.clone()))
            && lse
                .as_ref()
                .is_none_or(|l| l.split_is(by(|p| p.lse.clone())));
        if !split_ok {
            return Err(Error::PlanMismatch(
                "Multi attention: buffers split otherwise than the plan's parts (allocate them \
                 with Multi::alloc_parts over plan.parts())",
            ));
        }
        let plans = DisjointMut::new(&mut plan.plans[..]);
        let os = DisjointMut::new(o.parts_mut());
        let lses = lse.map(|l| DisjointMut::new(l.parts_mut()));
        self.each_device(&|d| {
            // SAFETY: each device index runs once, so these one-element ranges are disjoint.
            let (p, o_d, l_d) = unsafe {
                (
                    &mut plans.range(d, 1)[0],
                    &mut os.range(d, 1)[0].1,
                    lses.as_ref().map(|l| &mut l.range(d, 1)[0].1),
                )
            };
            let Some(p) = p else { return Ok(()) };
            let device = &self.devices[d];
            let (q_d, k_d, v_d) = (&q.parts()[d].1, &k.parts()[d].1, &v.parts()[d].1);
            match queue {
                Some(qs) => device.attention_on(qs.device(d), p, q_d, k_d, v_d, o_d, l_d),
                None => device.attention(p, q_d, k_d, v_d, o_d, l_d),
            }
        })
    }
}

impl<B: SparseAttention<T>, T: AttentionElement> SparseAttention<T> for Multi<B> {
    type AttentionPlan = MultiAttentionPlan<B, T>;

    /// Splits the call's (batch, key/value head) groups over the devices by kept blocks (plus
    /// one per query block, its fixed cost) and plans each part on its device.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens_for`] and each device's `plan_attention`.
    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<MultiAttentionPlan<B, T>> {
        let lens = spec.lens_for(mask)?;
        let group = spec.heads_q / spec.heads_kv;
        let groups = spec.batch * spec.heads_kv;
        let (qb, _) = mask.block_counts();
        let mut prefix = Vec::with_capacity(groups + 1);
        prefix.push(0.0);
        for u in 0..groups {
            let (b, g) = (u / spec.heads_kv, u % spec.heads_kv);
            let kept: usize = (0..group)
                .map(|h| {
                    (0..qb)
                        .map(|q| mask.row(b, g * group + h, q).count() + 1)
                        .sum::<usize>()
                })
                .sum();
            prefix.push(prefix[u] + kept as f64);
        }
        let ends = crate::split::balanced_ends(&prefix, self.devices.len());
        let (sq, skv, d) = (spec.seq_q, spec.seq_kv, spec.head_dim);
        let mut start = 0;
        let mut parts = Vec::with_capacity(ends.len());
        let mut plans = Vec::with_capacity(ends.len());
        for (device, end) in self.devices.iter().zip(ends) {
            let part = AttentionPart {
                groups: start..end,
                q: start * group * sq * d..end * group * sq * d,
                kv: start * skv * d..end * skv * d,
                lse: start * group * sq..end * group * sq,
            };
            plans.push(if end > start {
                let heads_kv = spec.heads_kv;
                let part_mask = mask.gather(end - start, group, |b, h| {
                    let u = start + b;
                    (u / heads_kv, (u % heads_kv) * group + h)
                })?;
                let part_spec = AttentionSpec {
                    batch: end - start,
                    heads_q: group,
                    heads_kv: 1,
                    scale: Some(spec.softmax_scale()),
                    ..*spec
                };
                Some(device.plan_attention(&part_spec, &part_mask)?)
            } else {
                None
            });
            parts.push(part);
            start = end;
        }
        Ok(MultiAttentionPlan {
            owner: self.id,
            lens,
            parts,
            plans,
        })
    }

    fn attention(
        &self,
        plan: &mut MultiAttentionPlan<B, T>,
        q: &MultiBuffer<B, T>,
        k: &MultiBuffer<B, T>,
        v: &MultiBuffer<B, T>,
        o: &mut MultiBuffer<B, T>,
        lse: Option<&mut MultiBuffer<B, f32>>,
    ) -> Result<()> {
        self.attention_with(None, plan, q, k, v, o, lse)
    }

    fn attention_on(
        &self,
        queue: &MultiQueue<B::Queue>,
        plan: &mut MultiAttentionPlan<B, T>,
        q: &MultiBuffer<B, T>,
        k: &MultiBuffer<B, T>,
        v: &MultiBuffer<B, T>,
        o: &mut MultiBuffer<B, T>,
        lse: Option<&mut MultiBuffer<B, f32>>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.attention_with(Some(queue), plan, q, k, v, o, lse)
    }

    fn attention_host(
        &self,
        plan: &mut MultiAttentionPlan<B, T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        self.check_owner(plan.owner)?;
        crate::attention::check_operands(plan.lens, q, k, v, o, lse.as_deref())?;
        let parts = &plan.parts;
        let plans = DisjointMut::new(&mut plan.plans[..]);
        let os = DisjointMut::new(o);
        let lses = lse.map(DisjointMut::new);
        self.each_device(&|d| {
            let part = &parts[d];
            // SAFETY: each device index runs once; the parts' element ranges are disjoint.
            let (p, o_d, l_d) = unsafe {
                (
                    &mut plans.range(d, 1)[0],
                    os.range(part.q.start, part.q.len()),
                    lses.as_ref()
                        .map(|l| l.range(part.lse.start, part.lse.len())),
                )
            };
            let Some(p) = p else { return Ok(()) };
            self.devices[d].attention_host(
                p,
                &q[part.q.clone()],
                &k[part.kv.clone()],
                &v[part.kv.clone()],
                o_d,
                l_d,
            )
        })
    }
}
