//! `SparseAttention` on wgpu: `shaders/attention.wgsl`, the online-softmax recurrence over kept
//! key blocks, one workgroup per (batch, query head, query block), one dispatch per call.

use std::sync::Arc;

use super::adapter::element_on;
use super::attention_kernel::{AttentionShader, ATTENTION_WORKGROUP};
use super::bind::{BindCache, Binding};
use super::buffer::padded;
use super::command::enqueue;
use super::device::Context;
use super::error::unsupported;
use super::queue::WgpuQueue;
use super::{Wgpu, WgpuBuffer};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, KernelRule, SparseAttention};
use crate::{Error, PlanFootprint, Result};

const BINDINGS: [Binding; 9] = [
    Binding::Read,      // q
    Binding::Read,      // k
    Binding::Read,      // v
    Binding::ReadWrite, // o
    Binding::ReadWrite, // lse
    Binding::Read,      // rows
    Binding::Read,      // entries
    Binding::Read,      // aux: document ids, or tile starts and element bits
    Binding::Uniform,   // params
];

/// Loop trips one invocation may make on lavapipe, which stops a shader after 65,535 in all
/// (see `LAVAPIPE_EIGH_MAX_ORDER`); kept below it with a margin.
const LAVAPIPE_LOOP_BUDGET: usize = 50_000;

/// A wgpu attention plan: the pipeline, the mask as per-row lists of kept key blocks, the
/// parameters, an LSE buffer for device calls given none, and, unless made by
/// [`Wgpu::plan_attention_device`], the buffers of the host path (device copies of Q, K, V and
/// O and a mappable read-back buffer), all made with the plan:
/// [`SparseAttention::attention_host`] allocates nothing, its first call included.
///
/// Layouts as [`AttentionSpec`]; `T` = f32, or f16 on adapters with `SHADER_F16`; bf16 is
/// [`Error::Unsupported`] (WGSL has no bf16). Algorithm: FlashAttention-2's forward
/// recurrence (Dao, 2023) in f32, as the CPU backend, with Q sub-tiles of `2048 / D` rows and
/// key chunks of `1024 / D` in workgroup memory; the mask predicate, or the mask's element
/// bits, apply inside partial blocks only. NaN or +inf in a row's kept scores (NaN or Inf in Q
/// or K) makes that row's O and LSE NaN, as torch's SDPA; -inf scores count as masked.
pub struct WgpuAttentionPlan<T> {
    ctx: Arc<Context>,
    lens: (usize, usize, usize),
    pipeline: Arc<wgpu::ComputePipeline>,
    workgroups: u32,
    /// Written by device calls given no LSE buffer, and by host calls.
    lse: wgpu::Buffer,
    host: Option<HostStaging>,
    /// Row starts, entries, aux table (document ids, or tile starts and element bits),
    /// parameters: bound with the caller's buffers too.
    tables: [wgpu::Buffer; 4],
    bound: BindCache<5>,
    _t: std::marker::PhantomData<fn(T)>,
}

/// The host path's buffers: device copies of Q, K, V and O (LSE is the plan's own), the
/// mappable read-back of O and LSE, and the bind group over them.
struct HostStaging {
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    o: wgpu::Buffer,
    staging: wgpu::Buffer,
    group: wgpu::BindGroup,
}

impl<T> std::fmt::Debug for WgpuAttentionPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuAttentionPlan")
            .field("lens", &self.lens)
            .field("workgroups", &self.workgroups)
            .finish()
    }
}

impl<T> WgpuAttentionPlan<T> {
    /// Whether the plan has the buffers of [`SparseAttention::attention_host`] (made with the
    /// plan, or by [`Wgpu::prepare_attention_host`] for a plan of
    /// [`Wgpu::plan_attention_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }

    /// A bind group over `operands` (Q, K, V, O, LSE) and the plan's tables.
    fn bind(&self, operands: [&wgpu::Buffer; 5]) -> Result<wgpu::BindGroup> {
        let [rows, entries, aux, params] = &self.tables;
        let [q, k, v, o, lse] = operands;
        self.ctx.bind_group(
            &self.pipeline,
            &[q, k, v, o, lse, rows, entries, aux, params],
        )
    }

    /// Enqueues the plan's one dispatch with bind group `group` (nothing for an empty query).
    fn enqueue(&self, encoder: &mut wgpu::CommandEncoder, group: &wgpu::BindGroup) {
        if self.lens.0 > 0 {
            enqueue(encoder, [(&*self.pipeline, group, self.workgroups)]);
        }
    }
}

impl Wgpu {
    /// A plan for device buffers only ([`SparseAttention::attention`]): as
    /// [`SparseAttention::plan_attention`] without the host path's buffers (device copies of
    /// Q, K, V and O and a mappable buffer as large as O and LSE). Its
    /// [`SparseAttention::attention_host`] returns [`Error::PlanMismatch`] until
    /// [`Wgpu::prepare_attention_host`]. [`crate::Auto`] makes these for data on the wgpu
    /// device. `T` is f32, or f16 on adapters with `SHADER_F16`.
    ///
    /// # Errors
    /// As [`SparseAttention::plan_attention`].
    pub fn plan_attention_device<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<WgpuAttentionPlan<T>> {
        let ctx = &self.ctx;
        ctx.check()?;
        let lens = spec.lens_for(mask)?;
        let elem = element_on::<T>(ctx, "attention")?;
        let size = std::mem::size_of::<T>();
        for (len, what) in [
            (
                lens.0,
                "attention Q exceeds the adapter's largest storage binding",
            ),
            (
                lens.1,
                "attention K exceeds the adapter's largest storage binding",
            ),
        ] {
            let bytes = len.checked_mul(size).ok_or(Error::TooLarge(what))?;
            ctx.check_binding(bytes, what)?;
            if len > u32::MAX as usize {
                return Err(Error::TooLarge("attention tensor exceeds 2^32 elements"));
            }
        }
        let shader = AttentionShader {
            elem,
            head_dim: spec.head_dim,
        };
        let (bq, bk) = mask.block_size();
        let (qb_count, kb_count) = mask.block_counts();
        let (rows, entries, longest) = mask.flat_lists()?;
        if ctx.summary.is_llvmpipe() {
            // Loop trips of one invocation: per query sub-tile and key chunk, the score dots
            // and the V accumulation dominate.
            let (r, c, d) = (shader.rows(), shader.keys(), spec.head_dim);
            let per_chunk = (r * c).div_ceil(ATTENTION_WORKGROUP) * (d + 1)
                + (r * d).div_ceil(ATTENTION_WORKGROUP) * (c + 1)
                + 3 * c;
            let trips = bq.div_ceil(r) * longest * bk.div_ceil(c) * per_chunk;
            if trips > LAVAPIPE_LOOP_BUDGET {
                return Err(unsupported(format!(
                    "attention with {longest} kept blocks of {bq}x{bk} per row at D = {d} on \
                     lavapipe (about {trips} loop trips per invocation; llvmpipe stops shaders \
                     after 65,535)"
                )));
            }
        }
        let rule = KernelRule::of(mask)?;
        ctx.check_binding(
            4 * rule.aux.len(),
            "attention element bits exceed the adapter's largest storage binding",
        )?;
        let tasks = spec.batch * spec.heads_q * qb_count;
        let (mb, mh) = mask.broadcast_dims();
        let params: [u32; 16] = [
            spec.batch as u32,
            spec.heads_q as u32,
            spec.heads_kv as u32,
            spec.seq_q as u32,
            spec.seq_kv as u32,
            bq as u32,
            bk as u32,
            qb_count as u32,
            kb_count as u32,
            u32::from(mb == 1),
            u32::from(mh == 1),
            rule.code,
            u32::try_from(rule.window).unwrap_or(u32::MAX),
            1,
            spec.softmax_scale().to_bits(),
            u32::try_from(tasks).map_err(|_| Error::TooLarge("attention tasks exceed 2^32"))?,
        ];
        let pipeline = ctx.pipeline(&shader.key(), &BINDINGS, || shader.source())?;
        let rows_buf = ctx.storage_buffer("attention rows", rows.len(), 4)?;
        ctx.write(&rows_buf, bytemuck::cast_slice(&rows))?;
        let entries_buf = ctx.storage_buffer("attention entries", entries.len().max(1), 4)?;
        ctx.write(&entries_buf, bytemuck::cast_slice(&entries))?;
        let ids_buf = ctx.storage_buffer("attention aux table", rule.aux.len().max(1), 4)?;
        ctx.write(&ids_buf, bytemuck::cast_slice(&rule.aux))?;
        let params_buf = ctx.uniform_buffer(bytemuck::cast_slice(&params))?;
        let lse = ctx.storage_buffer("attention lse", lens.2, 4)?;
        Ok(WgpuAttentionPlan {
            ctx: Arc::clone(ctx),
            lens,
            pipeline,
            workgroups: tasks.clamp(1, ctx.summary.max_workgroups_per_dim as usize) as u32,
            lse,
            host: None,
            tables: [rows_buf, entries_buf, ids_buf, params_buf],
            bound: BindCache::default(),
            _t: std::marker::PhantomData,
        })
    }

    /// Allocates the host path's buffers of a plan made by [`Wgpu::plan_attention_device`],
    /// so that its [`SparseAttention::attention_host`] runs, allocating nothing. Plans of
    /// [`SparseAttention::plan_attention`] have them from the start: then this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_attention_host<T: AttentionElement>(
        &self,
        plan: &mut WgpuAttentionPlan<T>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "attention plan from another backend instance")?;
        if plan.host.is_some() {
            return Ok(());
        }
        let ctx = &plan.ctx;
        let (q_len, kv_len, lse_len) = plan.lens;
        let size = std::mem::size_of::<T>();
        let q = ctx.storage_buffer("attention q", q_len, size)?;
        let k = ctx.storage_buffer("attention k", kv_len, size)?;
        let v = ctx.storage_buffer("attention v", kv_len, size)?;
        let o = ctx.storage_buffer("attention o", q_len, size)?;
        let staging = ctx.staging_buffer(lse_offset(q_len * size) + 4 * lse_len as u64)?;
        let group = plan.bind([&q, &k, &v, &o, &plan.lse])?;
        plan.host = Some(HostStaging {
            q,
            k,
            v,
            o,
            staging,
            group,
        });
        Ok(())
    }
}

impl<T: AttentionElement> SparseAttention<T> for Wgpu {
    type AttentionPlan = WgpuAttentionPlan<T>;

    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<WgpuAttentionPlan<T>> {
        let mut plan = self.plan_attention_device(spec, mask)?;
        self.prepare_attention_host(&mut plan)?;
        Ok(plan)
    }

    fn attention(
        &self,
        plan: &mut WgpuAttentionPlan<T>,
        q: &WgpuBuffer<T>,
        k: &WgpuBuffer<T>,
        v: &WgpuBuffer<T>,
        o: &mut WgpuBuffer<T>,
        lse: Option<&mut WgpuBuffer<f32>>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "attention plan from another backend instance")?;
        crate::attention::check_operand_lens(
            plan.lens,
            [q.len, k.len, v.len, o.len],
            lse.as_ref().map(|l| l.len),
        )?;
        let lse_key = lse.as_ref().map_or(0, |l| l.key());
        let key = [q.key(), k.key(), v.key(), o.key(), lse_key];
        if !plan.bound.holds(key) {
            // Without an LSE buffer the kernel writes the plan's own.
            let lse_buf = lse.as_ref().map_or(&plan.lse, |l| &l.buffer);
            let group = plan.bind([&q.buffer, &k.buffer, &v.buffer, &o.buffer, lse_buf])?;
            plan.bound.set(key, vec![group]);
        }
        plan.ctx
            .enqueue_ordered(|encoder| plan.enqueue(encoder, &plan.bound.groups()[0]))
    }

    fn attention_on(
        &self,
        queue: &WgpuQueue,
        plan: &mut WgpuAttentionPlan<T>,
        q: &WgpuBuffer<T>,
        k: &WgpuBuffer<T>,
        v: &WgpuBuffer<T>,
        o: &mut WgpuBuffer<T>,
        lse: Option<&mut WgpuBuffer<f32>>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.attention(plan, q, k, v, o, lse)
    }

    fn attention_host(
        &self,
        plan: &mut WgpuAttentionPlan<T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "attention plan from another backend instance")?;
        crate::attention::check_operands(plan.lens, q, k, v, o, lse.as_deref())?;
        let host = plan.host.as_ref().ok_or(Error::PlanMismatch(
            "attention_host on a plan made for device buffers (Wgpu::plan_attention_device): \
             call Wgpu::prepare_attention_host first",
        ))?;
        let (_, _, lse_len) = plan.lens;
        let ctx = &plan.ctx;
        ctx.write(&host.q, bytemuck::cast_slice(q))?;
        ctx.write(&host.k, bytemuck::cast_slice(k))?;
        ctx.write(&host.v, bytemuck::cast_slice(v))?;
        let o_bytes = std::mem::size_of_val(o);
        let lse_at = lse_offset(o_bytes);
        let lse_bytes = 4 * lse_len as u64;
        ctx.enqueue_ordered(|encoder| {
            plan.enqueue(encoder, &host.group);
            if o_bytes > 0 {
                encoder.copy_buffer_to_buffer(&host.o, 0, &host.staging, 0, padded(o_bytes as u64));
            }
            if lse.is_some() && lse_bytes > 0 {
                encoder.copy_buffer_to_buffer(&plan.lse, 0, &host.staging, lse_at, lse_bytes);
            }
        })?;
        let total = if lse.is_some() {
            lse_at + lse_bytes
        } else {
            o_bytes as u64
        };
        ctx.read_mapped(&host.staging, total, |bytes| {
            bytemuck::cast_slice_mut::<T, u8>(o).copy_from_slice(&bytes[..o_bytes]);
            if let Some(l) = lse {
                let at = lse_at as usize;
                bytemuck::cast_slice_mut::<f32, u8>(l)
                    .copy_from_slice(&bytes[at..at + lse_bytes as usize]);
            }
        })
    }
}

/// Where LSE starts in the staging buffer, after O (8-byte aligned for the copy and the map).
fn lse_offset(o_bytes: usize) -> u64 {
    (o_bytes as u64).next_multiple_of(8)
}

impl<T> PlanFootprint for WgpuAttentionPlan<T> {
    /// The mappable read-back buffer for O and LSE of host calls (made with the plan, or by
    /// [`Wgpu::prepare_attention_host`]); 0 without the host path.
    fn scratch_bytes(&self) -> usize {
        self.host.as_ref().map_or(0, |h| h.staging.size() as usize)
    }

    /// The LSE buffer, the mask tables and parameters, and with the host path the device
    /// copies of Q, K, V and O.
    fn device_bytes(&self) -> usize {
        let host = self.host.as_ref().map_or(0, |h| {
            [&h.q, &h.k, &h.v, &h.o]
                .into_iter()
                .map(wgpu::Buffer::size)
                .sum::<u64>()
        });
        let own = std::iter::once(&self.lse)
            .chain(&self.tables)
            .map(wgpu::Buffer::size)
            .sum::<u64>();
        (host + own) as usize
    }
}
