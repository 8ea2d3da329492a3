//! `Reducer` on wgpu: `shaders/reduce.wgsl`, a fixed grid per plan so results are the same
//! bits on every call; whole arrays in two dispatches (partials, then their fold) in one pass.

use std::sync::Arc;

use super::adapter::element_on;
use super::bind::{BindCache, Binding};
use super::buffer::padded;
use super::command::{enqueue_dispatches, Dispatch};
use super::device::Context;
use super::queue::WgpuQueue;
use super::reduce_kernel::{ReduceShader, REDUCE_ROW_LANES, REDUCE_WORKGROUP};
use super::{Wgpu, WgpuBuffer};
use crate::{Error, PlanFootprint, ReduceShape, ReduceSpec, Reducer, Reducible, Result};

/// Stage-1 workgroups of a whole-array reduction at most: enough to fill a large GPU, few
/// enough that one workgroup folds the partials, and at least `len / 2^16` elements per
/// invocation stay under lavapipe's loop limit up to 2^32 elements.
const MAX_PARTS: usize = 1024;

/// Elements each stage-1 invocation takes at least (fewer workgroups for short arrays).
const PER_INVOCATION: usize = 16;

const BINDINGS: [Binding; 6] = [
    Binding::Read,      // x
    Binding::Read,      // y
    Binding::ReadWrite, // out
    Binding::ReadWrite, // partials
    Binding::Read,      // offsets
    Binding::Uniform,   // params
];

/// Buffers for [`Reducer::reduce_host`]: device copies of x, y and the output, and a mappable
/// read-back buffer. Made with the plan ([`Reducer::plan_reduce`]) or by
/// [`Wgpu::prepare_reduce_host`] for a plan of [`Wgpu::plan_reduce_device`].
struct HostStaging {
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    groups: Vec<wgpu::BindGroup>,
}

/// A wgpu reduction plan: pipelines, partials, segment offsets, parameters and, unless made by
/// [`Wgpu::plan_reduce_device`], the host staging of [`Reducer::reduce_host`].
///
/// Operations and layouts as [`ReduceSpec`]; `T` = f32, f64 (adapters with `SHADER_F64`) or
/// f16 (adapters with `SHADER_F16`, accumulated in f32); bf16 is [`Error::Unsupported`]
/// (WGSL has no bf16). Deterministic: a fixed grid per plan, each invocation folding a fixed
/// strided set of elements in order, then a fixed binary tree in workgroup memory (CUB's
/// two-stage DeviceReduce without atomics). NaN propagates through max/min explicitly.
pub struct WgpuReducePlan<T: Reducible> {
    ctx: Arc<Context>,
    shape: ReduceShape,
    dispatches: Vec<Dispatch>,
    partials: wgpu::Buffer,
    offsets: wgpu::Buffer,
    params: wgpu::Buffer,
    dummy_y: wgpu::Buffer,
    bound: BindCache<3>,
    host: Option<HostStaging>,
    _t: std::marker::PhantomData<T>,
}

impl<T: Reducible> std::fmt::Debug for WgpuReducePlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuReducePlan")
            .field("shape", &self.shape)
            .field("dispatches", &self.dispatches.len())
            .finish()
    }
}

fn u32_of(n: usize, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge(what))
}

impl Wgpu {
    /// A reduction plan for device buffers only ([`Reducer::reduce`]): as
    /// [`Reducer::plan_reduce`] without the host staging (device copies of x, y and the
    /// output, and a mappable buffer for it). Its [`Reducer::reduce_host`] returns
    /// [`Error::PlanMismatch`] until [`Wgpu::prepare_reduce_host`]. [`crate::Auto`] makes
    /// these for data on the wgpu device.
    ///
    /// # Errors
    /// As [`Reducer::plan_reduce`].
    pub fn plan_reduce_device<T: Reducible>(&self, spec: &ReduceSpec) -> Result<WgpuReducePlan<T>> {
        let ctx = &self.ctx;
        ctx.check()?;
        let shape = spec.shape()?;
        let elem = element_on::<T>(ctx, "reduction")?;
        let size = std::mem::size_of::<T>();
        let x_bytes = shape
            .x_len
            .checked_mul(size)
            .ok_or(Error::TooLarge("reduction input size overflows usize"))?;
        ctx.check_binding(
            x_bytes,
            "reduction input exceeds the adapter's largest storage binding",
        )?;
        let len = u32_of(shape.x_len, "reduction input exceeds 2^32 elements")?;
        let max_groups = ctx.summary.max_workgroups_per_dim as usize;
        let shaders = ReduceShader::for_spec(spec, elem);
        let (params, offsets, groups): ([u32; 4], Vec<u32>, Vec<usize>) = match spec {
            ReduceSpec::Full { .. } => {
                let parts = shape
                    .x_len
                    .div_ceil(REDUCE_WORKGROUP * PER_INVOCATION)
                    .clamp(1, MAX_PARTS);
                (
                    [len, 0, parts as u32, len],
                    Vec::new(),
                    if parts == 1 { vec![1] } else { vec![parts, 1] },
                )
            }
            ReduceSpec::Rows { rows, cols, .. } => {
                let tiles = cols.div_ceil(REDUCE_WORKGROUP / REDUCE_ROW_LANES);
                (
                    [
                        u32_of(*rows, "too many rows")?,
                        u32_of(*cols, "too many columns")?,
                        0,
                        u32_of(*rows, "too many rows")?,
                    ],
                    Vec::new(),
                    vec![tiles.clamp(1, max_groups)],
                )
            }
            ReduceSpec::Segments { offsets, .. } => {
                let nseg = offsets.len() - 1;
                let table = offsets
                    .iter()
                    .map(|&o| u32_of(o, "segment offset exceeds 2^32"))
                    .collect::<Result<Vec<u32>>>()?;
                (
                    [u32_of(nseg, "too many segments")?, 0, 0, 0],
                    table,
                    vec![nseg.clamp(1, max_groups)],
                )
            }
        };
        // One workgroup folds a whole array when stage 1 needs only one.
        let used = &shaders[..groups.len()];
        let mut dispatches = Vec::with_capacity(used.len());
        for (shader, &workgroups) in used.iter().zip(&groups) {
            dispatches.push(Dispatch {
                pipeline: ctx.pipeline(&shader.key(), &BINDINGS, || shader.source())?,
                workgroups: workgroups as u32,
            });
        }
        let acc = std::mem::size_of::<T::Acc>();
        let offsets_buf = ctx.storage_buffer("reduce offsets", offsets.len().max(1), 4)?;
        ctx.write(&offsets_buf, bytemuck::cast_slice(&offsets))?;
        Ok(WgpuReducePlan {
            ctx: Arc::clone(ctx),
            shape,
            dispatches,
            partials: ctx.storage_buffer("reduce partials", 2 * MAX_PARTS, acc)?,
            offsets: offsets_buf,
            params: ctx.uniform_buffer(bytemuck::cast_slice(&params))?,
            dummy_y: ctx.storage_buffer("reduce no y", 1, size)?,
            bound: BindCache::default(),
            host: None,
            _t: std::marker::PhantomData,
        })
    }

    /// Allocates the host staging of a plan made by [`Wgpu::plan_reduce_device`], so that
    /// its [`Reducer::reduce_host`] runs. Plans of [`Reducer::plan_reduce`] have it from the
    /// start: then this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_reduce_host<T: Reducible>(&self, plan: &mut WgpuReducePlan<T>) -> Result<()> {
        self.check_owner(&plan.ctx, "reduce plan from another backend instance")?;
        if plan.host.is_none() {
            plan.host = Some(plan.host_staging()?);
        }
        Ok(())
    }
}

impl<T: Reducible> Reducer<T> for Wgpu {
    type ReducePlan = WgpuReducePlan<T>;

    /// With the host staging of [`Reducer::reduce_host`], allocated here.
    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<WgpuReducePlan<T>> {
        let mut plan = self.plan_reduce_device(spec)?;
        self.prepare_reduce_host(&mut plan)?;
        Ok(plan)
    }

    fn reduce(
        &self,
        plan: &mut WgpuReducePlan<T>,
        x: &WgpuBuffer<T>,
        y: Option<&WgpuBuffer<T>>,
        out: &mut WgpuBuffer<T::Acc>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "reduce plan from another backend instance")?;
        plan.shape.check(x.len, y.map(|y| y.len), out.len)?;
        let key = [x.key(), y.map_or(0, |y| y.key()), out.key()];
        if !plan.bound.holds(key) {
            let y_buf = y.map_or(&plan.dummy_y, |y| &y.buffer);
            let groups = plan.bind_groups(&x.buffer, y_buf, &out.buffer)?;
            plan.bound.set(key, groups);
        }
        plan.ctx
            .enqueue_ordered(|encoder| plan.enqueue(encoder, plan.bound.groups()))
    }

    fn reduce_on(
        &self,
        queue: &WgpuQueue,
        plan: &mut WgpuReducePlan<T>,
        x: &WgpuBuffer<T>,
        y: Option<&WgpuBuffer<T>>,
        out: &mut WgpuBuffer<T::Acc>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.reduce(plan, x, y, out)
    }

    fn reduce_host(
        &self,
        plan: &mut WgpuReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "reduce plan from another backend instance")?;
        plan.shape.check(x.len(), y.map(<[T]>::len), out.len())?;
        let ctx = Arc::clone(&plan.ctx);
        let host = plan.host.as_ref().ok_or(Error::PlanMismatch(
            "reduce_host on a plan made for device buffers (Wgpu::plan_reduce_device): call \
             Wgpu::prepare_reduce_host first",
        ))?;
        ctx.write(&host.x, bytemuck::cast_slice(x))?;
        if let Some(y) = y {
            ctx.write(&host.y, bytemuck::cast_slice(y))?;
        }
        let bytes = std::mem::size_of_val(out) as u64;
        ctx.enqueue_ordered(|encoder| {
            plan.enqueue(encoder, &host.groups);
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(&host.out, 0, &host.staging, 0, padded(bytes));
            }
        })?;
        ctx.read_back(&host.staging, bytemuck::cast_slice_mut(out))
    }
}

impl<T: Reducible> WgpuReducePlan<T> {
    /// Whether the plan has the host staging of [`Reducer::reduce_host`] (made with the plan,
    /// or by [`Wgpu::prepare_reduce_host`] for a plan of [`Wgpu::plan_reduce_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }

    fn bind_groups(
        &self,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<Vec<wgpu::BindGroup>> {
        self.dispatches
            .iter()
            .map(|d| {
                self.ctx.bind_group(
                    &d.pipeline,
                    &[x, y, out, &self.partials, &self.offsets, &self.params],
                )
            })
            .collect()
    }

    fn enqueue(&self, encoder: &mut wgpu::CommandEncoder, groups: &[wgpu::BindGroup]) {
        enqueue_dispatches(encoder, &self.dispatches, groups);
    }

    fn host_staging(&self) -> Result<HostStaging> {
        let ctx = &self.ctx;
        let size = std::mem::size_of::<T>();
        let acc = std::mem::size_of::<T::Acc>();
        let x = ctx.storage_buffer("reduce x", self.shape.x_len, size)?;
        let y = match self.shape.y_len {
            Some(n) => ctx.storage_buffer("reduce y", n, size)?,
            None => self.dummy_y.clone(),
        };
        let out = ctx.storage_buffer("reduce out", self.shape.out_len, acc)?;
        let staging = ctx.staging_buffer((self.shape.out_len * acc) as u64)?;
        let groups = self.bind_groups(&x, &y, &out)?;
        Ok(HostStaging {
            x,
            y,
            out,
            staging,
            groups,
        })
    }
}

impl<T: Reducible> PlanFootprint for WgpuReducePlan<T> {
    /// With host staging (made with the plan, or by [`Wgpu::prepare_reduce_host`] for
    /// [`Wgpu::plan_reduce_device`]'s), the mappable read-back buffer for the output; else 0.
    fn scratch_bytes(&self) -> usize {
        self.host.as_ref().map_or(0, |h| h.staging.size() as usize)
    }

    /// The partial results, the segment offsets, the parameters, the placeholder bound for a
    /// missing y, and with host staging the device copies of x, y and the output.
    fn device_bytes(&self) -> usize {
        let host = self.host.as_ref().map_or(0, |h| {
            let y = if self.shape.y_len.is_some() {
                h.y.size()
            } else {
                0
            };
            h.x.size() + y + h.out.size()
        });
        let own = [&self.partials, &self.offsets, &self.params, &self.dummy_y]
            .map(wgpu::Buffer::size)
            .iter()
            .sum::<u64>();
        (own + host) as usize
    }
}
