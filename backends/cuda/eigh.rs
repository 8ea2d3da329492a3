//! `BatchedEigh` on CUDA: parallel-ordering Jacobi (`kernels/eigh_jacobi.cu`), one team of
//! threads per matrix, matrices grouped into buckets of similar order, one launch per bucket.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys;

use super::driver::{
    arg, bind, bytes_for, copy_to_device, copy_to_host, fill_bytes, launch, DeviceMemory,
    DriverResultExt, PinnedHost, Staged, Stream,
};
use super::module::{KernelFn, Kernels};
use super::{Cuda, CudaBuffer};
use crate::{BatchedEigh, EighLayout, EighOffsets, EighSpec, Error, Real, Result};

/// Largest order the CUDA eigh accepts; larger matrices belong on the CPU backend (its
/// Householder/faer path), where Jacobi's O(n^3) per sweep times ~10 sweeps stops paying.
pub const CUDA_EIGH_MAX_ORDER: usize = 4096;
/// Threads per team when a matrix lives in the global workspace.
const GLOBAL_TEAM: usize = 512;
/// Fraction of device memory the global workspace may take (1 / this).
const WORKSPACE_SHARE: usize = 8;

/// One launch: the matrices of one bucket.
#[derive(Debug, Clone, Copy)]
struct BucketLaunch {
    /// Device address of this bucket's matrix indices (0: matrices 0..count in order).
    list: u64,
    count: i32,
    nmax: i32,
    team: i32,
    block: u32,
    grid: u32,
    shared: u32,
    /// Device address of the global workspace (0: matrices live in shared memory).
    gwork: u64,
}

/// Host-side staging for [`BatchedEigh::eigh_host`], allocated by the plan's first host call
/// (`v` is empty for a values-only plan).
struct HostStaging<T> {
    a: Staged<T>,
    w: Staged<T>,
    v: Staged<T>,
}

/// A CUDA eigh plan: its stream, the per-matrix tables and workspace on the device, launch
/// parameters per bucket, and a status word (first non-finite matrix, first unconverged).
///
/// Layouts as [`EighSpec`] (row-major `[batch, n, n]` or ragged, lower triangle read; `w`
/// ascending; eigenvectors as columns of `v`), `T` = f32 or f64. Algorithm: two-sided cyclic
/// Jacobi in the parallel (round-robin) ordering, Golub & Van Loan, *Matrix Computations*
/// (4th ed.) Alg. 8.5.1-8.5.3, with Demmel & Veselic's (1992) skip rule; at most 60 sweeps,
/// then [`Error::NoConvergence`] from `eigh_host`. Orders above [`CUDA_EIGH_MAX_ORDER`] are
/// rejected at plan time with [`Error::Unsupported`].
pub struct CudaEighPlan<T: Real> {
    owner: u64,
    batch: usize,
    offsets: EighOffsets,
    vectors: bool,
    uniform_n: i32,
    stream: Stream,
    kernel: KernelFn,
    _kernels: Arc<Kernels>,
    launches: Vec<BucketLaunch>,
    /// a_start (u64), w_start (u64), order (i32) per matrix, then the bucket lists (i32).
    tables: Option<DeviceMemory>,
    _workspace: Option<DeviceMemory>,
    status: DeviceMemory,
    status_host: PinnedHost<i32>,
    host: Option<HostStaging<T>>,
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

/// Threads per team: one per (pair, row) item of a rotation pass, but at most a warp up to
/// order 32, so small matrices synchronise with warp barriers only; up to 256 above.
fn team_size(nmax: usize) -> usize {
    let items = (nmax / 2 * nmax).next_power_of_two();
    if nmax <= 32 {
        items.clamp(4, 32)
    } else {
        items.clamp(64, 256)
    }
}

/// Dynamic shared memory of a CTA, the same layout `mb_eigh_jacobi` computes.
fn shared_bytes(elem: usize, nmax: usize, teams: usize, vectors: bool, in_global: bool) -> usize {
    let mats = if in_global {
        0
    } else {
        nmax * (nmax + 1) * if vectors { 2 } else { 1 }
    };
    let per_team = mats + 3 * nmax;
    let ints_at = (teams * per_team * elem).next_multiple_of(8);
    ints_at + teams * (2 * nmax + 4) * 4 + teams * 8
}

fn kernel_name<T: Real>() -> &'static str {
    if T::DTYPE == "f32" {
        "eigh_jacobi_f32"
    } else {
        "eigh_jacobi_f64"
    }
}

impl Cuda {
    /// Launch parameters for `count` matrices padded to `nmax`; allocates the global workspace
    /// into `workspace` when a matrix does not fit in shared memory.
    fn bucket_launch<T: Real>(
        &self,
        nmax: usize,
        count: usize,
        vectors: bool,
        workspace: &mut Vec<DeviceMemory>,
    ) -> Result<BucketLaunch> {
        let elem = std::mem::size_of::<T>();
        let team = team_size(nmax);
        // Warp-sized teams share a block; a larger team is the whole block, since its
        // __syncthreads barriers must not be shared with a team on another sweep.
        let block = if team <= 32 { 128 } else { team };
        let teams = block / team;
        let shared = shared_bytes(elem, nmax, teams, vectors, false);
        let count_i32 =
            i32::try_from(count).map_err(|_| Error::TooLarge("eigh batch over 2^31 matrices"))?;
        if shared <= self.info.max_shared_per_block {
            return Ok(BucketLaunch {
                list: 0,
                count: count_i32,
                nmax: nmax as i32,
                team: team as i32,
                block: block as u32,
                grid: super::blocks_for(count, teams)?,
                shared: shared as u32,
                gwork: 0,
            });
        }
        // One matrix per CTA in a global-memory slot; the grid loops over the bucket.
        let slot_bytes = bytes_for(nmax * (nmax + 1) * if vectors { 2 } else { 1 }, elem)?;
        let budget = self.info.total_memory / WORKSPACE_SHARE;
        let slots = count
            .min(2 * self.info.multiprocessors)
            .min((budget / slot_bytes).max(1));
        let memory = DeviceMemory::zeroed(
            &self.ctx,
            slots
                .checked_mul(slot_bytes)
                .ok_or(Error::TooLarge("eigh workspace"))?,
        )?;
        let gwork = memory.ptr();
        workspace.push(memory);
        Ok(BucketLaunch {
            list: 0,
            count: count_i32,
            nmax: nmax as i32,
            team: GLOBAL_TEAM as i32,
            block: GLOBAL_TEAM as u32,
            grid: slots as u32,
            shared: shared_bytes(elem, nmax, 1, vectors, true) as u32,
            gwork,
        })
    }
}

impl<T: Real> BatchedEigh<T> for Cuda {
    type EighPlan = CudaEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<CudaEighPlan<T>> {
        let elem = std::mem::size_of::<T>();
        let offsets = spec.offsets(elem)?;
        // Per-matrix tables are built on the host before they go to the device.
        crate::limits::host_bytes(spec.batch(), 32, "eigh batch exceeds this machine's memory")?;
        if spec.max_order() > CUDA_EIGH_MAX_ORDER {
            return Err(Error::Unsupported {
                backend: "cuda",
                message: format!(
                    "eigh of order {} (the CUDA Jacobi solver takes n <= {CUDA_EIGH_MAX_ORDER}; \
                     use the CPU backend)",
                    spec.max_order()
                ),
            });
        }
        bind(&self.ctx)?;
        let kernel = self.kernels.get(kernel_name::<T>())?;
        // SAFETY: `kernel` is a live function; the value is the device's opt-in limit.
        unsafe {
            cudarc::driver::result::function::set_function_attribute(
                kernel.0,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                self.info.max_shared_per_block as i32,
            )
        }
        .call("cuFuncSetAttribute")?;
        let vectors = spec.vectors();
        let stream = Stream::new(&self.ctx)?;
        let mut workspace = Vec::new();
        let mut launches = Vec::new();
        let mut tables = None;
        let mut uniform_n = 0;
        match spec.layout() {
            EighLayout::Uniform { n, batch } => {
                uniform_n = i32::try_from(*n).map_err(|_| Error::TooLarge("order"))?;
                if *n > 0 && *batch > 0 {
                    let nmax = *n + (*n & 1);
                    launches.push(self.bucket_launch::<T>(
                        nmax.max(2),
                        *batch,
                        vectors,
                        &mut workspace,
                    )?);
                }
            }
            EighLayout::Ragged { sizes } => {
                let batch = sizes.len();
                let mut buckets: std::collections::BTreeMap<usize, Vec<i32>> = Default::default();
                for (i, &n) in sizes.iter().enumerate() {
                    if n > 0 {
                        let i = i32::try_from(i).map_err(|_| Error::TooLarge("eigh batch"))?;
                        buckets
                            .entry(crate::eigh::bucket_order(n))
                            .or_default()
                            .push(i);
                    }
                }
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
                let lists_at = host.len();
                for list in buckets.values() {
                    host.extend_from_slice(bytemuck::cast_slice(list));
                }
                let memory = DeviceMemory::zeroed(&self.ctx, host.len())?;
                copy_to_device(&host, memory.ptr(), &stream)?;
                stream.synchronize()?;
                let mut at = lists_at;
                for (&nmax, list) in &buckets {
                    let mut l =
                        self.bucket_launch::<T>(nmax, list.len(), vectors, &mut workspace)?;
                    l.list = memory.ptr() + at as u64;
                    at += 4 * list.len();
                    launches.push(l);
                }
                tables = Some(memory);
            }
        }
        let workspace = match workspace.len() {
            0 => None,
            _ => {
                // Buckets run one after another on the plan's stream, so they can share the
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
            stream,
            kernel,
            _kernels: self.kernels.clone(),
            launches,
            tables,
            _workspace: workspace,
            status: DeviceMemory::zeroed(&self.ctx, 8)?,
            status_host: PinnedHost::zeroed(&self.ctx, 2)?,
            host: None,
        })
    }

    fn eigh(
        &self,
        plan: &mut CudaEighPlan<T>,
        a: &CudaBuffer<T>,
        w: &mut CudaBuffer<T>,
        v: Option<&mut CudaBuffer<T>>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        plan.check_shapes(a.len(), w.len(), v.as_ref().map(|v| v.len()))?;
        bind(&self.ctx)?;
        a.wait_on(&plan.stream)?;
        w.wait_on(&plan.stream)?;
        if let Some(v) = v.as_ref() {
            v.wait_on(&plan.stream)?;
        }
        let v_ptr = v.as_ref().map_or(0, |v| v.mem.ptr());
        plan.enqueue(a.mem.ptr(), w.mem.ptr(), v_ptr)?;
        a.used_by(&plan.stream)?;
        w.used_by(&plan.stream)?;
        if let Some(v) = v {
            v.used_by(&plan.stream)?;
        }
        Ok(())
    }

    fn eigh_host(
        &self,
        plan: &mut CudaEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        self.check_owner(plan.owner, "eigh plan from another backend instance")?;
        plan.check_shapes(a.len(), w.len(), v.as_ref().map(|v| v.len()))?;
        bind(&self.ctx)?;
        let mut host = match plan.host.take() {
            Some(h) => h,
            None => self.host_staging(&plan.offsets, plan.vectors)?,
        };
        let result = plan.run_host(&mut host, a, w, v);
        plan.host = Some(host);
        result
    }
}

impl Cuda {
    fn host_staging<T: Real>(
        &self,
        offsets: &EighOffsets,
        vectors: bool,
    ) -> Result<HostStaging<T>> {
        let v_len = if vectors { offsets.a_len() } else { 0 };
        Ok(HostStaging {
            a: Staged::zeroed(&self.ctx, offsets.a_len())?,
            w: Staged::zeroed(&self.ctx, offsets.w_len())?,
            v: Staged::zeroed(&self.ctx, v_len)?,
        })
    }
}

impl<T: Real> CudaEighPlan<T> {
    /// Host in, host out through the staging buffers: one synchronisation at the end.
    fn run_host(
        &mut self,
        host: &mut HostStaging<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        host.a.send(a, &self.stream)?;
        let v_dev = if self.vectors { host.v.ptr() } else { 0 };
        self.enqueue(host.a.ptr(), host.w.ptr(), v_dev)?;
        host.w.fetch(&self.stream)?;
        if self.vectors {
            host.v.fetch(&self.stream)?;
        }
        copy_to_host(
            self.status.ptr(),
            self.status_host.as_mut_slice(),
            &self.stream,
        )?;
        self.stream.synchronize()?;
        self.check_status()?;
        w.copy_from_slice(host.w.received());
        if let Some(v) = v {
            v.copy_from_slice(host.v.received());
        }
        Ok(())
    }

    fn check_shapes(&self, a: usize, w: usize, v: Option<usize>) -> Result<()> {
        self.offsets.check(self.vectors, a, w, v)
    }

    /// Queues the status reset and one launch per bucket on the plan's stream.
    fn enqueue(&mut self, a: u64, w: u64, v: u64) -> Result<()> {
        // 0x7f7f7f7f: larger than any matrix index, so atomicMin finds the first bad one.
        fill_bytes(self.status.ptr(), 0x7f, 8, &self.stream)?;
        let (a_start, w_start, order) = match &self.tables {
            Some(t) => {
                let batch = self.batch as u64;
                (t.ptr(), t.ptr() + 8 * batch, t.ptr() + 16 * batch)
            }
            None => (0, 0, 0),
        };
        let vectors = i32::from(self.vectors);
        let status = self.status.ptr();
        for l in &self.launches {
            let mut args: [*mut c_void; 14] = [
                arg(&a),
                arg(&w),
                arg(&v),
                arg(&a_start),
                arg(&w_start),
                arg(&order),
                arg(&l.list),
                arg(&l.count),
                arg(&self.uniform_n),
                arg(&l.nmax),
                arg(&l.team),
                arg(&vectors),
                arg(&l.gwork),
                arg(&status),
            ];
            // SAFETY: the arguments follow `eigh_jacobi_*`'s parameter list; a, w, v hold the
            // offsets' a_len / w_len / a_len elements (checked by `check_shapes`), the tables and
            // workspace belong to the plan, and the caller keeps the buffers alive and ordered
            // through their events or the stream synchronisation of `eigh_host`.
            unsafe {
                launch(
                    self.kernel.0,
                    (l.grid, 1, 1),
                    l.block,
                    l.shared,
                    &self.stream,
                    &mut args,
                )?;
            }
        }
        Ok(())
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
