//! `BatchedEigh` on CUDA: a kernel per size class (`eigh_kernel.rs`): Householder + QL with a
//! group of lanes per matrix up to order 32, a block per matrix above, divide and conquer
//! where A no longer fits shared memory (to 4096; parallel-order Jacobi only where a device
//! cannot run it, or forced). Every class present in a batch is one launch (divide and
//! conquer: a few per wave).

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys;

use super::access::{enqueue_ordered, Access, Mode};
use super::adapter::DeviceInfo;
use super::buffer::CudaBuffer;
use super::command::{arg, launch};
use super::device::Cuda;
use super::driver::{bind, copy_to_device, copy_to_host, fill_bytes, DeviceMemory, Stream};
use super::eigh_classes::{bucket_of, select, shaped_order, Bucket, EighClass, LaunchShape};
use super::eigh_kernel::EighKernel;
use super::error::DriverResultExt;
use super::graph::refuse_in_capture;
use super::params::EighArgs;
use super::pipeline::{KernelFn, Kernels};
use super::queue::CudaQueue;
use super::staging::{PinnedHost, Staged};
use chunks::ChunkPipeline;
pub use chunks::CHUNK_KIB_ENV;

#[path = "eigh_chunks.rs"]
mod chunks;
use crate::error::check_len;
use crate::{
    Backend, BackendKind, BatchedEigh, EighLayout, EighOffsets, EighSpec, Error, PlanFootprint,
    Real, Result,
};

/// Largest order the CUDA eigh accepts; larger matrices belong on the CPU backend (faer's
/// blocked solver).
pub const CUDA_EIGH_MAX_ORDER: usize = 4096;

/// Which algorithms a CUDA eigh plan may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CudaEighAlgorithm {
    /// The size classes of [`EighClass::for_order`]: Householder tridiagonalisation + implicit
    /// QL in registers (n <= 32) or shared memory (while A fits), divide and conquer above.
    #[default]
    SizeClasses,
    /// The size classes with every order <= 32 on the warp classes whose QL chain every lane
    /// of a matrix's group computes (the layout before the chains classes; kept to measure
    /// them against it).
    GroupChains,
    /// The size classes with orders 9-32 on the chains classes whatever the batch (the default
    /// takes them from [`super::chains_min_batch`] matrices of a class).
    LaneChains,
    /// The size classes with the block classes (QL's chain and the replay in one kernel) at
    /// every order they cover, none split (the layout before the split classes; kept to
    /// measure them against it).
    FusedBlocks,
    /// The size classes with every block-class order (from 33) split into the reduction,
    /// chains and replay kernels.
    SplitBlocks,
    /// The size classes with every order from 33 to [`super::DC_MAX_ORDER`] on the
    /// divide-and-conquer class (the default gives it the orders above the block classes;
    /// this measures it where they run).
    DivideConquer,
    /// As [`CudaEighAlgorithm::DivideConquer`], with the per-order vectors of its reduce and
    /// solve steps in the workspace (global memory) at every order: the layout the class takes
    /// by itself only where they do not fit a block's shared memory (the solve step from f64
    /// n ~ 1860 / f32 ~ 3110 with 227 KiB per block), forced to test and measure it at
    /// small orders.
    DivideConquerGlobal,
    /// Parallel-order Jacobi at every order (the algorithm before size classes; kept to
    /// measure the classes against it).
    Jacobi,
}

/// One launch: a [`LaunchShape`] of a bucket's class, with its kernel and device addresses.
#[derive(Debug, Clone, Copy)]
struct ClassLaunch {
    class: EighClass,
    kernel: KernelFn,
    shape: LaunchShape,
    count: i32,
    /// Device address of this launch's matrix indices (0: matrices 0..count in order).
    list: u64,
    /// Device address of the class's workspace (`MbEighArgs::gwork`; 0: none).
    gwork: u64,
    /// The first launch of its bucket (a split class queues several).
    first: bool,
}

/// Host-side staging for [`BatchedEigh::eigh_host`], allocated when the plan is made
/// ([`BatchedEigh::plan_eigh`], [`Cuda::plan_eigh_with`]) or by [`Cuda::prepare_eigh_host`]
/// for a plan made for device buffers only (`v` is empty for a values-only plan).
struct HostStaging<T> {
    a: Staged<T>,
    w: Staged<T>,
    v: Staged<T>,
    /// The chunked pipeline of `eigh_chunks.rs`, where it applies.
    chunks: Option<ChunkPipeline>,
}

/// A CUDA eigh plan: its stream, the per-matrix tables and workspace on the device, one
/// launch per size class present, a status word (first non-finite matrix, first
/// unconverged), the per-matrix status array ([`CudaEighPlan::info`]) and, unless made by
/// [`Cuda::plan_eigh_device`], the host staging of [`BatchedEigh::eigh_host`].
///
/// Layouts as [`EighSpec`] (row-major `[batch, n, n]` or ragged, lower triangle read; `w`
/// ascending; eigenvectors as columns of `v`), `T` = f32 or f64. Algorithms by order
/// ([`EighClass`]): n <= 32, Householder tridiagonalisation (LAPACK dsytd2) by a group of
/// lanes holding the matrix in registers, then implicit QL (EISPACK tql2), from n = 9 one
/// chain per lane with the rotations replayed on Q afterwards; larger orders while A
/// fits a block's shared memory (f64 to 165, f32 to 235 on an H100/H200), the same with A in
/// shared memory and Q formed as LAPACK dorg2r; above, to [`CUDA_EIGH_MAX_ORDER`], blocked
/// Householder in global memory and Cuppen's divide and conquer (LAPACK dstedc, dlaed0-dlaed4;
/// [`EighClass::DivideConquer`]), where a device's blocks cannot hold its tiles two-sided
/// cyclic Jacobi in the parallel ordering (Golub & Van Loan, *Matrix Computations*, 4th ed.,
/// Alg. 8.5.1-8.5.3, Demmel & Veselic's skip rule, at most 60 sweeps). QL takes at most 30
/// iterations per eigenvalue; either cap gives [`Error::NoConvergence`] from `eigh_host`. Orders above
/// [`CUDA_EIGH_MAX_ORDER`] are rejected at plan time with [`Error::Unsupported`].
///
/// Every kernel writes each of its matrices' status to [`CudaEighPlan::info`] in the same
/// launch ([`crate::EIGH_SOLVED`], [`crate::EIGH_NON_FINITE`],
/// [`crate::EIGH_NO_CONVERGENCE`]) and fills a failed matrix's eigenvalues and eigenvectors
/// with NaN: device-buffer [`BatchedEigh::eigh`] returns without waiting and reports bad
/// matrices only there; `eigh_host` reads the status word and returns the error.
pub struct CudaEighPlan<T: Real> {
    owner: u64,
    batch: usize,
    offsets: EighOffsets,
    vectors: bool,
    uniform_n: i32,
    /// The algorithm the plan was made with (a chunk's launches are planned again with it).
    algorithm: CudaEighAlgorithm,
    stream: Stream,
    _modules: Vec<Arc<Kernels>>,
    launches: Vec<ClassLaunch>,
    /// a_start (u64), w_start (u64), order (i32) per matrix, then the launch lists (i32).
    tables: Option<DeviceMemory>,
    workspace: Option<DeviceMemory>,
    status: DeviceMemory,
    status_host: PinnedHost<i32>,
    /// Per-matrix status codes (`[batch]` i32), written by every launch.
    info: CudaBuffer<i32>,
    host: Option<HostStaging<T>>,
    /// Orders the plan's calls (its workspace and status) across queues and graphs.
    access: Arc<Access>,
}

impl<T: Real> Drop for CudaEighPlan<T> {
    fn drop(&mut self) {
        // The workspace is freed after the fields drop: wait for work recorded on it.
        self.access.retire();
    }
}

impl<T: Real> std::fmt::Debug for CudaEighPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaEighPlan")
            .field("dtype", &T::DTYPE)
            .field("vectors", &self.vectors)
            .field("launches", &self.launches)
            .finish()
    }
}

impl<T: Real> CudaEighPlan<T> {
    /// The per-matrix status of the last call on this plan, on the device: `[batch]` `i32`
    /// in batch order, [`crate::EIGH_SOLVED`] (0), [`crate::EIGH_NON_FINITE`] or
    /// [`crate::EIGH_NO_CONVERGENCE`], as cuSOLVER's batched `info`. Written by the eigh
    /// kernels themselves (no extra launch); zero before the first call and for empty
    /// matrices. The buffer is ordered like any [`CudaBuffer`]: megabatch work given it waits
    /// for the eigh call through its event; other CUDA code reading
    /// [`CudaBuffer::device_ptr`] must synchronise with the plan first (or read it on the
    /// plan's stream order, e.g. after [`crate::Backend::synchronize`]).
    /// [`BatchedEigh::eigh_info`] copies it to the host.
    pub fn info(&self) -> &CudaBuffer<i32> {
        &self.info
    }

    /// Whether the plan has the host staging of [`BatchedEigh::eigh_host`] (made with the
    /// plan, or by [`Cuda::prepare_eigh_host`] for a plan of [`Cuda::plan_eigh_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }

    /// How many chunks [`BatchedEigh::eigh_host`] splits the batch into, each on its own
    /// stream so that transfers and solves overlap ([`STAGING_ENV`]); 0 when it runs in one
    /// pass (`MEGABATCH_CUDA_STAGING=pinned|direct`, and every plan the chunked path does not
    /// take: ragged batches, split and Jacobi classes, at most 384 KiB of input, 16 MiB or more
    /// of input, no host staging).
    pub fn host_chunks(&self) -> usize {
        self.host
            .as_ref()
            .and_then(|h| h.chunks.as_ref())
            .map_or(0, ChunkPipeline::len)
    }

    /// The size classes this plan launches, one entry per launch, with its matrix count.
    pub fn classes(&self) -> Vec<(EighClass, usize)> {
        self.launches
            .iter()
            .filter(|l| l.first)
            .map(|l| (l.class, l.count as usize))
            .collect()
    }
}

/// The buckets of a plan of `spec` with `elem`-byte floats on `device`: each one's class,
/// the order its launches are shaped for and its matrices (`None` for a uniform batch: all of
/// them, in order), largest order first within a bucket.
type Buckets = Vec<(EighClass, usize, usize, Option<Vec<i32>>)>;

fn buckets(
    spec: &EighSpec,
    elem: usize,
    algorithm: CudaEighAlgorithm,
    device: &DeviceInfo,
) -> Result<Buckets> {
    let vectors = spec.vectors();
    // A bucket's matrices share the class of an unbounded batch (`bucket_of`); its own count
    // and largest order decide the class it runs.
    let settled = |nmax: usize, count: usize| {
        let class = select(algorithm, nmax, count, elem, vectors, device);
        (class, shaped_order(class, nmax))
    };
    Ok(match spec.layout() {
        EighLayout::Uniform { n, batch } if *n > 0 && *batch > 0 => {
            let (class, shaped) = settled(*n, *batch);
            vec![(class, shaped, *batch, None)]
        }
        EighLayout::Uniform { .. } => Vec::new(),
        EighLayout::Ragged { sizes } => spec
            .buckets::<_, i32>(|n| bucket_of(algorithm, n, elem, vectors, device))
            .ok_or(Error::TooLarge("eigh batch"))?
            .into_iter()
            .map(|(_, mut list)| {
                // Largest order first within a launch: neighbours (one warp, one wave of
                // blocks) then have similar orders and similar amounts of work.
                list.sort_by_key(|&i| std::cmp::Reverse(sizes[i as usize]));
                let (class, shaped) = settled(sizes[list[0] as usize], list.len());
                (class, shaped, list.len(), Some(list))
            })
            .collect(),
    })
}

/// The launch groups a plan of `spec` with `elem`-byte floats makes on a device described by
/// `info`: each group's class, matrix count and the order its launches are shaped for (the
/// largest order of the group; Jacobi: its padded order), without a device. The classes and
/// counts are what [`CudaEighPlan::classes`] reports.
///
/// # Errors
/// [`Error::TooLarge`] when the batch's indices overflow the launch tables.
#[doc(hidden)]
pub fn eigh_launch_groups(
    spec: &EighSpec,
    elem: usize,
    algorithm: CudaEighAlgorithm,
    info: &DeviceInfo,
) -> Result<Vec<(EighClass, usize, usize)>> {
    Ok(buckets(spec, elem, algorithm, info)?
        .into_iter()
        .map(|(class, shaped, count, _)| (class, count, shaped))
        .collect())
}

impl Cuda {
    /// Sets a kernel's dynamic shared memory limit to the device's opt-in maximum.
    fn allow_max_shared(&self, f: KernelFn) -> Result<()> {
        // SAFETY: `f` is a live function; the value is the device's opt-in limit.
        unsafe {
            cudarc::driver::result::function::set_function_attribute(
                f.0,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                self.info.max_shared_per_block as i32,
            )
        }
        .call("cuFuncSetAttribute")
    }

    /// The launches of one bucket of `class` (its kernels loaded, compiled on first use; its
    /// workspace allocated into `workspace`).
    fn class_launches<T: Real>(
        &self,
        class: EighClass,
        bucket: &Bucket,
        modules: &mut Vec<Arc<Kernels>>,
        workspace: &mut Vec<DeviceMemory>,
    ) -> Result<Vec<ClassLaunch>> {
        let count = i32::try_from(bucket.count)
            .map_err(|_| Error::TooLarge("eigh batch over 2^31 matrices"))?;
        let desc = class.desc();
        let plan = desc.plan(class, bucket, &self.info)?;
        let kernel = EighKernel {
            class,
            dtype: T::DTYPE,
            vectors: bucket.vectors,
        };
        let kernels = match desc.program(&kernel) {
            Some(source) => {
                let module = self.variant_module(&kernel.name(), || source)?;
                let fns = kernel
                    .entries()
                    .iter()
                    .map(|e| module.get(e))
                    .collect::<Result<Vec<_>>>()?;
                modules.push(module);
                fns
            }
            None => vec![self.kernels.get(&kernel.name())?],
        };
        for &f in &kernels {
            self.allow_max_shared(f)?;
        }
        let gwork = match plan.workspace_bytes {
            0 => 0,
            bytes => {
                let memory = DeviceMemory::zeroed(&self.ctx, bytes)?;
                let ptr = memory.ptr();
                workspace.push(memory);
                ptr
            }
        };
        Ok(plan
            .launches
            .iter()
            .enumerate()
            .map(|(i, &shape)| ClassLaunch {
                class,
                kernel: kernels[shape.entry],
                shape,
                count,
                list: 0,
                gwork,
                first: i == 0,
            })
            .collect())
    }

    /// A plan as [`BatchedEigh::plan_eigh`], restricted to `algorithm`: with the host
    /// staging of [`BatchedEigh::eigh_host`], allocated here.
    ///
    /// # Errors
    /// As [`BatchedEigh::plan_eigh`].
    pub fn plan_eigh_with<T: Real>(
        &self,
        spec: &EighSpec,
        algorithm: CudaEighAlgorithm,
    ) -> Result<CudaEighPlan<T>> {
        let mut plan = self.plan_eigh_device(spec, algorithm)?;
        self.prepare_eigh_host(&mut plan)?;
        Ok(plan)
    }

    /// A plan for device buffers only ([`BatchedEigh::eigh`]): as
    /// [`Cuda::plan_eigh_with`] without the host staging (device copies of A, W and V and
    /// their pinned mirrors), which would double the device memory of a large batch kept on
    /// the device. Its [`BatchedEigh::eigh_host`] returns [`Error::PlanMismatch`] until
    /// [`Cuda::prepare_eigh_host`] allocates the staging. [`crate::Auto`] makes these for
    /// data on the CUDA device.
    ///
    /// # Errors
    /// As [`BatchedEigh::plan_eigh`].
    pub fn plan_eigh_device<T: Real>(
        &self,
        spec: &EighSpec,
        algorithm: CudaEighAlgorithm,
    ) -> Result<CudaEighPlan<T>> {
        let elem = std::mem::size_of::<T>();
        let offsets = spec.offsets(elem)?;
        // Per-matrix tables are built on the host before they go to the device.
        crate::limits::host_bytes(spec.batch(), 32, "eigh batch exceeds this machine's memory")?;
        if spec.max_order() > CUDA_EIGH_MAX_ORDER {
            return Err(Error::Unsupported {
                backend: BackendKind::Cuda,
                message: format!(
                    "eigh of order {} (the CUDA eigh takes n <= {CUDA_EIGH_MAX_ORDER}; \
                     use the CPU backend)",
                    spec.max_order()
                ),
            });
        }
        bind(&self.ctx)?;
        let vectors = spec.vectors();
        let stream = Stream::new(&self.ctx)?;
        let mut workspace = Vec::new();
        let mut modules = Vec::new();
        let mut launches = Vec::new();
        let mut tables = None;
        let uniform_n = match spec.layout() {
            EighLayout::Uniform { n, .. } => {
                i32::try_from(*n).map_err(|_| Error::TooLarge("order"))?
            }
            EighLayout::Ragged { .. } => 0,
        };
        let buckets = buckets(spec, elem, algorithm, &self.info)?;
        if let EighLayout::Ragged { sizes } = spec.layout() {
            let batch = sizes.len();
            let mut host: Vec<u8> = Vec::new();
            for i in 0..batch {
                host.extend_from_slice(&(offsets.slot(i).a_start as u64).to_ne_bytes());
            }
            for i in 0..batch {
                host.extend_from_slice(&(offsets.slot(i).w_start as u64).to_ne_bytes());
            }
            for &n in sizes {
                host.extend_from_slice(&(n as i32).to_ne_bytes());
            }
            for (_, _, _, list) in &buckets {
                host.extend_from_slice(bytemuck::cast_slice(list.as_deref().unwrap_or(&[])));
            }
            let memory = DeviceMemory::zeroed(&self.ctx, host.len())?;
            copy_to_device(&host, memory.ptr(), &stream)?;
            stream.synchronize()?;
            tables = Some(memory);
        }
        // The launch lists follow the three per-matrix tables, bucket after bucket.
        let mut list_at = tables
            .as_ref()
            .map_or(0, |t| t.ptr() + 20 * spec.batch() as u64);
        for (class, nmax, count, list) in &buckets {
            let bucket = Bucket {
                count: *count,
                nmax: *nmax,
                elem,
                vectors,
                a_len: offsets.a_len(),
                algorithm,
            };
            let mut group =
                self.class_launches::<T>(*class, &bucket, &mut modules, &mut workspace)?;
            if list.is_some() {
                for l in &mut group {
                    l.list = list_at;
                }
                list_at += 4 * *count as u64;
            }
            launches.extend(group);
        }
        let workspace = match workspace.len() {
            0 => None,
            _ => {
                // Launches run one after another on the plan's stream, so they can share the
                // largest workspace.
                workspace.sort_by_key(DeviceMemory::bytes);
                let big = workspace.pop();
                let ptr = big.as_ref().map_or(0, DeviceMemory::ptr);
                for l in launches.iter_mut().filter(|l| l.gwork != 0) {
                    l.gwork = ptr;
                }
                big
            }
        };
        Ok(CudaEighPlan {
            owner: self.id,
            batch: spec.batch(),
            offsets,
            vectors,
            uniform_n,
            algorithm,
            stream,
            _modules: modules,
            launches,
            tables,
            workspace,
            status: DeviceMemory::zeroed(&self.ctx, 8)?,
            status_host: PinnedHost::zeroed(&self.ctx, 2)?,
            info: self.alloc::<i32>(spec.batch())?,
            host: None,
            access: Access::new(&self.ctx)?,
        })
    }
}

impl<T: Real> BatchedEigh<T> for Cuda {
    type EighPlan = CudaEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<CudaEighPlan<T>> {
        self.plan_eigh_with(spec, CudaEighAlgorithm::SizeClasses)
    }

    fn eigh(
        &self,
        plan: &mut CudaEighPlan<T>,
        a: &CudaBuffer<T>,
        w: &mut CudaBuffer<T>,
        v: Option<&mut CudaBuffer<T>>,
    ) -> Result<()> {
        self.eigh_device(plan, &plan.stream, a, w, v)
    }

    fn eigh_on(
        &self,
        queue: &CudaQueue,
        plan: &mut CudaEighPlan<T>,
        a: &CudaBuffer<T>,
        w: &mut CudaBuffer<T>,
        v: Option<&mut CudaBuffer<T>>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.eigh_device(plan, &queue.stream, a, w, v)
    }

    fn eigh_host(
        &self,
        plan: &mut CudaEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        plan.check_shapes(a.len(), w.len(), v.as_ref().map(|v| v.len()))?;
        bind(&self.ctx)?;
        let mut host = plan.host.take().ok_or(Error::PlanMismatch(
            "eigh_host on a plan made for device buffers (Cuda::plan_eigh_device): call \
             Cuda::prepare_eigh_host first",
        ))?;
        // The info buffer is ordered with device-buffer calls on other queues in `run_host`.
        let result = plan.run_host(&mut host, a, w, v);
        plan.host = Some(host);
        result
    }

    fn eigh_info(&self, plan: &mut CudaEighPlan<T>, info: &mut [i32]) -> Result<()> {
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        check_len("info", plan.batch, info.len())?;
        // Waits for the last device-buffer call (the buffer's event); host calls synchronise
        // the plan's stream before they return.
        self.download(&plan.info, info)
    }
}

/// Input arrays at least this large go to the device straight from the caller's slice
/// (pageable copies, which the driver pipelines through its own pinned buffers) instead of
/// through a pinned mirror: pinning costs about as much per byte as a copy, and a mirror would
/// be one more host copy per call. Measured on the H200 (docs/benchmarks/eigh-classes-h200.md).
pub const DIRECT_STAGING_BYTES: usize = 16 << 20;

/// Environment variable: how `eigh_host` stages its arrays, read when a plan's host staging
/// is made (with the plan, or by [`Cuda::prepare_eigh_host`]): `direct` (no pinned mirror),
/// `pinned` (a pinned mirror, the whole batch in one pass), `chunked` (a pinned mirror and,
/// where the plan allows, the batch as a pipeline of chunks on several streams:
/// [`CudaEighPlan::host_chunks`]). Unset: `direct` from [`DIRECT_STAGING_BYTES`], `chunked`
/// below (on an H100, 1,582 x 12 x 12 f64 with vectors: 0.39-0.45 ms chunked, 0.49-0.53 ms in
/// one pass; docs/benchmarks/resident-h100.md).
pub const STAGING_ENV: &str = "MEGABATCH_CUDA_STAGING";

impl Cuda {
    /// The device-buffer call on `stream`, ordered through the buffers and the plan.
    fn eigh_device<T: Real>(
        &self,
        plan: &CudaEighPlan<T>,
        stream: &Stream,
        a: &CudaBuffer<T>,
        w: &mut CudaBuffer<T>,
        v: Option<&mut CudaBuffer<T>>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        plan.check_shapes(a.len(), w.len(), v.as_ref().map(|v| v.len()))?;
        bind(&self.ctx)?;
        let v_ptr = v.as_ref().map_or(0, |v| v.ptr());
        let uses = [
            Some((&plan.access, Mode::Write)),
            Some((&a.access, Mode::Read)),
            Some((&w.access, Mode::Write)),
            v.as_ref().map(|v| (&v.access, Mode::Write)),
            Some((&plan.info.access, Mode::Write)),
        ];
        enqueue_ordered(stream, &uses, || {
            plan.enqueue(stream, a.ptr(), w.ptr(), v_ptr)
        })
    }

    /// The largest eigh order of `T` this device's size classes take before the Jacobi
    /// fallback (f64 165, f32 235 with 227 KB of shared memory per block); [`crate::Auto`]
    /// sends no larger eigh to this backend, since the fallback is slower than the CPU.
    pub fn eigh_fast_max_order<T: Real>(&self) -> usize {
        EighClass::largest_fast_order(std::mem::size_of::<T>(), self.info.max_shared_per_block)
    }

    /// Allocates the host-call staging of a plan made by [`Cuda::plan_eigh_device`] (device
    /// arrays for A, W and V, and pinned mirrors below [`DIRECT_STAGING_BYTES`]), so that its
    /// [`BatchedEigh::eigh_host`] runs, allocating nothing. Plans of
    /// [`BatchedEigh::plan_eigh`] and [`Cuda::plan_eigh_with`] have it from the start: then
    /// this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_eigh_host<T: Real>(&self, plan: &mut CudaEighPlan<T>) -> Result<()> {
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        if plan.host.is_none() {
            bind(&self.ctx)?;
            let mut host = self.host_staging(&plan.offsets, plan.vectors)?;
            let chunked = std::env::var(STAGING_ENV).as_deref() != Ok("pinned");
            if host.a.is_pinned() && chunked {
                host.chunks = ChunkPipeline::for_plan(self, plan)?;
            }
            plan.host = Some(host);
        }
        Ok(())
    }

    fn host_staging<T: Real>(
        &self,
        offsets: &EighOffsets,
        vectors: bool,
    ) -> Result<HostStaging<T>> {
        let v_len = if vectors { offsets.a_len() } else { 0 };
        let direct = match std::env::var(STAGING_ENV).as_deref() {
            Ok("direct") => true,
            Ok("pinned" | "chunked") => false,
            _ => offsets.a_len() * std::mem::size_of::<T>() >= DIRECT_STAGING_BYTES,
        };
        let make = |len| {
            if direct {
                Staged::unpinned(&self.ctx, len)
            } else {
                Staged::zeroed(&self.ctx, len)
            }
        };
        Ok(HostStaging {
            a: make(offsets.a_len())?,
            w: make(offsets.w_len())?,
            v: make(v_len)?,
            chunks: None,
        })
    }
}

impl<T: Real> CudaEighPlan<T> {
    /// Host in, host out through the staging buffers. Pinned: one synchronisation, then the
    /// outputs leave the pinned mirrors only if the status is clean. Direct: the status is
    /// checked at a first synchronisation, before anything is copied into the caller's outputs.
    fn run_host(
        &mut self,
        host: &mut HostStaging<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        refuse_in_capture("host calls synchronise and cannot be captured into a graph")?;
        if let Some(mut pipe) = host.chunks.take() {
            let result = self.run_chunked(host, &mut pipe, a, w, v);
            host.chunks = Some(pipe);
            return result;
        }
        host.a.send(a, &self.stream)?;
        let v_dev = if self.vectors { host.v.ptr() } else { 0 };
        let plan_use = [
            Some((&self.access, Mode::Write)),
            Some((&self.info.access, Mode::Write)),
        ];
        enqueue_ordered(&self.stream, &plan_use, || {
            self.enqueue(&self.stream, host.a.ptr(), host.w.ptr(), v_dev)
        })?;
        if host.a.is_pinned() {
            host.w.fetch(&self.stream)?;
            if self.vectors {
                host.v.fetch(&self.stream)?;
            }
        }
        copy_to_host(
            self.status.ptr(),
            self.status_host.as_mut_slice(),
            &self.stream,
        )?;
        self.stream.synchronize()?;
        self.check_status()?;
        if host.a.is_pinned() {
            host.w.copy_received(w);
            if let Some(v) = v {
                host.v.copy_received(v);
            }
        } else {
            host.w.fetch_into(w, &self.stream)?;
            if let Some(v) = v {
                host.v.fetch_into(v, &self.stream)?;
            }
            self.stream.synchronize()?;
        }
        Ok(())
    }

    fn check_shapes(&self, a: usize, w: usize, v: Option<usize>) -> Result<()> {
        self.offsets.check(self.vectors, a, w, v)
    }

    /// Queues the status reset and one launch per bucket on `stream`; every launch writes its
    /// matrices' entries of `info`.
    fn enqueue(&self, stream: &Stream, a: u64, w: u64, v: u64) -> Result<()> {
        // 0x7f7f7f7f: larger than any matrix index, so atomicMin finds the first bad one.
        fill_bytes(self.status.ptr(), 0x7f, 8, stream)?;
        for l in &self.launches {
            let args = self.args(l, (a, w, v), self.status.ptr(), self.info.ptr());
            launch_class(l, &args, stream)?;
        }
        Ok(())
    }

    /// The kernel arguments of launch `l` on the arrays `(a, w, v)` (device addresses; `v` 0
    /// for values only), with its status word and per-matrix status at `status` and `info`.
    fn args(
        &self,
        l: &ClassLaunch,
        (a, w, v): (u64, u64, u64),
        status: u64,
        info: u64,
    ) -> EighArgs {
        let (a_start, w_start, order) = match &self.tables {
            Some(t) => {
                let batch = self.batch as u64;
                (t.ptr(), t.ptr() + 8 * batch, t.ptr() + 16 * batch)
            }
            None => (0, 0, 0),
        };
        EighArgs {
            a,
            w,
            v,
            a_start,
            w_start,
            order,
            list: l.list,
            gwork: l.gwork,
            status,
            info,
            count: l.count,
            uniform_n: self.uniform_n,
            nmax: l.shape.nmax,
            team: l.shape.team,
            vectors: i32::from(self.vectors),
            phase: l.shape.phase,
            layout: l.shape.layout,
        }
    }

    fn check_status(&self) -> Result<()> {
        let s = self.status_host.as_slice();
        if s[0] != 0x7f7f_7f7f {
            return Err(Error::NonFinite {
                matrix: s[0] as usize,
            });
        }
        if s[1] != 0x7f7f_7f7f {
            return Err(Error::NoConvergence {
                matrix: s[1] as usize,
            });
        }
        Ok(())
    }
}

/// Queues launch `l` with `args` on `stream`.
fn launch_class(l: &ClassLaunch, args: &EighArgs, stream: &Stream) -> Result<()> {
    let mut params: [*mut c_void; 1] = [arg(args)];
    // SAFETY: every eigh kernel takes one `MbEighArgs` (mirrored by `EighArgs`); a, w, v hold
    // the offsets' lengths (`check_shapes`; a chunk's addresses lie inside them), tables and
    // workspace are the plan's, and the caller keeps the buffers alive and ordered (events,
    // or `eigh_host`'s synchronisation).
    unsafe {
        launch(
            l.kernel.0,
            (l.shape.grid, 1, 1),
            l.shape.block,
            l.shape.shared,
            stream,
            &mut params,
        )
    }
}

impl<T: Real> PlanFootprint for CudaEighPlan<T> {
    /// The pinned status word, and the host staging's pinned mirrors of A, W and V (made with
    /// the plan, or by [`Cuda::prepare_eigh_host`] for [`Cuda::plan_eigh_device`]'s; none when
    /// the arrays go to the device directly, from [`DIRECT_STAGING_BYTES`]).
    fn scratch_bytes(&self) -> usize {
        let staging = self.host.as_ref().map_or(0, |h| {
            h.a.host_bytes()
                + h.w.host_bytes()
                + h.v.host_bytes()
                + h.chunks.as_ref().map_or(0, ChunkPipeline::host_bytes)
        });
        self.status_host.bytes() + staging
    }

    /// The ragged tables (offsets, orders and launch lists), the workspace the launches share
    /// (Jacobi matrices in global memory, rotation lists, split-class state), the status
    /// word, the per-matrix status (4 bytes a matrix), and with host staging the device
    /// arrays for A, W and V.
    fn device_bytes(&self) -> usize {
        let staging = self.host.as_ref().map_or(0, |h| {
            h.a.device_bytes()
                + h.w.device_bytes()
                + h.v.device_bytes()
                + h.chunks.as_ref().map_or(0, ChunkPipeline::device_bytes)
        });
        self.tables.as_ref().map_or(0, DeviceMemory::bytes)
            + self.workspace.as_ref().map_or(0, DeviceMemory::bytes)
            + self.status.bytes()
            + self.info.bytes()
            + staging
    }
}
