//! `Reducer` on CUDA (`kernels/reduce.cu`): a fixed grid per plan so results are identical
//! from call to call, a second one-block pass when the first left several partials.

use std::ffi::c_void;
use std::sync::Arc;

use super::access::{enqueue_ordered, Access, Mode};
use super::buffer::CudaBuffer;
use super::command::{arg, blocks_for, launch};
use super::device::Cuda;
use super::driver::{bind, bytes_for, copy_to_device, copy_to_host, DeviceMemory, Stream};
use super::graph::refuse_in_capture;
use super::params::ReduceArgs;
use super::pipeline::{KernelFn, Kernels};
use super::queue::CudaQueue;
use super::staging::{PinnedHost, Staged};
use crate::{
    Element, Error, PlanFootprint, ReduceOp, ReduceShape, ReduceSpec, Reducer, Reducible, Result,
    RowReduceOp, SegmentReduceOp,
};

/// Threads per block of every reduction kernel.
const THREADS: u32 = 256;
/// Resident blocks per multiprocessor the whole-array and row grids aim for.
const BLOCKS_PER_SM: usize = 8;
/// Finishing steps, as `MB_FIN_*` in reduce.cu.
const FIN_NONE: i32 = 0;
const FIN_MEAN: i32 = 1;
const FIN_REL: i32 = 2;
/// Mean segment length from which a whole block, not a warp, reduces each segment.
const BLOCK_PER_SEGMENT_FROM: usize = 2048;

#[derive(Debug, Clone, Copy)]
enum Launches {
    /// Nothing to compute (empty output).
    None,
    Full {
        stage1: KernelFn,
        stage2: KernelFn,
        grid: u32,
        len: u64,
        fin: i32,
    },
    Rows {
        stage1: KernelFn,
        stage2: KernelFn,
        grid: (u32, u32),
        rows: u64,
        cols: u64,
        rows_per_block: u64,
        fin: i32,
    },
    Segments {
        kernel: KernelFn,
        grid: u32,
        segments: u64,
        group: i32,
        fin: i32,
    },
}

/// Host-side staging for [`Reducer::reduce_host`], allocated with the plan
/// ([`Reducer::plan_reduce`]) or by [`Cuda::prepare_reduce_host`] for a plan of
/// [`Cuda::plan_reduce_device`] (`y` is empty for one-operand reductions).
struct HostStaging<T: Reducible> {
    x: Staged<T>,
    y: Staged<T>,
    out: Staged<T::Acc>,
}

/// A CUDA reduction plan: launch shapes, partials and segment offsets on the device, its
/// stream, a pinned slot for scalar results and, unless made by [`Cuda::plan_reduce_device`],
/// the host staging of [`Reducer::reduce_host`] (device arrays for x, y and the output with
/// pinned mirrors).
///
/// Operands and output as [`ReduceSpec`] (`x`, `y` of `T` in f32/f64/f16/bf16, output in
/// `T::Acc`). Algorithm: a fixed-shape two-stage tree reduction (the scheme of CUB's
/// `DeviceReduce`, without float atomics), so the result of a plan is bitwise repeatable;
/// max/min propagate NaN.
pub struct CudaReducePlan<T: Reducible> {
    owner: u64,
    shape: ReduceShape,
    launches: Launches,
    stream: Stream,
    _kernels: Arc<Kernels>,
    partials: DeviceMemory,
    /// Row reductions: the weight sums per row block, after `partials`.
    wpartials: u64,
    offsets: Option<DeviceMemory>,
    out_dev: DeviceMemory,
    scalar_pin: PinnedHost<T::Acc>,
    host: Option<HostStaging<T>>,
    /// Orders the plan's calls (its partials and result slot) across queues and graphs.
    access: Arc<Access>,
}

impl<T: Reducible> Drop for CudaReducePlan<T> {
    fn drop(&mut self) {
        // The partials are freed after the fields drop: wait for work recorded on them.
        self.access.retire();
    }
}

impl<T: Reducible> std::fmt::Debug for CudaReducePlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaReducePlan")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape)
            .field("launches", &self.launches)
            .finish()
    }
}

impl Cuda {
    /// A reduction plan for device buffers only ([`Reducer::reduce`],
    /// [`Cuda::reduce_scalar`]): as [`Reducer::plan_reduce`] without the host staging
    /// (device copies of x, y and the output, and their pinned mirrors), which would double
    /// the memory of a large reduction whose data stays on the device. Its
    /// [`Reducer::reduce_host`] returns [`Error::PlanMismatch`] until
    /// [`Cuda::prepare_reduce_host`]. [`crate::Auto`] makes these for data on the CUDA device.
    ///
    /// # Errors
    /// As [`Reducer::plan_reduce`].
    pub fn plan_reduce_device<T: Reducible>(&self, spec: &ReduceSpec) -> Result<CudaReducePlan<T>> {
        let shape = spec.shape()?;
        bind(&self.ctx)?;
        let acc = std::mem::size_of::<T::Acc>();
        let (t, a) = (T::DTYPE, <T::Acc as Element>::DTYPE);
        let kernel = |name: String| self.kernels.get(&name);
        let max_blocks = BLOCKS_PER_SM * self.info.multiprocessors;
        let stream = Stream::new(&self.ctx)?;
        let mut offsets = None;
        let (launches, partials_len, wpartials_at) = match spec {
            &ReduceSpec::Full { op, len } => {
                let (name, fin) = match op {
                    ReduceOp::Sum => ("sum", FIN_NONE),
                    ReduceOp::Mean => ("sum", FIN_MEAN),
                    ReduceOp::Min => ("min", FIN_NONE),
                    ReduceOp::Max => ("max", FIN_NONE),
                    ReduceOp::MaxAbs => ("maxabs", FIN_NONE),
                    ReduceOp::Dot => ("dot", FIN_NONE),
                    ReduceOp::MaxAbsDiff => ("maxabsdiff", FIN_NONE),
                    ReduceOp::MaxRelDiff => ("maxrel", FIN_REL),
                };
                // At least four 16-byte loads per thread before another block pays off.
                let per_block = THREADS as usize * (16 / std::mem::size_of::<T>()) * 4;
                let grid = blocks_for(len, per_block)?.min(max_blocks as u32);
                let l = Launches::Full {
                    stage1: kernel(format!("reduce_full_{name}_{t}"))?,
                    stage2: kernel(format!("reduce_full_final_{name}_{a}"))?,
                    grid,
                    len: len as u64,
                    fin,
                };
                (l, 2 * grid as usize, 0)
            }
            &ReduceSpec::Rows { op, rows, cols } => {
                let (name, fin) = match op {
                    RowReduceOp::Sum => ("sum", FIN_NONE),
                    RowReduceOp::Mean => ("sum", FIN_MEAN),
                    RowReduceOp::WeightedMean => ("wsum", FIN_NONE),
                    RowReduceOp::Max => ("max", FIN_NONE),
                };
                if cols == 0 {
                    (Launches::None, 0, 0)
                } else {
                    let tile = cols.min(THREADS as usize);
                    let col_blocks = blocks_for(cols, tile)?;
                    let row_blocks = (rows * tile)
                        .div_ceil(8192)
                        .clamp(1, (max_blocks / col_blocks as usize).max(1));
                    let rows_per_block = rows.div_ceil(row_blocks).max(1);
                    let row_blocks = rows.div_ceil(rows_per_block).max(1);
                    let partials = row_blocks
                        .checked_mul(cols)
                        .ok_or(Error::TooLarge("row partials"))?;
                    let l = Launches::Rows {
                        stage1: kernel(format!("reduce_rows_{name}_{t}"))?,
                        stage2: kernel(format!("reduce_rows_final_{name}_{a}"))?,
                        grid: (row_blocks as u32, col_blocks),
                        rows: rows as u64,
                        cols: cols as u64,
                        rows_per_block: rows_per_block as u64,
                        fin,
                    };
                    (l, partials + row_blocks, partials)
                }
            }
            ReduceSpec::Segments { op, offsets: offs } => {
                let (name, fin) = match op {
                    SegmentReduceOp::Sum => ("sum", FIN_NONE),
                    SegmentReduceOp::Mean => ("sum", FIN_MEAN),
                    SegmentReduceOp::Max => ("max", FIN_NONE),
                    SegmentReduceOp::Min => ("min", FIN_NONE),
                    SegmentReduceOp::Dot => ("dot", FIN_NONE),
                };
                let segments = offs.len() - 1;
                if segments == 0 {
                    (Launches::None, 0, 0)
                } else {
                    let table: Vec<u64> = offs.iter().map(|&o| o as u64).collect();
                    let memory = DeviceMemory::zeroed(&self.ctx, 8 * table.len())?;
                    copy_to_device(&table, memory.ptr(), &stream)?;
                    stream.synchronize()?;
                    offsets = Some(memory);
                    let mean_len = shape.x_len.checked_div(segments).unwrap_or(0);
                    let group = if mean_len >= BLOCK_PER_SEGMENT_FROM {
                        THREADS as usize
                    } else {
                        32
                    };
                    let grid = blocks_for(segments, THREADS as usize / group)?.min(1 << 20);
                    let l = Launches::Segments {
                        kernel: kernel(format!("reduce_segments_{name}_{t}"))?,
                        grid,
                        segments: segments as u64,
                        group: group as i32,
                        fin,
                    };
                    (l, 0, 0)
                }
            }
        };
        let partials = DeviceMemory::zeroed(&self.ctx, bytes_for(partials_len, acc)?)?;
        let wpartials = partials.ptr() + (wpartials_at * acc) as u64;
        Ok(CudaReducePlan {
            owner: self.id,
            shape,
            launches,
            stream,
            _kernels: self.kernels.clone(),
            partials,
            wpartials,
            offsets,
            out_dev: DeviceMemory::zeroed(&self.ctx, bytes_for(shape.out_len, acc)?)?,
            scalar_pin: PinnedHost::zeroed(&self.ctx, 1)?,
            host: None,
            access: Access::new(&self.ctx)?,
        })
    }

    /// Allocates the host staging of a plan made by [`Cuda::plan_reduce_device`] (device
    /// arrays for x, y and the output with pinned mirrors), so that its
    /// [`Reducer::reduce_host`] runs, allocating nothing. Plans of [`Reducer::plan_reduce`]
    /// have it from the start: then this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_reduce_host<T: Reducible>(&self, plan: &mut CudaReducePlan<T>) -> Result<()> {
        self.check_owner(plan.owner, "reduce plan from another backend instance")?;
        if plan.host.is_none() {
            bind(&self.ctx)?;
            plan.host = Some(self.reduce_staging(&plan.shape)?);
        }
        Ok(())
    }
}

impl<T: Reducible> CudaReducePlan<T> {
    /// Whether the plan has the host staging of [`Reducer::reduce_host`] (made with the plan,
    /// or by [`Cuda::prepare_reduce_host`] for a plan of [`Cuda::plan_reduce_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }
}

impl<T: Reducible> Reducer<T> for Cuda {
    type ReducePlan = CudaReducePlan<T>;

    /// With the host staging of [`Reducer::reduce_host`], allocated here.
    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<CudaReducePlan<T>> {
        let mut plan = self.plan_reduce_device(spec)?;
        self.prepare_reduce_host(&mut plan)?;
        Ok(plan)
    }

    fn reduce(
        &self,
        plan: &mut CudaReducePlan<T>,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
        out: &mut CudaBuffer<T::Acc>,
    ) -> Result<()> {
        self.reduce_device(plan, &plan.stream, x, y, out)
    }

    fn reduce_on(
        &self,
        queue: &CudaQueue,
        plan: &mut CudaReducePlan<T>,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
        out: &mut CudaBuffer<T::Acc>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.reduce_device(plan, &queue.stream, x, y, out)
    }

    fn reduce_host(
        &self,
        plan: &mut CudaReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        self.check_owner(plan.owner, "reduce plan from another backend instance")?;
        plan.shape.check(x.len(), y.map(<[T]>::len), out.len())?;
        bind(&self.ctx)?;
        let mut host = plan.host.take().ok_or(Error::PlanMismatch(
            "reduce_host on a plan made for device buffers (Cuda::plan_reduce_device): call \
             Cuda::prepare_reduce_host first",
        ))?;
        let result = plan.run_host(&mut host, x, y, out);
        plan.host = Some(host);
        result
    }
}

impl Cuda {
    fn reduce_staging<T: Reducible>(&self, shape: &ReduceShape) -> Result<HostStaging<T>> {
        Ok(HostStaging {
            x: Staged::zeroed(&self.ctx, shape.x_len)?,
            y: Staged::zeroed(&self.ctx, shape.y_len.unwrap_or(0))?,
            out: Staged::zeroed(&self.ctx, shape.out_len)?,
        })
    }

    /// The device-buffer call on `stream`, ordered through the buffers and the plan.
    fn reduce_device<T: Reducible>(
        &self,
        plan: &CudaReducePlan<T>,
        stream: &Stream,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
        out: &mut CudaBuffer<T::Acc>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "reduce plan from another backend instance")?;
        plan.shape
            .check(x.len(), y.map(CudaBuffer::len), out.len())?;
        bind(&self.ctx)?;
        let uses = [
            Some((&plan.access, Mode::Write)),
            Some((&x.access, Mode::Read)),
            y.map(|y| (&y.access, Mode::Read)),
            Some((&out.access, Mode::Write)),
        ];
        enqueue_ordered(stream, &uses, || {
            plan.enqueue(stream, x.ptr(), y.map_or(0, CudaBuffer::ptr), out.ptr())
        })
    }

    /// Reduces device-resident `x` (and `y`) to one value and returns it: the plan's kernels,
    /// then a 1-element copy into pinned memory and one wait on the plan's stream. This is the
    /// cheapest way to read a convergence measure each iteration.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless the plan is a whole-array reduction
    /// ([`ReduceSpec::Full`]), or inside a graph capture; otherwise as [`Reducer::reduce`].
    pub fn reduce_scalar<T: Reducible>(
        &self,
        plan: &mut CudaReducePlan<T>,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
    ) -> Result<T::Acc> {
        let stream = plan.stream.clone();
        self.reduce_scalar_device(plan, &stream, x, y)
    }

    /// Like [`Cuda::reduce_scalar`], queued on `queue` after the work queued there before: the
    /// one read-back of a device-resident iteration, waiting only for what the value depends
    /// on.
    ///
    /// # Errors
    /// As [`Cuda::reduce_scalar`], and [`Error::PlanMismatch`] for a queue of another context.
    pub fn reduce_scalar_on<T: Reducible>(
        &self,
        queue: &CudaQueue,
        plan: &mut CudaReducePlan<T>,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
    ) -> Result<T::Acc> {
        self.check_queue(queue)?;
        self.reduce_scalar_device(plan, &queue.stream, x, y)
    }

    fn reduce_scalar_device<T: Reducible>(
        &self,
        plan: &mut CudaReducePlan<T>,
        stream: &Stream,
        x: &CudaBuffer<T>,
        y: Option<&CudaBuffer<T>>,
    ) -> Result<T::Acc> {
        self.check_owner(plan.owner, "reduce plan from another backend instance")?;
        if !matches!(plan.launches, Launches::Full { .. }) {
            return Err(Error::InvalidArgument(
                "reduce_scalar needs a whole-array reduction (ReduceSpec::Full)",
            ));
        }
        refuse_in_capture("reduce_scalar synchronises and cannot be captured into a graph")?;
        plan.shape.check(x.len(), y.map(CudaBuffer::len), 1)?;
        bind(&self.ctx)?;
        let out = plan.out_dev.ptr();
        let uses = [
            Some((&plan.access, Mode::Write)),
            Some((&x.access, Mode::Read)),
            y.map(|y| (&y.access, Mode::Read)),
        ];
        let pin = plan.scalar_pin.as_mut_ptr();
        let plan_ref = &*plan;
        enqueue_ordered(stream, &uses, || {
            plan_ref.enqueue(stream, x.ptr(), y.map_or(0, CudaBuffer::ptr), out)?;
            // SAFETY: the plan's one pinned value, a separate allocation that `plan` (borrowed
            // mutably by this call) keeps alive and that nothing else writes before the
            // synchronisation below.
            let pin = unsafe { std::slice::from_raw_parts_mut(pin, 1) };
            // The plan's own result slot, read in the same ordered region.
            copy_to_host(out, pin, stream)
        })?;
        stream.synchronize()?;
        Ok(plan.scalar_pin.as_slice()[0])
    }
}

impl<T: Reducible> CudaReducePlan<T> {
    /// Host in, host out through the staging buffers: one synchronisation at the end.
    fn run_host(
        &mut self,
        host: &mut HostStaging<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        host.x.send(x, &self.stream)?;
        if let Some(y) = y {
            host.y.send(y, &self.stream)?;
        }
        let y_dev = if y.is_some() { host.y.ptr() } else { 0 };
        let plan_use = [Some((&self.access, Mode::Write))];
        enqueue_ordered(&self.stream, &plan_use, || {
            self.enqueue(&self.stream, host.x.ptr(), y_dev, host.out.ptr())
        })?;
        host.out.fetch(&self.stream)?;
        self.stream.synchronize()?;
        host.out.copy_received(out);
        Ok(())
    }

    /// Queues this plan's kernels on `stream`: each takes the plan's one [`ReduceArgs`].
    fn enqueue(&self, stream: &Stream, x: u64, y: u64, out: u64) -> Result<()> {
        let mut args = ReduceArgs {
            x,
            y,
            offsets: self.offsets.as_ref().map_or(0, DeviceMemory::ptr),
            partials: self.partials.ptr(),
            wpartials: self.wpartials,
            out,
            ..ReduceArgs::default()
        };
        let run = |f: KernelFn, grid: (u32, u32), args: &ReduceArgs| {
            let mut params: [*mut c_void; 1] = [arg(args)];
            // SAFETY: every reduction kernel takes one `MbReduceArgs` (mirrored by
            // `ReduceArgs`); x and y hold the shape's elements (y is only read by two-operand
            // kernels and weighted means, which the shape check requires a y for), partials
            // and wpartials the first stage's accumulators (sized at plan time for `grid`),
            // offsets the plan's segments + 1 offsets, out the shape's outputs.
            unsafe { launch(f.0, (grid.0, grid.1, 1), THREADS, 0, stream, &mut params) }
        };
        match self.launches {
            Launches::None => Ok(()),
            Launches::Full {
                stage1,
                stage2,
                grid,
                len,
                fin,
            } => {
                (args.len, args.fin, args.blocks) = (len, fin, grid as i32);
                run(stage1, (grid, 1), &args)?;
                if grid > 1 {
                    run(stage2, (1, 1), &args)?;
                }
                Ok(())
            }
            Launches::Rows {
                stage1,
                stage2,
                grid,
                rows,
                cols,
                rows_per_block,
                fin,
            } => {
                (args.rows, args.cols, args.rows_per_block) = (rows, cols, rows_per_block);
                (args.fin, args.blocks) = (fin, grid.0 as i32);
                run(stage1, grid, &args)?;
                if grid.0 > 1 {
                    run(
                        stage2,
                        (blocks_for(cols as usize, THREADS as usize)?, 1),
                        &args,
                    )?;
                }
                Ok(())
            }
            Launches::Segments {
                kernel,
                grid,
                segments,
                group,
                fin,
            } => {
                (args.segments, args.group, args.fin) = (segments, group, fin);
                run(kernel, (grid, 1), &args)
            }
        }
    }
}

impl<T: Reducible> PlanFootprint for CudaReducePlan<T> {
    /// The pinned slot for scalar results, and with host staging (made with the plan, or by
    /// [`Cuda::prepare_reduce_host`] for [`Cuda::plan_reduce_device`]'s) the pinned mirrors of
    /// x, y and the output.
    fn scratch_bytes(&self) -> usize {
        let staging = self.host.as_ref().map_or(0, |h| {
            h.x.host_bytes() + h.y.host_bytes() + h.out.host_bytes()
        });
        self.scalar_pin.bytes() + staging
    }

    /// The partial results, the segment offsets, the plan's output array, and with host
    /// staging the device arrays for x, y and the output.
    fn device_bytes(&self) -> usize {
        let staging = self.host.as_ref().map_or(0, |h| {
            h.x.device_bytes() + h.y.device_bytes() + h.out.device_bytes()
        });
        self.partials.bytes()
            + self.offsets.as_ref().map_or(0, DeviceMemory::bytes)
            + self.out_dev.bytes()
            + staging
    }
}
