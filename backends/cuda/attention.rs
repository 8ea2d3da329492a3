//! `SparseAttention` on CUDA: `kernels/attention.cu`, one fused forward launch per call over a
//! work list of (batch, query head, query tile) items, longest mask row first.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys;

use super::access::{enqueue_ordered, Access, Mode};
use super::attention_kernel::AttentionKernel;
use super::buffer::CudaBuffer;
use super::command::{arg, launch};
use super::device::Cuda;
use super::driver::{bind, copy_to_device, DeviceMemory, Stream};
use super::error::DriverResultExt;
use super::graph::refuse_in_capture;
use super::params::AttentionParams;
use super::pipeline::{KernelFn, Kernels};
use super::queue::CudaQueue;
use super::staging::Staged;
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, KernelRule, SparseAttention};
use crate::{BackendKind, Error, PlanFootprint, Result};

/// The order in which CTAs take work items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttentionSchedule {
    /// Items sorted by kept-block count, longest first (stable, so equal rows keep their
    /// natural order): the block scheduler hands the long rows out first and the short ones
    /// fill in at the end (longest-processing-time-first list scheduling, Graham 1969).
    #[default]
    LongestFirst,
    /// Items in (batch, head, query tile) order.
    Natural,
}

/// Choices a caller may make for one CUDA attention plan; the defaults are the measured best
/// (docs/benchmarks/attention-h100.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttentionOptions {
    /// CTA order.
    pub schedule: AttentionSchedule,
    /// A kernel variant other than [`AttentionKernel::for_shape`]'s, for tuning: its dtype and
    /// head dimension must be the call's, its query tile must divide BQ and its key chunk BK.
    pub kernel: Option<AttentionKernel>,
}

/// Host-side staging for [`SparseAttention::attention_host`], allocated with the plan
/// ([`SparseAttention::plan_attention`], [`Cuda::plan_attention_with`]) or by
/// [`Cuda::prepare_attention_host`] for a plan of [`Cuda::plan_attention_device`].
struct HostStaging<T> {
    q: Staged<T>,
    k: Staged<T>,
    v: Staged<T>,
    o: Staged<T>,
    lse: Staged<f32>,
}

/// A CUDA attention plan: its stream, the compiled kernel variant, the mask as per-row lists
/// of kept key blocks and the work list on the device, the launch shape and, unless made by
/// [`Cuda::plan_attention_device`], the host staging of
/// [`SparseAttention::attention_host`] (device arrays for Q, K, V, O and LSE with pinned
/// mirrors).
///
/// Layouts as [`AttentionSpec`]; `T` = f16 or bf16 (tensor cores: mma.sync m16n8k16, f32
/// accumulation, P rounded to `T` before P V as in FlashAttention-2) or f32 (FMA). O is
/// written in `T`, LSE in f32 (natural log). Algorithm: Dao, "FlashAttention-2", 2023, over
/// FlexAttention's block mask (Dong et al., 2024): K/V chunks double-buffered with cp.async,
/// the element predicate (or the mask's element bits) evaluated only in partial blocks and cut
/// last blocks. NaN or +inf in
/// a row's kept scores makes the row's running max and sum NaN (a NaN-propagating max, as
/// torch's SDPA), so that row's O and LSE come out NaN.
pub struct CudaAttentionPlan<T> {
    owner: u64,
    lens: (usize, usize, usize),
    kernel: AttentionKernel,
    function: KernelFn,
    _module: Arc<Kernels>,
    stream: Stream,
    params: AttentionParams,
    grid: u32,
    _tables: DeviceMemory,
    host: Option<HostStaging<T>>,
    /// Orders the plan's calls with the release of its mask tables (graphs replay them).
    access: Arc<Access>,
}

impl<T> Drop for CudaAttentionPlan<T> {
    fn drop(&mut self) {
        // The mask tables are freed after the fields drop: wait for work that reads them.
        self.access.retire();
    }
}

impl<T> std::fmt::Debug for CudaAttentionPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaAttentionPlan")
            .field("kernel", &self.kernel)
            .field("grid", &self.grid)
            .finish()
    }
}

impl<T> CudaAttentionPlan<T> {
    /// The kernel variant this plan launches.
    pub fn kernel(&self) -> AttentionKernel {
        self.kernel
    }

    /// Whether the plan has the host staging of [`SparseAttention::attention_host`] (made
    /// with the plan, or by [`Cuda::prepare_attention_host`] for a plan of
    /// [`Cuda::plan_attention_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }
}

fn to_i32(x: usize, what: &'static str) -> Result<i32> {
    i32::try_from(x).map_err(|_| Error::TooLarge(what))
}

impl Cuda {
    /// The loaded module of `kernel`, compiled on first use in this context.
    fn attention_module(&self, kernel: &AttentionKernel) -> Result<Arc<Kernels>> {
        self.variant_module(&format!("{kernel:?}"), || kernel.source())
    }

    /// [`SparseAttention::plan_attention`] with explicit [`AttentionOptions`] (the trait's
    /// method uses the defaults), with the host staging of
    /// [`SparseAttention::attention_host`] allocated here.
    ///
    /// # Errors
    /// As [`SparseAttention::plan_attention`]; [`Error::Unsupported`] on GPUs before sm_80
    /// (no mma.sync m16n8k16 / cp.async) or for a tile that needs more shared memory than the
    /// device has; [`Error::InvalidArgument`] for a kernel variant that does not fit the call;
    /// [`Error::TooLarge`] when a sequence or the work list exceeds `i32`; [`Error::Device`]
    /// for allocation or compile failures.
    pub fn plan_attention_with<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        options: AttentionOptions,
    ) -> Result<CudaAttentionPlan<T>> {
        let mut plan = self.plan_attention_device(spec, mask, options)?;
        self.prepare_attention_host(&mut plan)?;
        Ok(plan)
    }

    /// A plan for device buffers only ([`SparseAttention::attention`]): as
    /// [`Cuda::plan_attention_with`] without the host staging (device copies of Q, K, V, O
    /// and LSE with pinned mirrors). Its [`SparseAttention::attention_host`] returns
    /// [`Error::PlanMismatch`] until [`Cuda::prepare_attention_host`]. [`crate::Auto`] makes
    /// these for data on the CUDA device.
    ///
    /// # Errors
    /// As [`Cuda::plan_attention_with`].
    pub fn plan_attention_device<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        options: AttentionOptions,
    ) -> Result<CudaAttentionPlan<T>> {
        let lens = spec.lens_for(mask)?;
        if self.info.compute_capability.0 < 8 {
            return Err(Error::Unsupported {
                backend: BackendKind::Cuda,
                message: format!(
                    "attention needs sm_80 or newer (this GPU is sm_{}{})",
                    self.info.compute_capability.0, self.info.compute_capability.1
                ),
            });
        }
        let (bq, bk) = mask.block_size();
        let kernel = match options.kernel {
            None => {
                let mut k = AttentionKernel::for_shape(T::DTYPE, spec.head_dim, bq, bk);
                // GPUs with less shared memory than the H100 (an A100's 163 KiB) take shorter
                // key chunks rather than refusing D = 256.
                while k.shared_bytes() > self.info.max_shared_per_block && k.kv_tile > 16 {
                    k.kv_tile /= 2;
                }
                k
            }
            Some(k) => {
                k.check_fits(T::DTYPE, spec.head_dim, (bq, bk))?;
                k
            }
        };
        let (qb_count, _) = mask.block_counts();
        let (mb, mh) = mask.broadcast_dims();
        let qt = kernel.query_tile();
        let tiles = spec.seq_q.div_ceil(qt);
        let items = spec
            .batch
            .checked_mul(spec.heads_q)
            .and_then(|x| x.checked_mul(tiles))
            .ok_or(Error::TooLarge("attention work list"))?;
        let items_i32 = to_i32(items, "attention work list exceeds 2^31 items")?;
        let (rows, entries, _) = mask.flat_lists()?;
        let rule = KernelRule::of(mask)?;
        let (window, ids) = (rule.window, rule.aux.as_slice());
        let work: Vec<u32> = match options.schedule {
            AttentionSchedule::Natural => Vec::new(),
            AttentionSchedule::LongestFirst => {
                let kept = |item: usize| {
                    let (bh, tile) = (item / tiles, item % tiles);
                    let (b, h) = (bh / spec.heads_q, bh % spec.heads_q);
                    let r = ((if mb == 1 { 0 } else { b }) * mh + if mh == 1 { 0 } else { h })
                        * qb_count
                        + tile * qt / bq;
                    rows[r + 1] - rows[r]
                };
                let mut order: Vec<u32> = (0..items as u32).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(kept(i as usize)));
                order
            }
        };
        bind(&self.ctx)?;
        let module = self.attention_module(&kernel)?;
        let function = module.get(kernel.entry())?;
        if kernel.shared_bytes() > self.info.max_shared_per_block {
            return Err(Error::Unsupported {
                backend: BackendKind::Cuda,
                message: format!(
                    "attention tile needs {} bytes of shared memory, the device allows {}",
                    kernel.shared_bytes(),
                    self.info.max_shared_per_block
                ),
            });
        }
        // SAFETY: `function` is live; the value is within the device's opt-in limit.
        unsafe {
            cudarc::driver::result::function::set_function_attribute(
                function.0,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                kernel.shared_bytes() as i32,
            )
        }
        .call("cuFuncSetAttribute")?;
        let stream = Stream::new(&self.ctx)?;
        // One device table: row starts, entries, document ids, work list (all u32).
        let mut table: Vec<u32> = Vec::with_capacity(rows.len() + entries.len() + ids.len());
        table.extend_from_slice(&rows);
        table.extend_from_slice(&entries);
        table.extend_from_slice(ids);
        table.extend_from_slice(&work);
        let tables = DeviceMemory::zeroed(&self.ctx, 4 * table.len().max(1))?;
        copy_to_device(&table, tables.ptr(), &stream)?;
        stream.synchronize()?;
        let base = tables.ptr();
        let at = |n: usize| base + 4 * n as u64;
        let params = AttentionParams {
            rows: at(0),
            entries: at(rows.len()),
            ids: if ids.is_empty() {
                0
            } else {
                at(rows.len() + entries.len())
            },
            work: if work.is_empty() {
                0
            } else {
                at(rows.len() + entries.len() + ids.len())
            },
            heads_q: to_i32(spec.heads_q, "heads_q exceeds 2^31")?,
            heads_kv: to_i32(spec.heads_kv, "heads_kv exceeds 2^31")?,
            seq_q: to_i32(spec.seq_q, "seq_q exceeds 2^31")?,
            seq_kv: to_i32(spec.seq_kv, "seq_kv exceeds 2^31")?,
            bq: bq as i32,
            bk: bk as i32,
            qb_count: qb_count as i32,
            mask_heads: mh as i32,
            mask_b_bcast: i32::from(mb == 1),
            mask_h_bcast: i32::from(mh == 1),
            predicate: rule.code as i32,
            window: to_i32(window.min(i32::MAX as usize), "window")?,
            bits_at: to_i32(rule.bits_at, "element bits exceed 2^31 words")?,
            tiles: to_i32(tiles, "query tiles exceed 2^31")?,
            items: items_i32,
            scale_log2: spec.softmax_scale() * std::f32::consts::LOG2_E,
            ..AttentionParams::default()
        };
        Ok(CudaAttentionPlan {
            owner: self.id,
            lens,
            kernel,
            function,
            _module: module,
            stream,
            params,
            grid: items_i32 as u32,
            _tables: tables,
            host: None,
            access: Access::new(&self.ctx)?,
        })
    }

    /// Allocates the host staging of a plan made by [`Cuda::plan_attention_device`] (device
    /// arrays for Q, K, V, O and LSE with pinned mirrors), so that its
    /// [`SparseAttention::attention_host`] runs, allocating nothing. Plans of
    /// [`SparseAttention::plan_attention`] and [`Cuda::plan_attention_with`] have it from the
    /// start: then this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_attention_host<T: AttentionElement>(
        &self,
        plan: &mut CudaAttentionPlan<T>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "attention plan from another backend instance")?;
        if plan.host.is_none() {
            bind(&self.ctx)?;
            let (q_len, kv_len, lse_len) = plan.lens;
            plan.host = Some(HostStaging {
                q: Staged::zeroed(&self.ctx, q_len)?,
                k: Staged::zeroed(&self.ctx, kv_len)?,
                v: Staged::zeroed(&self.ctx, kv_len)?,
                o: Staged::zeroed(&self.ctx, q_len)?,
                lse: Staged::zeroed(&self.ctx, lse_len)?,
            });
        }
        Ok(())
    }

    /// Waits for every call queued on `plan`'s stream.
    ///
    /// # Errors
    /// [`Error::Device`] if queued work failed.
    pub fn synchronize_plan<T>(&self, plan: &CudaAttentionPlan<T>) -> Result<()> {
        bind(&self.ctx)?;
        plan.stream.synchronize()
    }
}

impl<T> CudaAttentionPlan<T> {
    /// Queues the launch on `stream`.
    fn enqueue(&self, stream: &Stream, q: u64, k: u64, v: u64, o: u64, lse: u64) -> Result<()> {
        if self.grid == 0 {
            return Ok(());
        }
        let mut params = self.params;
        (params.q, params.k, params.v, params.o, params.lse) = (q, k, v, o, lse);
        let mut args: [*mut c_void; 1] = [arg(&params)];
        // SAFETY: `params` mirrors `MbAttParams`; q, k, v, o (and a non-zero lse) hold the
        // spec's lengths (`check_lens`); the mask tables are the plan's; callers keep buffers
        // alive and ordered (events, or `attention_host`'s synchronisation). CTAs touch only
        // their own (b, h) rows and keys of listed blocks below Skv.
        unsafe {
            launch(
                self.function.0,
                (self.grid, 1, 1),
                self.kernel.threads() as u32,
                self.kernel.shared_bytes() as u32,
                stream,
                &mut args,
            )
        }
    }
}

impl<T: AttentionElement> SparseAttention<T> for Cuda {
    type AttentionPlan = CudaAttentionPlan<T>;

    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<CudaAttentionPlan<T>> {
        self.plan_attention_with(spec, mask, AttentionOptions::default())
    }

    fn attention(
        &self,
        plan: &mut CudaAttentionPlan<T>,
        q: &CudaBuffer<T>,
        k: &CudaBuffer<T>,
        v: &CudaBuffer<T>,
        o: &mut CudaBuffer<T>,
        lse: Option<&mut CudaBuffer<f32>>,
    ) -> Result<()> {
        self.attention_device(plan, &plan.stream, q, k, v, o, lse)
    }

    fn attention_on(
        &self,
        queue: &CudaQueue,
        plan: &mut CudaAttentionPlan<T>,
        q: &CudaBuffer<T>,
        k: &CudaBuffer<T>,
        v: &CudaBuffer<T>,
        o: &mut CudaBuffer<T>,
        lse: Option<&mut CudaBuffer<f32>>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.attention_device(plan, &queue.stream, q, k, v, o, lse)
    }

    fn attention_host(
        &self,
        plan: &mut CudaAttentionPlan<T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        self.check_owner(plan.owner, "attention plan from another backend instance")?;
        crate::attention::check_operands(plan.lens, q, k, v, o, lse.as_deref())?;
        bind(&self.ctx)?;
        let mut host = plan.host.take().ok_or(Error::PlanMismatch(
            "attention_host on a plan made for device buffers (Cuda::plan_attention_device): \
             call Cuda::prepare_attention_host first",
        ))?;
        let result = plan.run_host(&mut host, q, k, v, o, lse);
        plan.host = Some(host);
        result
    }
}

impl Cuda {
    /// The device-buffer call on `stream`: queued after earlier work on each buffer (their
    /// events) and returns without waiting.
    #[allow(clippy::too_many_arguments)]
    fn attention_device<T: AttentionElement>(
        &self,
        plan: &CudaAttentionPlan<T>,
        stream: &Stream,
        q: &CudaBuffer<T>,
        k: &CudaBuffer<T>,
        v: &CudaBuffer<T>,
        o: &mut CudaBuffer<T>,
        lse: Option<&mut CudaBuffer<f32>>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "attention plan from another backend instance")?;
        crate::attention::check_operand_lens(
            plan.lens,
            [q.len, k.len, v.len, o.len],
            lse.as_ref().map(|l| l.len),
        )?;
        bind(&self.ctx)?;
        let lse_ptr = lse.as_ref().map_or(0, |l| l.ptr());
        let uses = [
            Some((&plan.access, Mode::Read)),
            Some((&q.access, Mode::Read)),
            Some((&k.access, Mode::Read)),
            Some((&v.access, Mode::Read)),
            Some((&o.access, Mode::Write)),
            lse.as_ref().map(|l| (&l.access, Mode::Write)),
        ];
        enqueue_ordered(stream, &uses, || {
            plan.enqueue(stream, q.ptr(), k.ptr(), v.ptr(), o.ptr(), lse_ptr)
        })
    }
}

impl<T: AttentionElement> CudaAttentionPlan<T> {
    /// Host in, host out through the staging buffers: one synchronisation at the end.
    fn run_host(
        &mut self,
        host: &mut HostStaging<T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        host.q.send(q, &self.stream)?;
        host.k.send(k, &self.stream)?;
        host.v.send(v, &self.stream)?;
        let lse_ptr = if lse.is_some() { host.lse.ptr() } else { 0 };
        let plan_use = [Some((&self.access, Mode::Read))];
        enqueue_ordered(&self.stream, &plan_use, || {
            self.enqueue(
                &self.stream,
                host.q.ptr(),
                host.k.ptr(),
                host.v.ptr(),
                host.o.ptr(),
                lse_ptr,
            )
        })?;
        host.o.fetch(&self.stream)?;
        if lse.is_some() {
            host.lse.fetch(&self.stream)?;
        }
        self.stream.synchronize()?;
        host.o.copy_received(o);
        if let Some(l) = lse {
            host.lse.copy_received(l);
        }
        Ok(())
    }
}

impl<T: AttentionElement> PlanFootprint for CudaAttentionPlan<T> {
    /// With host staging (made with the plan, or by [`Cuda::prepare_attention_host`] for
    /// [`Cuda::plan_attention_device`]'s), the pinned mirrors of Q, K, V, O and LSE; else 0.
    fn scratch_bytes(&self) -> usize {
        self.host.as_ref().map_or(0, |h| {
            h.q.host_bytes()
                + h.k.host_bytes()
                + h.v.host_bytes()
                + h.o.host_bytes()
                + h.lse.host_bytes()
        })
    }

    /// The mask tables (row starts, kept blocks, document ids, work list), and with host
    /// staging the device arrays for Q, K, V, O and LSE.
    fn device_bytes(&self) -> usize {
        let staging = self.host.as_ref().map_or(0, |h| {
            h.q.device_bytes()
                + h.k.device_bytes()
                + h.v.device_bytes()
                + h.o.device_bytes()
                + h.lse.device_bytes()
        });
        self._tables.bytes() + staging
    }
}
