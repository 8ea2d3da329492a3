//! `BatchedEigh` on wgpu: Householder tridiagonalisation + implicit QL, one matrix per
//! subgroup (`shaders/eigh/subgroup.wgsl`) on adapters with subgroups up to order 64, else
//! rows in private arrays (`shaders/eigh/warp.wgsl`) or the matrix in workgroup memory
//! (`shaders/eigh/block.wgsl`) wherever a matrix fits there, above that the matrix in a storage
//! workspace (`shaders/eigh/global.wgsl`) while its vectors fit workgroup memory, the
//! parallel-ordering Jacobi shader (`shaders/eigh/jacobi.wgsl`) below order 5 and beyond; a
//! team of invocations per matrix, matrices bucketed by order, one dispatch per bucket (the
//! global layout's buckets in waves of dispatches, bounded by its workspace), all in one
//! compute pass of one submission.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::bind::{BindCache, Binding};
use super::buffer::padded;
use super::command::{enqueue_dispatches, Dispatch};
use super::device::Context;
use super::eigh_global::{waves, EighGlobalShader};
use super::eigh_kernel::{EighShader, EighTridiagShader};
use super::eigh_subgroup::{EighSubgroupShader, SubgroupSizes, SUBGROUP_MAX_ORDER};
use super::error::unsupported;
use super::queue::WgpuQueue;
use super::wgsl::WgslFloat;
use super::{Wgpu, WgpuBuffer};
use crate::error::check_len;
use crate::{BatchedEigh, EighLayout, EighOffsets, EighSpec, Error, PlanFootprint, Real, Result};

/// Largest order the wgpu eigh accepts. Above it, Jacobi's O(n^3) per sweep on one workgroup
/// per matrix stops paying against the CPU's Householder/divide-and-conquer path, which
/// `Auto` uses there; the shader itself packs pair indices in 16 bits.
pub const WGPU_EIGH_MAX_ORDER: usize = 1024;

/// Largest order on Mesa's lavapipe (llvmpipe), which stops a shader invocation after 65,535
/// loop iterations in all (`LP_MAX_TGSI_LOOP_ITERATIONS` in Mesa's gallivm) and so would
/// return unconverged results for larger matrices; measured: order 112 still converges there,
/// 120 does not. Real GPUs have no such limit.
pub const LAVAPIPE_EIGH_MAX_ORDER: usize = 96;

/// Which algorithms a wgpu eigh plan may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WgpuEighAlgorithm {
    /// Householder tridiagonalisation + implicit QL for every bucket from
    /// [`TRIDIAG_MIN_ORDER`]: in workgroup memory ([`EighTridiagShader`], or the subgroup
    /// layout) where a matrix fits there, else with A and Q in storage memory
    /// ([`crate::backends::wgpu::EighGlobalShader`]) where its vectors fit; Jacobi below and
    /// beyond.
    #[default]
    SizeClasses,
    /// Parallel-order Jacobi at every order (the algorithm before size classes; kept to
    /// measure the classes against it).
    Jacobi,
    /// The tridiagonal shader with A and Q in workgroup memory wherever it fits (from order
    /// 1), Jacobi elsewhere: to measure one layout against the other.
    TridiagWorkgroup,
    /// The tridiagonal shader with rows of A and Q in each invocation's own arrays at every
    /// order, to measure it.
    TridiagRows,
    /// The subgroup layout (`shaders/eigh/subgroup.wgsl`) at every order it takes (up to
    /// [`crate::backends::wgpu::SUBGROUP_MAX_ORDER`]) on an adapter with subgroups, the size
    /// classes elsewhere: to measure it, including below [`SUBGROUP_ORDERS`].
    TridiagSubgroup,
    /// The global-memory layout (`shaders/eigh/global.wgsl`: A and Q in storage memory, one
    /// workgroup per matrix) at every order from [`TRIDIAG_MIN_ORDER`] where its vectors fit
    /// workgroup memory, the size classes elsewhere: to measure it against the workgroup
    /// layouts, and to test it at small orders (lavapipe stops at
    /// [`LAVAPIPE_EIGH_MAX_ORDER`]).
    TridiagGlobal,
}

/// Orders the size classes give to the subgroup layout (`shaders/eigh/subgroup.wgsl`) when
/// the adapter has `Features::SUBGROUP` (and [`crate::backends::wgpu::SUBGROUP_ENV`] does not
/// turn it off): the tridiagonal orders up to 64, the range issue 26 asks it for. Not yet
/// measured against the rows layout on a GPU (scripts/gpu-eigh-check.sh `wgpu` times both);
/// below order 5 Jacobi stays, as for the other layouts.
pub const SUBGROUP_ORDERS: std::ops::RangeInclusive<usize> = TRIDIAG_MIN_ORDER..=SUBGROUP_MAX_ORDER;

/// Orders the size classes give to the rows-in-private-arrays tridiagonal shader
/// (`shaders/eigh/warp.wgsl`); outside, A and Q in workgroup memory. Measured on an
/// H200 over Vulkan (docs/benchmarks/eigh-wgpu-h200.md): at batch 16384 the rows layout is
/// 1.1-2.8x (f32) and 1.4-4.3x (f64) faster from n = 12, 0.84-0.96x at n = 5-8 (f64 n = 8:
/// 1.46x); at batch 1024
/// 0.83-0.97x up to 32 (f32) and 1.4-3.3x from 48; 64 is the largest order measured.
pub const TRIDIAG_ROWS_ORDERS: std::ops::RangeInclusive<usize> = 12..=64;

/// Smallest order the size classes give to the tridiagonal shader: at n = 4 Jacobi was
/// 1.07-1.15x faster on an H200 (Vulkan), from n = 8 the tridiagonal shader 1.2-2.3x
/// (docs/benchmarks/eigh-wgpu-h200.md).
pub const TRIDIAG_MIN_ORDER: usize = 5;

/// The shader one bucket of a plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Subgroup(EighSubgroupShader),
    Tridiag(EighTridiagShader),
    Global(EighGlobalShader),
    Jacobi(EighShader),
}

/// What the choice of shader depends on besides the spec: workgroup memory in bytes,
/// invocations per workgroup, the subgroup sizes (`None`: no subgroups).
#[derive(Debug, Clone, Copy)]
struct Limits {
    workgroup_bytes: usize,
    invocations: usize,
    subgroups: Option<SubgroupSizes>,
}

impl Variant {
    fn choose(
        algorithm: WgpuEighAlgorithm,
        d: WgslFloat,
        n: usize,
        vectors: bool,
        lim: Limits,
    ) -> Self {
        let global = || {
            (n >= TRIDIAG_MIN_ORDER)
                .then(|| {
                    EighGlobalShader::for_order(d, n, vectors, lim.workgroup_bytes, lim.invocations)
                })
                .flatten()
        };
        let algorithm = match algorithm {
            WgpuEighAlgorithm::TridiagGlobal => match global() {
                Some(g) => return Variant::Global(g),
                None => WgpuEighAlgorithm::SizeClasses,
            },
            other => other,
        };
        let subgroup = |wanted: bool| {
            lim.subgroups
                .filter(|_| wanted)
                .and_then(|s| EighSubgroupShader::for_order(d, n, vectors, s, lim.invocations))
        };
        let on_subgroups = match algorithm {
            WgpuEighAlgorithm::SizeClasses => subgroup(SUBGROUP_ORDERS.contains(&n)),
            WgpuEighAlgorithm::TridiagSubgroup => subgroup(n <= SUBGROUP_MAX_ORDER),
            _ => None,
        };
        if let Some(s) = on_subgroups {
            return Variant::Subgroup(s);
        }
        let (max_wg, max_inv) = (lim.workgroup_bytes, lim.invocations);
        let tridiag = |rows| EighTridiagShader::for_order(d, n, vectors, rows, max_wg, max_inv);
        let tridiag = match algorithm {
            WgpuEighAlgorithm::SizeClasses | WgpuEighAlgorithm::TridiagSubgroup
                if n >= TRIDIAG_MIN_ORDER =>
            {
                tridiag(TRIDIAG_ROWS_ORDERS.contains(&n))
            }
            WgpuEighAlgorithm::SizeClasses
            | WgpuEighAlgorithm::TridiagSubgroup
            | WgpuEighAlgorithm::TridiagGlobal
            | WgpuEighAlgorithm::Jacobi => None,
            WgpuEighAlgorithm::TridiagWorkgroup => tridiag(false),
            WgpuEighAlgorithm::TridiagRows => tridiag(true),
        };
        if let Some(t) = tridiag {
            return Variant::Tridiag(t);
        }
        // Where no workgroup layout fits, the size classes keep the tridiagonal algorithm with
        // the matrix in storage memory; the forced workgroup layouts keep Jacobi there, as
        // before, so that they measure what they name.
        let sized = matches!(
            algorithm,
            WgpuEighAlgorithm::SizeClasses | WgpuEighAlgorithm::TridiagSubgroup
        );
        match global().filter(|_| sized) {
            Some(g) => Variant::Global(g),
            None => Variant::Jacobi(EighShader::for_order(d, n, vectors, max_wg)),
        }
    }

    /// How the size classes rank the shaders for one bucket: the workgroup-memory layouts
    /// (measured fastest where they fit), then the global one, then Jacobi.
    fn preference(&self) -> u8 {
        match self {
            Variant::Subgroup(_) | Variant::Tridiag(_) => 2,
            Variant::Global(_) => 1,
            Variant::Jacobi(_) => 0,
        }
    }

    /// The shader of a bucket after bucketing: matrices of orders up to `nmax`, padded to
    /// `padded` (a uniform batch: the same). The padded order's shader when it is a
    /// workgroup-memory one (fewer pipelines across plans); else the bucket's own largest
    /// order's shader where [`Variant::preference`] ranks it higher (`Auto` is told the largest
    /// order a workgroup-memory shader fits, which the padded order may exceed; with 48 KiB a
    /// bucket of f64 orders 961-980 pads to 992, past the global layout's); else the padded
    /// order's.
    fn select(
        algorithm: WgpuEighAlgorithm,
        d: WgslFloat,
        (nmax, padded): (usize, usize),
        vectors: bool,
        limits: Limits,
    ) -> Self {
        let by_padded = Self::choose(algorithm, d, padded, vectors, limits);
        if by_padded.preference() == 2 || nmax == padded {
            return by_padded;
        }
        let by_nmax = Self::choose(algorithm, d, nmax, vectors, limits);
        if by_nmax.preference() > by_padded.preference() {
            by_nmax
        } else {
            by_padded
        }
    }

    fn teams(&self) -> usize {
        match self {
            Variant::Subgroup(s) => s.teams,
            Variant::Tridiag(s) => s.teams,
            Variant::Global(_) => 1,
            Variant::Jacobi(s) => s.teams,
        }
    }

    fn workgroup_size(&self) -> usize {
        match self {
            Variant::Subgroup(s) => s.workgroup_size(),
            Variant::Tridiag(s) => s.workgroup_size(),
            Variant::Global(s) => s.workgroup_size(),
            Variant::Jacobi(s) => s.workgroup_size(),
        }
    }

    fn storage_slot_len(&self) -> usize {
        match self {
            // The global layout's slots are per matrix in flight (see `plan_eigh_device`).
            Variant::Subgroup(_) | Variant::Tridiag(_) | Variant::Global(_) => 0,
            Variant::Jacobi(s) => s.storage_slot_len(),
        }
    }

    fn key(&self) -> String {
        match self {
            Variant::Subgroup(s) => s.key(),
            Variant::Tridiag(s) => s.key(),
            Variant::Global(s) => s.key(),
            Variant::Jacobi(s) => s.key(),
        }
    }

    fn source(&self) -> String {
        match self {
            Variant::Subgroup(s) => s.source(),
            Variant::Tridiag(s) => s.source(),
            Variant::Global(s) => s.source(),
            Variant::Jacobi(s) => s.source(),
        }
    }
}

/// The adapter's limits the shaders are chosen by.
fn limits(ctx: &Context) -> Limits {
    Limits {
        workgroup_bytes: ctx.summary.max_workgroup_storage as usize,
        invocations: ctx.summary.max_invocations as usize,
        subgroups: ctx.summary.subgroup_range(),
    }
}

/// The largest order among the matrices `list` of a ragged batch of orders `sizes`.
fn largest(sizes: &[usize], list: &[u32]) -> usize {
    list.iter().map(|&i| sizes[i as usize]).max().unwrap_or(0)
}

/// The dispatches a plan of `spec` makes on an adapter with `max_workgroup_storage` bytes of
/// workgroup memory and `max_invocations` invocations per workgroup and no subgroups: each
/// dispatch's shader (its cache key, as [`WgpuEighPlan::shaders`] names it) and matrix count,
/// without an adapter.
///
/// # Errors
/// [`Error::TooLarge`] when the batch's indices overflow 32 bits.
#[doc(hidden)]
pub fn eigh_dispatch_shaders(
    spec: &EighSpec,
    dtype: WgslFloat,
    algorithm: WgpuEighAlgorithm,
    max_workgroup_storage: usize,
    max_invocations: usize,
) -> Result<Vec<(String, usize)>> {
    eigh_dispatch_shaders_with(
        spec,
        dtype,
        algorithm,
        max_workgroup_storage,
        max_invocations,
        None,
    )
}

/// [`eigh_dispatch_shaders`] on an adapter with subgroups of `subgroups` (`None`: without
/// `Features::SUBGROUP`).
///
/// # Errors
/// [`Error::TooLarge`] when the batch's indices overflow 32 bits.
#[doc(hidden)]
pub fn eigh_dispatch_shaders_with(
    spec: &EighSpec,
    dtype: WgslFloat,
    algorithm: WgpuEighAlgorithm,
    max_workgroup_storage: usize,
    max_invocations: usize,
    subgroups: Option<SubgroupSizes>,
) -> Result<Vec<(String, usize)>> {
    let lim = Limits {
        workgroup_bytes: max_workgroup_storage,
        invocations: max_invocations,
        subgroups,
    };
    let vectors = spec.vectors();
    Ok(match spec.layout() {
        EighLayout::Uniform { n, batch } if *n > 0 && *batch > 0 => {
            vec![(
                Variant::select(algorithm, dtype, (*n, *n), vectors, lim).key(),
                *batch,
            )]
        }
        EighLayout::Uniform { .. } => Vec::new(),
        EighLayout::Ragged { sizes } => spec
            .buckets::<_, u32>(crate::eigh::bucket_order)
            .ok_or(Error::TooLarge("eigh batch exceeds 32-bit shader indices"))?
            .into_iter()
            .map(|(padded, list)| {
                let nmax = largest(sizes, &list);
                let shader = Variant::select(algorithm, dtype, (nmax, padded), vectors, lim);
                (shader.key(), list.len())
            })
            .collect(),
    })
}

/// Largest workspace of the Jacobi shader's storage slots (matrices that do not fit in
/// workgroup memory), in bytes; the global layout has its own
/// ([`Wgpu::set_eigh_workspace_budget`]).
const WORKSPACE_BUDGET: usize = 256 << 20;

const BINDINGS: [Binding; 8] = [
    Binding::Read,      // a
    Binding::ReadWrite, // w
    Binding::ReadWrite, // v
    Binding::Read,      // tables
    Binding::ReadWrite, // work
    Binding::ReadWrite, // status
    Binding::Uniform,   // params
    Binding::ReadWrite, // info
];

/// Buffers for [`BatchedEigh::eigh_host`]: device copies of a, w, v and one staging buffer
/// holding status, w and v for a single mapping per call. Made with the plan
/// ([`BatchedEigh::plan_eigh`], [`Wgpu::plan_eigh_with`]) or by [`Wgpu::prepare_eigh_host`]
/// for a plan of [`Wgpu::plan_eigh_device`].
struct HostStaging {
    a: wgpu::Buffer,
    w: wgpu::Buffer,
    v: wgpu::Buffer,
    staging: wgpu::Buffer,
    groups: Vec<wgpu::BindGroup>,
}

/// A wgpu eigh plan: pipelines, per-matrix tables, workspace, status word, the per-matrix
/// status array ([`WgpuEighPlan::info`]) and, unless made by [`Wgpu::plan_eigh_device`], the
/// host staging of [`BatchedEigh::eigh_host`].
///
/// Layouts as [`EighSpec`] (row-major `[batch, n, n]` or ragged, lower triangle read; `w`
/// ascending; eigenvectors as columns of `v`), `T` = f32, or f64 on adapters with
/// `SHADER_F64`. Algorithms by order (see [`WgpuEighAlgorithm`]): Householder
/// tridiagonalisation + implicit QL (EISPACK tql2, at most 30 iterations per eigenvalue) where a
/// matrix fits workgroup memory, or with the matrix in a storage workspace (one slot per matrix
/// in flight, at most [`Wgpu::set_eigh_workspace_budget`]'s bytes) where its vectors do, else
/// two-sided cyclic Jacobi in the parallel (round-robin) ordering, Golub & Van Loan, *Matrix
/// Computations* (4th ed.) Alg. 8.5.1-8.5.3, Demmel & Veselic's (1992) skip rule, at most 60
/// sweeps; the same as the CUDA backend's. Every shader
/// writes each of its matrices' status to [`WgpuEighPlan::info`] in the same dispatch
/// ([`crate::EIGH_SOLVED`], [`crate::EIGH_NON_FINITE`], [`crate::EIGH_NO_CONVERGENCE`]) and
/// fills a failed matrix's eigenvalues and eigenvectors with NaN: device-buffer `eigh` (no
/// readback: it does not wait for the GPU) reports bad matrices only there; `eigh_host`
/// returns [`Error::NonFinite`] or [`Error::NoConvergence`].
pub struct WgpuEighPlan<T: Real> {
    ctx: Arc<Context>,
    offsets: EighOffsets,
    vectors: bool,
    /// One dispatch per bucket of matrix orders (the global layout's: one per wave), with its
    /// parameters.
    dispatches: Vec<Dispatch>,
    /// The shader of each bucket (its cache key).
    shaders: Vec<String>,
    params: Vec<wgpu::Buffer>,
    tables: wgpu::Buffer,
    work: wgpu::Buffer,
    status: wgpu::Buffer,
    dummy_v: wgpu::Buffer,
    /// Per-matrix status codes (`[batch]` i32), written by every dispatch.
    info: WgpuBuffer<i32>,
    /// Mappable copy of `info` for [`BatchedEigh::eigh_info`].
    info_staging: wgpu::Buffer,
    bound: BindCache<3>,
    host: Option<HostStaging>,
    _t: std::marker::PhantomData<T>,
}

impl<T: Real> std::fmt::Debug for WgpuEighPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuEighPlan")
            .field("dtype", &T::DTYPE)
            .field("vectors", &self.vectors)
            .field("shaders", &self.shaders)
            .finish()
    }
}

fn dtype<T: Real>() -> WgslFloat {
    WgslFloat::of::<T>().expect("Real is f32 or f64")
}

/// Bytes of the status word at the start of the staging buffer, padded to the map alignment.
const STATUS_BYTES: u64 = 8;

impl Wgpu {
    /// The largest order for which the size classes run a workgroup-memory tridiagonal shader
    /// on this adapter (with eigenvectors: A and its workspace fit one workgroup's memory), or
    /// 0 when the adapter cannot run `T` at all (f64 without `SHADER_F64`); [`crate::Auto`]'s
    /// model of wgpu ends here. Above it the plan runs the global-memory layout
    /// ([`WgpuEighAlgorithm::TridiagGlobal`]), then the parallel-order Jacobi shader, which was
    /// slower than the CPU backend there (measured on an H200,
    /// docs/benchmarks/eigh-wgpu-h200.md). The global layout is not counted: it has not been
    /// timed on a GPU yet (`scripts/gpu-eigh-check.sh BUNDLE OUT wgpu` times it at n = 64-256
    /// beside CUDA), so `Auto` keeps those orders where its measurements put them.
    pub fn eigh_fast_max_order<T: Real>(&self) -> usize {
        let summary = &self.ctx.summary;
        let d = dtype::<T>();
        if d == WgslFloat::F64 && !summary.f64 {
            return 0;
        }
        let cap = if summary.is_llvmpipe() {
            LAVAPIPE_EIGH_MAX_ORDER
        } else {
            WGPU_EIGH_MAX_ORDER
        };
        let fits = |n| {
            matches!(
                Variant::select(
                    WgpuEighAlgorithm::SizeClasses,
                    d,
                    (n, n),
                    true,
                    limits(&self.ctx)
                ),
                Variant::Tridiag(_) | Variant::Subgroup(_)
            )
        };
        (TRIDIAG_MIN_ORDER..=cap)
            .take_while(|&n| fits(n))
            .last()
            .unwrap_or(TRIDIAG_MIN_ORDER - 1)
    }

    /// Allocates the host-call buffers of a plan made by [`Wgpu::plan_eigh_device`] (device
    /// copies of A, W, V and the mapped staging buffer), so that its
    /// [`BatchedEigh::eigh_host`] runs. Plans of [`BatchedEigh::plan_eigh`] and
    /// [`Wgpu::plan_eigh_with`] have them from the start: then this does nothing.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] for a plan of another backend instance; [`Error::Device`] when
    /// the allocation fails.
    pub fn prepare_eigh_host<T: Real>(&self, plan: &mut WgpuEighPlan<T>) -> Result<()> {
        self.check_owner(&plan.ctx, "eigh plan from another backend instance")?;
        if plan.host.is_none() {
            plan.host = Some(plan.host_staging()?);
        }
        Ok(())
    }

    /// Sets the most bytes the workspace of one eigh plan's global-memory layout may take
    /// (default [`crate::backends::wgpu::GLOBAL_WORKSPACE_BUDGET`], 1 GiB): a bucket whose
    /// matrices' slots (order^2 elements each) exceed it runs in several dispatches, as many
    /// matrices in flight in each as the budget holds (at least one). wgpu does not report a
    /// device's memory: lower it on small GPUs, raise it to keep more matrices in flight.
    /// Applies to plans made afterwards, on every clone of this handle.
    pub fn set_eigh_workspace_budget(&self, bytes: usize) {
        self.ctx
            .eigh_workspace_budget
            .store(bytes, Ordering::Relaxed);
    }

    /// [`BatchedEigh::plan_eigh`] with a choice of algorithm (the default is
    /// [`WgpuEighAlgorithm::SizeClasses`]), with the host staging of
    /// [`BatchedEigh::eigh_host`] allocated here.
    ///
    /// # Errors
    /// As [`BatchedEigh::plan_eigh`].
    pub fn plan_eigh_with<T: Real>(
        &self,
        spec: &EighSpec,
        algorithm: WgpuEighAlgorithm,
    ) -> Result<WgpuEighPlan<T>> {
        let mut plan = self.plan_eigh_device(spec, algorithm)?;
        self.prepare_eigh_host(&mut plan)?;
        Ok(plan)
    }

    /// A plan for device buffers only ([`BatchedEigh::eigh`]): as [`Wgpu::plan_eigh_with`]
    /// without the host staging (device copies of A, W, V and a mappable buffer as large as
    /// the outputs). Its [`BatchedEigh::eigh_host`] returns [`Error::PlanMismatch`] until
    /// [`Wgpu::prepare_eigh_host`]. [`crate::Auto`] makes these for data on the wgpu device.
    ///
    /// # Errors
    /// As [`BatchedEigh::plan_eigh`].
    pub fn plan_eigh_device<T: Real>(
        &self,
        spec: &EighSpec,
        algorithm: WgpuEighAlgorithm,
    ) -> Result<WgpuEighPlan<T>> {
        let ctx = &self.ctx;

        ctx.check()?;
        let elem = std::mem::size_of::<T>();
        let offsets = spec.offsets(elem)?;
        let d = dtype::<T>();
        if d == WgslFloat::F64 && !ctx.summary.f64 {
            return Err(unsupported(format!(
                "f64 eigh: adapter {} lacks SHADER_F64",
                ctx.summary.name
            )));
        }
        if spec.max_order() > WGPU_EIGH_MAX_ORDER {
            return Err(unsupported(format!(
                "eigh of order {} (the wgpu Jacobi solver takes n <= {WGPU_EIGH_MAX_ORDER}; \
                 use the CPU backend)",
                spec.max_order()
            )));
        }
        if ctx.summary.is_llvmpipe() && spec.max_order() > LAVAPIPE_EIGH_MAX_ORDER {
            return Err(unsupported(format!(
                "eigh of order {} on lavapipe (n <= {LAVAPIPE_EIGH_MAX_ORDER}: llvmpipe stops \
                 shaders after 65,535 loop iterations)",
                spec.max_order()
            )));
        }
        let a_bytes = offsets
            .a_len()
            .checked_mul(elem)
            .ok_or(Error::TooLarge("eigh input size overflows usize"))?;
        ctx.check_binding(
            a_bytes,
            "eigh batch exceeds the adapter's largest storage binding",
        )?;
        if offsets.a_len() >= u32::MAX as usize || spec.batch() >= u32::MAX as usize {
            return Err(Error::TooLarge("eigh batch exceeds 32-bit shader indices"));
        }
        crate::limits::host_bytes(spec.batch(), 16, "eigh batch exceeds this machine's memory")?;
        ctx.check_binding(
            4 * spec.batch(),
            "eigh batch's status array exceeds the adapter's largest storage binding",
        )?;
        let vectors = spec.vectors();
        // (shader, params, slots of workspace) per bucket; tables: ragged triples, then lists.
        let mut buckets: Vec<(Variant, [u32; 4])> = Vec::new();
        let mut tables: Vec<u32> = Vec::new();
        match spec.layout() {
            EighLayout::Uniform { n, batch } => {
                if *batch > 0 && *n > 0 {
                    let shader = Variant::select(algorithm, d, (*n, *n), vectors, limits(ctx));
                    buckets.push((shader, [*batch as u32, u32::MAX, *n as u32, 0]));
                }
            }
            EighLayout::Ragged { sizes } => {
                for (i, &n) in sizes.iter().enumerate() {
                    let slot = offsets.slot(i);
                    tables.extend([slot.a_start as u32, slot.w_start as u32, n as u32]);
                }
                let lists: Vec<(usize, Vec<u32>)> = spec
                    .buckets(crate::eigh::bucket_order)
                    .ok_or(Error::TooLarge("eigh batch exceeds 32-bit shader indices"))?;
                for (padded, list) in lists {
                    let nmax = largest(sizes, &list);
                    let shader =
                        Variant::select(algorithm, d, (nmax, padded), vectors, limits(ctx));
                    let at = tables.len() as u32;
                    buckets.push((shader, [list.len() as u32, at, 0, 1]));
                    tables.extend(list);
                }
            }
        }
        let mut dispatches = Vec::with_capacity(buckets.len());
        let mut params_bufs = Vec::with_capacity(buckets.len());
        let mut work_len = 1usize;
        let max_workgroups = ctx.summary.max_workgroups_per_dim as usize;
        for (shader, params) in &buckets {
            if shader.workgroup_size() > ctx.summary.max_invocations as usize {
                return Err(unsupported(format!(
                    "eigh needs workgroups of {} invocations; the adapter allows {}",
                    shader.workgroup_size(),
                    ctx.summary.max_invocations
                )));
            }
            let pipeline = ctx.pipeline(&shader.key(), &BINDINGS, || shader.source())?;
            let count = params[0] as usize;
            if let Variant::Global(g) = shader {
                // One workspace slot per matrix in flight; more matrices than slots: waves of
                // dispatches over the bucket's list (a uniform batch gets one in `tables`).
                let budget = ctx.eigh_workspace_budget.load(Ordering::Relaxed);
                let max_buffer = ctx.device.limits().max_buffer_size;
                let slots = g.slots(
                    count,
                    elem,
                    budget,
                    ctx.summary.max_storage_binding,
                    max_buffer,
                    max_workgroups,
                )?;
                work_len = work_len.max(slots * g.slot_len());
                let mut params = *params;
                if slots < count && params[1] == u32::MAX {
                    params[1] = tables.len() as u32;
                    tables.extend(0..count as u32);
                }
                for (first, here) in waves(count, slots) {
                    let mut wave = params;
                    wave[0] = here as u32;
                    if params[1] != u32::MAX {
                        wave[1] = params[1] + first as u32;
                    }
                    dispatches.push(Dispatch {
                        pipeline: Arc::clone(&pipeline),
                        workgroups: here as u32,
                    });
                    params_bufs.push(ctx.uniform_buffer(bytemuck::cast_slice(&wave))?);
                }
                continue;
            }
            let groups = count.div_ceil(shader.teams());
            let mut workgroups = groups.min(max_workgroups);
            if shader.storage_slot_len() > 0 {
                let slot = shader.storage_slot_len() * elem;
                let budget = WORKSPACE_BUDGET.min(ctx.summary.max_storage_binding as usize);
                workgroups = workgroups.min((budget / slot).max(1));
                if workgroups * slot > ctx.summary.max_storage_binding as usize {
                    return Err(Error::TooLarge(
                        "one eigh workspace slot exceeds the adapter's largest storage binding",
                    ));
                }
                work_len = work_len.max(workgroups * shader.storage_slot_len());
            }
            dispatches.push(Dispatch {
                pipeline,
                workgroups: workgroups as u32,
            });
            params_bufs.push(ctx.uniform_buffer(bytemuck::cast_slice(params))?);
        }
        if tables.len() >= u32::MAX as usize {
            return Err(Error::TooLarge("eigh batch exceeds 32-bit shader indices"));
        }
        let tables_buf = ctx.storage_buffer("eigh tables", tables.len().max(1), 4)?;
        ctx.write(&tables_buf, bytemuck::cast_slice(&tables))?;
        Ok(WgpuEighPlan {
            ctx: Arc::clone(ctx),
            offsets,
            vectors,
            dispatches,
            shaders: buckets.iter().map(|(v, _)| v.key()).collect(),
            params: params_bufs,
            tables: tables_buf,
            work: ctx.storage_buffer("eigh workspace", work_len, elem)?,
            status: ctx.storage_buffer("eigh status", 2, 4)?,
            dummy_v: ctx.storage_buffer("eigh no vectors", 1, elem)?,
            info: WgpuBuffer::alloc(ctx, spec.batch())?,
            info_staging: ctx.staging_buffer(4 * spec.batch() as u64)?,
            bound: BindCache::default(),
            host: None,
            _t: std::marker::PhantomData,
        })
    }
}

impl<T: Real> BatchedEigh<T> for Wgpu {
    type EighPlan = WgpuEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<WgpuEighPlan<T>> {
        self.plan_eigh_with(spec, WgpuEighAlgorithm::SizeClasses)
    }

    fn eigh(
        &self,
        plan: &mut WgpuEighPlan<T>,
        a: &WgpuBuffer<T>,
        w: &mut WgpuBuffer<T>,
        v: Option<&mut WgpuBuffer<T>>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "eigh plan from another backend instance")?;
        plan.offsets
            .check(plan.vectors, a.len, w.len, v.as_ref().map(|v| v.len))?;
        let key = [a.key(), w.key(), v.as_ref().map_or(0, |v| v.key())];
        if !plan.bound.holds(key) {
            let v_buf = v.as_ref().map_or(&plan.dummy_v, |v| &v.buffer);
            let groups = plan.bind_groups(&a.buffer, &w.buffer, v_buf)?;
            plan.bound.set(key, groups);
        }
        let groups = plan.bound.groups();
        plan.ctx
            .enqueue_ordered(|encoder| plan.enqueue(encoder, groups))
    }

    fn eigh_on(
        &self,
        queue: &WgpuQueue,
        plan: &mut WgpuEighPlan<T>,
        a: &WgpuBuffer<T>,
        w: &mut WgpuBuffer<T>,
        v: Option<&mut WgpuBuffer<T>>,
    ) -> Result<()> {
        self.check_queue(queue)?;
        self.eigh(plan, a, w, v)
    }

    fn eigh_host(
        &self,
        plan: &mut WgpuEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        self.check_owner(&plan.ctx, "eigh plan from another backend instance")?;
        plan.offsets
            .check(plan.vectors, a.len(), w.len(), v.as_ref().map(|v| v.len()))?;
        let ctx = Arc::clone(&plan.ctx);
        let host = plan.host.as_ref().ok_or(Error::PlanMismatch(
            "eigh_host on a plan made for device buffers (Wgpu::plan_eigh_device): call \
             Wgpu::prepare_eigh_host first",
        ))?;
        ctx.write(&host.a, bytemuck::cast_slice(a))?;
        let (w_bytes, v_bytes) = plan.byte_lens();
        let (w_at, v_at) = staging_offsets(w_bytes);
        ctx.enqueue_ordered(|encoder| {
            plan.enqueue(encoder, &host.groups);
            encoder.copy_buffer_to_buffer(&plan.status, 0, &host.staging, 0, STATUS_BYTES);
            if w_bytes > 0 {
                encoder.copy_buffer_to_buffer(&host.w, 0, &host.staging, w_at, padded(w_bytes));
            }
            if plan.vectors && v_bytes > 0 {
                encoder.copy_buffer_to_buffer(&host.v, 0, &host.staging, v_at, padded(v_bytes));
            }
        })?;
        let total = if plan.vectors {
            v_at + v_bytes
        } else {
            w_at + w_bytes
        };
        ctx.read_mapped(&host.staging, total, |bytes| {
            let status: [u32; 2] = bytemuck::pod_read_unaligned(&bytes[..8]);
            if status[0] != 0 {
                return Err(Error::NonFinite {
                    matrix: !status[0] as usize,
                });
            }
            if status[1] != 0 {
                return Err(Error::NoConvergence {
                    matrix: !status[1] as usize,
                });
            }
            let w_at = w_at as usize;
            bytemuck::cast_slice_mut::<T, u8>(w)
                .copy_from_slice(&bytes[w_at..w_at + w_bytes as usize]);
            if let Some(v) = v {
                let v_at = v_at as usize;
                bytemuck::cast_slice_mut::<T, u8>(v)
                    .copy_from_slice(&bytes[v_at..v_at + v_bytes as usize]);
            }
            Ok(())
        })?
    }

    fn eigh_info(&self, plan: &mut WgpuEighPlan<T>, info: &mut [i32]) -> Result<()> {
        self.check_owner(&plan.ctx, "eigh plan from another backend instance")?;
        check_len("info", plan.info.len, info.len())?;
        let bytes = std::mem::size_of_val(info) as u64;
        plan.ctx.enqueue_ordered(|encoder| {
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(
                    &plan.info.buffer,
                    0,
                    &plan.info_staging,
                    0,
                    padded(bytes),
                );
            }
        })?;
        plan.ctx
            .read_back(&plan.info_staging, bytemuck::cast_slice_mut(info))
    }
}

/// Where w and v start in the staging buffer (after the status word, 8-byte aligned so both
/// copies and the map range stay aligned).
fn staging_offsets(w_bytes: u64) -> (u64, u64) {
    let w_at = STATUS_BYTES;
    (w_at, (w_at + w_bytes).next_multiple_of(8))
}

impl<T: Real> WgpuEighPlan<T> {
    /// The per-matrix status of the last call on this plan, on the device: `[batch]` `i32` in
    /// batch order, [`crate::EIGH_SOLVED`] (0), [`crate::EIGH_NON_FINITE`] or
    /// [`crate::EIGH_NO_CONVERGENCE`]. Written by the eigh shaders themselves (no extra
    /// dispatch); zero before the first call and for empty matrices. Bind it in your own
    /// shaders (`WgpuBuffer::raw`, usage `STORAGE | COPY_SRC | COPY_DST`): wgpu's one queue
    /// orders your submissions after the eigh call's. [`BatchedEigh::eigh_info`] copies it to
    /// the host.
    pub fn info(&self) -> &WgpuBuffer<i32> {
        &self.info
    }

    /// Whether the plan has the host staging of [`BatchedEigh::eigh_host`] (made with the
    /// plan, or by [`Wgpu::prepare_eigh_host`] for a plan of [`Wgpu::plan_eigh_device`]).
    pub fn has_host_staging(&self) -> bool {
        self.host.is_some()
    }

    /// The shader of each bucket of orders, as a cache key (`eigh_subgroup/f32/n16/r1/w64/v1`,
    /// `eigh_tridiag/f32/n16/t16x4/v1`, `eigh_global/f32/n200/w256/v1`, `eigh_jacobi/...`), in
    /// dispatch order (a bucket of the global layout may run as several dispatches).
    pub fn shaders(&self) -> &[String] {
        &self.shaders
    }

    /// Dispatches one call makes: one per bucket, except that a bucket of the global layout
    /// with more matrices than its workspace holds runs as one dispatch per wave
    /// ([`Wgpu::set_eigh_workspace_budget`]).
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    fn byte_lens(&self) -> (u64, u64) {
        let elem = std::mem::size_of::<T>() as u64;
        (
            self.offsets.w_len() as u64 * elem,
            self.offsets.a_len() as u64 * elem,
        )
    }

    fn bind_groups(
        &self,
        a: &wgpu::Buffer,
        w: &wgpu::Buffer,
        v: &wgpu::Buffer,
    ) -> Result<Vec<wgpu::BindGroup>> {
        self.dispatches
            .iter()
            .zip(&self.params)
            .map(|(d, params)| {
                self.ctx.bind_group(
                    &d.pipeline,
                    &[
                        a,
                        w,
                        v,
                        &self.tables,
                        &self.work,
                        &self.status,
                        params,
                        &self.info.buffer,
                    ],
                )
            })
            .collect()
    }

    /// Clears the status word and enqueues every dispatch in one compute pass.
    fn enqueue(&self, encoder: &mut wgpu::CommandEncoder, groups: &[wgpu::BindGroup]) {
        encoder.clear_buffer(&self.status, 0, None);
        enqueue_dispatches(encoder, &self.dispatches, groups);
    }

    fn host_staging(&self) -> Result<HostStaging> {
        let ctx = &self.ctx;
        let elem = std::mem::size_of::<T>();
        let (w_bytes, v_bytes) = self.byte_lens();
        let a = ctx.storage_buffer("eigh a", self.offsets.a_len(), elem)?;
        let w = ctx.storage_buffer("eigh w", self.offsets.w_len(), elem)?;
        let v = if self.vectors {
            ctx.storage_buffer("eigh v", self.offsets.a_len(), elem)?
        } else {
            self.dummy_v.clone()
        };
        let (_, v_at) = staging_offsets(w_bytes);
        let staging = ctx.staging_buffer(v_at + if self.vectors { v_bytes } else { 0 })?;
        let groups = self.bind_groups(&a, &w, &v)?;
        Ok(HostStaging {
            a,
            w,
            v,
            staging,
            groups,
        })
    }
}

impl<T: Real> PlanFootprint for WgpuEighPlan<T> {
    /// The mappable read-back buffer of [`BatchedEigh::eigh_info`] (4 bytes a matrix, at
    /// least 4), and with host staging (made with the plan, or by
    /// [`Wgpu::prepare_eigh_host`] for [`Wgpu::plan_eigh_device`]'s) the mappable read-back
    /// buffer of host calls (status word, W and V).
    fn scratch_bytes(&self) -> usize {
        self.info_staging.size() as usize
            + self.host.as_ref().map_or(0, |h| h.staging.size() as usize)
    }

    /// The per-matrix tables and launch lists, the Jacobi and global-layout workspace, the
    /// status word, the per-matrix status, the parameters of each dispatch, the placeholder
    /// bound for V without eigenvectors, and with host staging the device copies of A, W and V.
    fn device_bytes(&self) -> usize {
        let host = self.host.as_ref().map_or(0, |h| {
            let v = if self.vectors { h.v.size() } else { 0 };
            h.a.size() + h.w.size() + v
        });
        let own = [
            &self.tables,
            &self.work,
            &self.status,
            &self.dummy_v,
            &self.info.buffer,
        ]
        .into_iter()
        .chain(&self.params)
        .map(wgpu::Buffer::size)
        .sum::<u64>();
        (own + host) as usize
    }
}
