//! `SparseAttention` on the CPU: one task per (batch, query head, query block), each running
//! the online-softmax recurrence over its row of kept key blocks in per-thread f32 scratch.
//! Inside partial blocks the mask's element bits decide when it has them, else its predicate.

use std::marker::PhantomData;

use super::pool::{DisjointMut, PerWorker};
use super::{Cpu, CpuQueue};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::{Error, PlanFootprint, Result};

/// Tasks (query blocks) below which the call stays on the calling thread.
const PARALLEL_MIN_TASKS: usize = 2;

struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
    acc: Vec<f32>,
    m: Vec<f32>,
    l: Vec<f32>,
}

impl Scratch {
    /// One query block's arrays: Q tile and accumulators `bq x d`, K and V tiles `bk x d`,
    /// scores `bq x bk`, running max and sum `bq`.
    fn new(bq: usize, bk: usize, d: usize) -> Self {
        Self {
            q: vec![0.0; bq * d],
            k: vec![0.0; bk * d],
            v: vec![0.0; bk * d],
            s: vec![0.0; bq * bk],
            acc: vec![0.0; bq * d],
            m: vec![0.0; bq],
            l: vec![0.0; bq],
        }
    }

    /// Bytes held, read from the allocations.
    fn bytes(&self) -> usize {
        let arrays = [
            &self.q, &self.k, &self.v, &self.s, &self.acc, &self.m, &self.l,
        ];
        arrays.iter().map(|a| a.len()).sum::<usize>() * std::mem::size_of::<f32>()
    }
}

/// A CPU attention plan: the spec, its own copy of the mask, and per-thread scratch for one
/// query block (BQ x D accumulators, BK x D key and value tiles, BQ x BK scores).
pub struct CpuAttentionPlan<T> {
    owner: u64,
    spec: AttentionSpec,
    mask: BlockMask,
    lens: (usize, usize, usize),
    parallel: bool,
    scratch: PerWorker<Scratch>,
    /// Bytes of `scratch`, summed over its allocations when the plan made them.
    scratch_bytes: usize,
    _t: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for CpuAttentionPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuAttentionPlan")
            .field("spec", &self.spec)
            .finish()
    }
}

impl<T: AttentionElement> SparseAttention<T> for Cpu {
    type AttentionPlan = CpuAttentionPlan<T>;

    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<CpuAttentionPlan<T>> {
        let lens = spec.lens_for(mask)?;
        let (bq, bk) = mask.block_size();
        let d = spec.head_dim;
        let tasks = spec.batch * spec.heads_q * mask.block_counts().0;
        let parallel = self.threads() > 1 && tasks >= PARALLEL_MIN_TASKS;
        let workers = if parallel { self.threads() } else { 1 };
        let scratch: Vec<Scratch> = (0..workers).map(|_| Scratch::new(bq, bk, d)).collect();
        let scratch_bytes = scratch.iter().map(Scratch::bytes).sum();
        let scratch = PerWorker::new(scratch);
        Ok(CpuAttentionPlan {
            owner: self.id,
            spec: *spec,
            mask: mask.clone(),
            lens,
            parallel,
            scratch,
            scratch_bytes,
            _t: PhantomData,
        })
    }

    fn attention(
        &self,
        plan: &mut CpuAttentionPlan<T>,
        q: &Vec<T>,
        k: &Vec<T>,
        v: &Vec<T>,
        o: &mut Vec<T>,
        lse: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.attention_host(plan, q, k, v, o, lse.map(Vec::as_mut_slice))
    }

    fn attention_on(
        &self,
        queue: &CpuQueue,
        plan: &mut CpuAttentionPlan<T>,
        q: &Vec<T>,
        k: &Vec<T>,
        v: &Vec<T>,
        o: &mut Vec<T>,
        lse: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let workers = plan.parallel.then(|| plan.scratch.len());
        self.on_queue(queue, workers)?
            .attention_host(plan, q, k, v, o, lse.map(Vec::as_mut_slice))
    }

    fn attention_host(
        &self,
        plan: &mut CpuAttentionPlan<T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        if plan.owner != self.id {
            return Err(Error::PlanMismatch(
                "the plan was made by another backend instance",
            ));
        }
        crate::attention::check_operands(plan.lens, q, k, v, o, lse.as_deref())?;
        let spec = plan.spec;
        let mask = &plan.mask;
        let scratch = &plan.scratch;
        let qb_count = mask.block_counts().0;
        let tasks = spec.batch * spec.heads_q * qb_count;
        let o_out = DisjointMut::new(o);
        let lse_out = lse.map(DisjointMut::new);
        let task = |t: usize, worker: usize| {
            // SAFETY: the pool gives each worker id to one thread at a time.
            let s = unsafe { scratch.get(worker) };
            let (b, h, qb) = (
                t / (spec.heads_q * qb_count),
                t / qb_count % spec.heads_q,
                t % qb_count,
            );
            // SAFETY: task t alone writes rows qb * BQ.. of head (b, h) in O and LSE.
            block_forward(
                &spec,
                mask,
                (b, h, qb),
                q,
                k,
                v,
                &o_out,
                lse_out.as_ref(),
                s,
            );
        };
        if plan.parallel {
            self.pool.run(tasks, &task);
        } else {
            (0..tasks).for_each(|t| task(t, 0));
        }
        Ok(())
    }
}

/// One query block of one (batch, head): the FlashAttention-2 forward recurrence in f32.
#[allow(clippy::too_many_arguments)]
fn block_forward<T: AttentionElement>(
    spec: &AttentionSpec,
    mask: &BlockMask,
    (b, h, qb): (usize, usize, usize),
    q: &[T],
    k: &[T],
    v: &[T],
    o: &DisjointMut<'_, T>,
    lse: Option<&DisjointMut<'_, f32>>,
    s: &mut Scratch,
) {
    let (bq, bk) = mask.block_size();
    let (sq, skv, d) = (spec.seq_q, spec.seq_kv, spec.head_dim);
    let i0 = qb * bq;
    let rows = bq.min(sq - i0);
    let hk = h / (spec.heads_q / spec.heads_kv);
    let scale = spec.softmax_scale();
    let q_base = ((b * spec.heads_q + h) * sq + i0) * d;
    for (dst, src) in s.q[..rows * d]
        .iter_mut()
        .zip(&q[q_base..q_base + rows * d])
    {
        *dst = src.to_f32() * scale;
    }
    s.m[..rows].fill(f32::NEG_INFINITY);
    s.l[..rows].fill(0.0);
    s.acc[..rows * d].fill(0.0);
    let predicate = mask.predicate();
    let bits = mask.element_bits();
    // Partial blocks come first in a row: slot s of them is tile `tile0 + s` of the bits.
    let tile0 = bits.map_or(0, |e| e.tile_start(mask.row_index(b, h, qb)));
    for (slot, (kb, full)) in mask.row(b, h, qb).enumerate() {
        let j0 = kb * bk;
        let cols = bk.min(skv - j0);
        let kv_base = ((b * spec.heads_kv + hk) * skv + j0) * d;
        for (dst, src) in s.k[..cols * d]
            .iter_mut()
            .zip(&k[kv_base..kv_base + cols * d])
        {
            *dst = src.to_f32();
        }
        for (dst, src) in s.v[..cols * d]
            .iter_mut()
            .zip(&v[kv_base..kv_base + cols * d])
        {
            *dst = src.to_f32();
        }
        for r in 0..rows {
            let qr = &s.q[r * d..(r + 1) * d];
            for c in 0..cols {
                let kc = &s.k[c * d..(c + 1) * d];
                let kept = full
                    || match bits {
                        Some(e) => e.keeps(tile0 + slot, r, c),
                        None => predicate.keeps(i0 + r, j0 + c, sq, skv),
                    };
                s.s[r * bk + c] = if kept {
                    qr.iter().zip(kc).map(|(a, b)| a * b).sum()
                } else {
                    f32::NEG_INFINITY
                };
            }
        }
        for r in 0..rows {
            let row = &mut s.s[r * bk..r * bk + cols];
            // A NaN-propagating max (f32::max drops NaN): a NaN score, or +inf (then
            // exp(inf - inf)), makes the row's max, sum and output NaN, as torch's SDPA.
            let m_new = row.iter().fold(s.m[r], |m, &x| max_nan(m, x));
            if m_new == f32::NEG_INFINITY {
                continue; // nothing kept in this row yet
            }
            let alpha = (s.m[r] - m_new).exp();
            let mut sum = 0.0f32;
            for p in row.iter_mut() {
                *p = (*p - m_new).exp();
                sum += *p;
            }
            s.l[r] = s.l[r] * alpha + sum;
            s.m[r] = m_new;
            let acc = &mut s.acc[r * d..(r + 1) * d];
            for a in acc.iter_mut() {
                *a *= alpha;
            }
            for (c, &p) in row.iter().enumerate() {
                if p != 0.0 {
                    for (a, &vv) in acc.iter_mut().zip(&s.v[c * d..(c + 1) * d]) {
                        *a += p * vv;
                    }
                }
            }
        }
    }
    // SAFETY: (see the caller) rows i0..i0 + rows of head (b, h) belong to this task alone.
    let out = unsafe { o.range(q_base, rows * d) };
    // l = 0: nothing kept (O = 0, LSE = -inf); l NaN: a NaN or +inf score (O, LSE NaN).
    for r in 0..rows {
        let l = s.l[r];
        for (dst, &a) in out[r * d..(r + 1) * d]
            .iter_mut()
            .zip(&s.acc[r * d..(r + 1) * d])
        {
            *dst = T::from_f32(if l == 0.0 { 0.0 } else { a / l });
        }
    }
    if let Some(lse) = lse {
        // SAFETY: as above.
        let dst = unsafe { lse.range((b * spec.heads_q + h) * sq + i0, rows) };
        for (r, x) in dst.iter_mut().enumerate() {
            *x = if s.l[r] == 0.0 {
                f32::NEG_INFINITY
            } else {
                s.m[r] + s.l[r].ln()
            };
        }
    }
}

/// The larger of `m` and `x`, NaN if either is NaN.
fn max_nan(m: f32, x: f32) -> f32 {
    if x > m || x.is_nan() {
        x
    } else {
        m
    }
}

impl<T> PlanFootprint for CpuAttentionPlan<T> {
    /// One f32 scratch arena per worker thread (one when the call stays on the calling
    /// thread): for a mask of `bq x bk` blocks and head dimension `d`,
    /// `4 (2 bq d + 2 bk d + bq bk + 2 bq)` bytes each. The plan's copy of the mask is not
    /// counted.
    fn scratch_bytes(&self) -> usize {
        self.scratch_bytes
    }

    /// Always 0: the CPU has no device memory.
    fn device_bytes(&self) -> usize {
        0
    }
}
