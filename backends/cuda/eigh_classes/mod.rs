//! The size classes of the CUDA eigh, one file each, and the one function that picks a class
//! for a bucket of matrices ([`select`]).
//!
//! A class is a [`SizeClass`] descriptor: the orders it holds on a device
//! ([`SizeClass::shape`]), the buckets the size classes give it ([`SizeClass::takes`]: by
//! order and batch, and per [`CudaEighAlgorithm`]), its launches and workspace for a bucket
//! ([`SizeClass::plan`]), its NVRTC program and entry points, and the C++ `static_assert`s
//! that check those launch shapes and shared-memory sizes against the kernel source
//! ([`SizeClass::layout_checks`], compiled by the NVRTC test as the parameter structs' are).
//! [`REGISTRY`] lists them in order of preference; a new class is a file here, a line there
//! and its [`EighClass`] variant.
//!
//! Classes, by order (measurements in docs/benchmarks/eigh-classes-h200.md):
//! - `chains.rs`, 9 <= n <= 32 in large batches: a group of lanes reduces each matrix with its
//!   rows in registers, then one QL chain per lane, the rotations replayed on Q by the groups.
//! - `split.rs`, from [`SPLIT_MIN_ORDER`] in large batches while A fits a block's shared
//!   memory: the block classes' reduction, QL and replay as three kernels.
//! - `warp.rs`, n <= 32: a group of lanes per matrix, rows in registers, QL computed by every
//!   lane of the group.
//! - `block.rs`, 33 <= n while A fits one block's shared memory: a block per matrix.
//! - `dc.rs`, the orders above up to [`DC_MAX_ORDER`] = 4096, the CUDA eigh's limit (from 33
//!   under [`CudaEighAlgorithm::DivideConquer`]): Householder in global memory, divide and
//!   conquer on the tridiagonal matrix, a block per matrix with small shared memory (its
//!   per-order vectors in the workspace where they do not fit).
//! - `jacobi.rs`, only where the others cannot run (a device whose blocks cannot hold the
//!   divide-and-conquer class's tiles, 34 KiB f64 / 17 KiB f32) or forced by
//!   [`CudaEighAlgorithm::Jacobi`]: parallel-order Jacobi (its matrices then in a global
//!   workspace).

mod block;
mod chains;
mod dc;
mod jacobi;
mod split;
mod warp;

pub use chains::{chains_min_batch, CHAINS_MIN_BATCH_F32, CHAINS_MIN_BATCH_F64};
pub use dc::{DC_MAX_ORDER, DC_WORKSPACE_SHARE};
pub use split::{
    split_chains_shared_bytes, split_min_batch, split_state_words, SPLIT_MIN_BATCH_F32,
    SPLIT_MIN_BATCH_F64, SPLIT_MIN_ORDER, SPLIT_ROUNDS,
};
use warp::WARP_MAX_ORDER;

use super::adapter::DeviceInfo;
use super::eigh::CudaEighAlgorithm;
use super::eigh_kernel::{
    EighKernel, EIGH_BLOCK_SOURCE, EIGH_CHAINS_SOURCE, EIGH_DC_SOURCE, EIGH_QL_SOURCE,
    EIGH_SPLIT_SOURCE, EIGH_WARP_SOURCE,
};
use crate::Result;

/// The classes in order of preference: a bucket runs the first that holds its orders and
/// takes it.
const REGISTRY: [&dyn SizeClass; 6] = [
    &chains::Chains,
    &split::Split,
    &warp::Warp,
    &block::Block,
    &dc::Dc,
    &jacobi::Jacobi,
];

/// The algorithm and layout that takes one group of matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EighClass {
    /// `lanes` lanes per matrix, each holding a `row`-long row of A in registers (n <= row).
    Warp {
        /// Lanes per matrix: a power of two <= 32.
        lanes: usize,
        /// Register row length, >= the order.
        row: usize,
    },
    /// As `Warp` for the reduction, then one QL chain per lane: a block of 128 threads takes
    /// up to 32 matrices (the launch's `team`).
    Chains {
        /// Lanes per matrix in the reduction and the replay: 16 or 32.
        lanes: usize,
        /// Register row length, >= the order.
        row: usize,
    },
    /// One block of `32 (chunks + 1)` threads per matrix, A in shared memory (n <= 32
    /// chunks); the last warp runs QL's rotation chain.
    Block {
        /// Warps per block.
        chunks: usize,
    },
    /// The block classes' steps as three kernels: the reduction by a block of `32 chunks`
    /// threads per matrix (A in shared memory), QL by one lane per matrix, the recorded
    /// rotations replayed on Q by a block per matrix.
    Split {
        /// Warps per reduction and replay block (n <= 32 chunks).
        chunks: usize,
    },
    /// Divide and conquer (`kernels/eigh/dc.cu`), orders above the block classes to
    /// [`DC_MAX_ORDER`] (4096): blocked Householder tridiagonalisation in global memory,
    /// Cuppen's divide and conquer with warp QL leaves and GEMM merges, a blocked
    /// back-transformation; a block per matrix, the matrices in flight in slots of the plan's
    /// workspace (one n x n buffer each), the per-order vectors of a step in shared memory
    /// where they fit and in the slot above.
    DivideConquer,
    /// Parallel-order two-sided Jacobi (shared memory or the plan's global workspace): the
    /// fallback where no other class runs (a device whose blocks cannot hold the
    /// divide-and-conquer class's tiles), or forced by [`CudaEighAlgorithm::Jacobi`].
    Jacobi,
}

/// A bucket of matrices after bucketing, as a class plans its launches for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    /// Matrices in the bucket.
    pub count: usize,
    /// The order its launches are shaped for: the largest order in the bucket (classes
    /// that pad, [`SizeClass::pads`]: its padded order).
    pub nmax: usize,
    /// Bytes per element (4 or 8).
    pub elem: usize,
    /// Eigenvectors too.
    pub vectors: bool,
    /// Elements of A in the whole batch (a rotation list per matrix sits at its offset in A).
    pub a_len: usize,
    /// The plan's algorithm (divide and conquer: [`CudaEighAlgorithm::DivideConquerGlobal`]
    /// forces its global-memory layout).
    pub algorithm: CudaEighAlgorithm,
}

/// One launch of a bucket: which entry point of the class's program, its grid and block, and
/// the `MbEighArgs` fields that differ between launches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchShape {
    /// Index into [`EighKernel::entries`].
    pub entry: usize,
    /// Threads per block.
    pub block: u32,
    /// Blocks.
    pub grid: u32,
    /// Dynamic shared memory per block, in bytes.
    pub shared: u32,
    /// `MbEighArgs::nmax`.
    pub nmax: i32,
    /// `MbEighArgs::team`.
    pub team: i32,
    /// `MbEighArgs::phase`.
    pub phase: i32,
    /// `MbEighArgs::layout` (divide and conquer; 0 elsewhere).
    pub layout: i32,
}

/// What a class runs for one bucket: its launches in order, and the bytes of zeroed device
/// workspace they share (0: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClassPlan {
    /// The launches, in order.
    pub launches: Vec<LaunchShape>,
    /// Workspace bytes (`MbEighArgs::gwork`).
    pub workspace_bytes: usize,
}

/// One size class of the CUDA eigh (see the module docs).
pub(crate) trait SizeClass: Sync {
    /// Whether `class` is one of this descriptor's.
    fn owns(&self, class: EighClass) -> bool;

    /// The class of this family that holds matrices of order `n` (>= 1) of `elem`-byte floats
    /// on `device`, if any.
    fn shape(&self, n: usize, elem: usize, device: &DeviceInfo) -> Option<EighClass>;

    /// Whether `algorithm` gives this class a bucket of `count` matrices of largest order
    /// `nmax` that it holds.
    fn takes(
        &self,
        algorithm: CudaEighAlgorithm,
        nmax: usize,
        count: usize,
        elem: usize,
        vectors: bool,
    ) -> bool;

    /// Whether a bucket of this class holds matrices of one padded order
    /// ([`crate::eigh::bucket_order`]) rather than every order of the class.
    fn pads(&self) -> bool {
        false
    }

    /// Whether the class has been measured on a GPU against the CPU backend: only measured
    /// classes count for [`EighClass::largest_fast_order`] (the orders `Auto` sends to CUDA).
    fn measured(&self) -> bool {
        true
    }

    /// The launches and workspace of `class` for `bucket` on `device`.
    fn plan(&self, class: EighClass, bucket: &Bucket, device: &DeviceInfo) -> Result<ClassPlan>;

    /// Every variant of the family (for the NVRTC test).
    fn variants(&self) -> Vec<EighClass>;

    /// The program's name, e.g. `eigh_warp_f64_g16_r12_v`.
    fn name(&self, kernel: &EighKernel) -> String;

    /// The program's entry points in launch order (the name itself by default).
    fn entries(&self, kernel: &EighKernel) -> Vec<String> {
        vec![self.name(kernel)]
    }

    /// The NVRTC program of `kernel`, or `None` for a kernel of the main translation unit
    /// ([`super::KERNEL_SOURCES`]).
    fn program(&self, kernel: &EighKernel) -> Option<String>;

    /// C++ `static_assert`s that hold when compiled after `kernel`'s program (or the main
    /// translation unit): the launch shapes and shared-memory sizes [`SizeClass::plan`] gives
    /// at a few orders, against the kernel source's own constants and layout functions.
    fn layout_checks(&self, kernel: &EighKernel) -> String;
}

impl EighClass {
    /// This class's descriptor.
    pub(crate) fn desc(self) -> &'static dyn SizeClass {
        REGISTRY
            .into_iter()
            .find(|d| d.owns(self))
            .expect("every class is registered")
    }

    /// The class for order `n` (>= 1) of `elem`-byte floats in a large batch, given the
    /// largest dynamic shared memory one block may use.
    pub fn for_order(n: usize, elem: usize, max_shared: usize) -> Self {
        let device = DeviceInfo::with_shared(max_shared);
        select(
            CudaEighAlgorithm::SizeClasses,
            n,
            usize::MAX,
            elem,
            false,
            &device,
        )
    }

    /// The largest order of `elem`-byte floats a measured class other than Jacobi holds
    /// (above, the divide-and-conquer class, not yet measured on a GPU, or on a device too
    /// small for it the Jacobi fallback, on the H200 0.11-0.13x the CPU backend at n = 256).
    pub fn largest_fast_order(elem: usize, max_shared: usize) -> usize {
        let device = DeviceInfo::with_shared(max_shared);
        (1..=DC_MAX_ORDER)
            .rev()
            .find(|&n| {
                REGISTRY.into_iter().filter(|d| d.measured()).any(|d| {
                    d.shape(n, elem, &device)
                        .is_some_and(|c| c != EighClass::Jacobi)
                })
            })
            .unwrap_or(WARP_MAX_ORDER)
    }
}

/// The class `algorithm` runs a bucket of `count` matrices of largest order `nmax` (>= 1) of
/// `elem`-byte floats with on `device`: the first of [`REGISTRY`] that holds `nmax` and takes
/// the bucket. Called once per matrix with an unbounded count to bucket a batch (matrices of
/// one class share a bucket), then once per bucket with its real count.
pub(crate) fn select(
    algorithm: CudaEighAlgorithm,
    nmax: usize,
    count: usize,
    elem: usize,
    vectors: bool,
    device: &DeviceInfo,
) -> EighClass {
    REGISTRY
        .into_iter()
        .find_map(|d| {
            d.shape(nmax, elem, device)
                .filter(|_| d.takes(algorithm, nmax, count, elem, vectors))
        })
        .unwrap_or(EighClass::Jacobi)
}

/// The bucket of a matrix of order `n` (>= 1): the class a batch of unbounded size would run
/// it with, and for classes that pad its padded order (else 0).
pub(crate) fn bucket_of(
    algorithm: CudaEighAlgorithm,
    n: usize,
    elem: usize,
    vectors: bool,
    device: &DeviceInfo,
) -> (EighClass, usize) {
    let class = select(algorithm, n, usize::MAX, elem, vectors, device);
    let padded = if class.desc().pads() {
        crate::eigh::bucket_order(n)
    } else {
        0
    };
    (class, padded)
}

/// The order a bucket of `class` with largest order `nmax` is shaped for.
pub(crate) fn shaped_order(class: EighClass, nmax: usize) -> usize {
    if class.desc().pads() {
        crate::eigh::bucket_order(nmax).max(2)
    } else {
        nmax
    }
}

/// Every class's layout checks: `(kernel, static_asserts)` for every variant of every
/// registered class.
pub fn eigh_layout_checks() -> Vec<(EighKernel, String)> {
    let mut out = Vec::new();
    for desc in REGISTRY {
        for class in desc.variants() {
            for dtype in ["f32", "f64"] {
                for vectors in [true, false] {
                    let kernel = EighKernel {
                        class,
                        dtype,
                        vectors,
                    };
                    out.push((kernel, desc.layout_checks(&kernel)));
                }
            }
        }
    }
    out
}

/// One translation unit holding every eigh kernel source (the main translation unit's and each
/// class's, no instantiations) followed by `checks`: the layout checks need only the sources'
/// constants and `constexpr` layout functions, so one NVRTC compile checks every class.
pub fn eigh_layout_program(checks: &str) -> String {
    let mut s: String = super::KERNEL_SOURCES
        .iter()
        .map(|(name, text)| format!("// ---- {name}\n{text}\n"))
        .collect();
    for text in [
        EIGH_QL_SOURCE,
        EIGH_WARP_SOURCE,
        EIGH_CHAINS_SOURCE,
        EIGH_BLOCK_SOURCE,
        EIGH_SPLIT_SOURCE,
        EIGH_DC_SOURCE,
    ] {
        s.push_str(text);
        s.push('\n');
    }
    s.push_str(checks);
    s
}

/// The launches the registry plans for one bucket of `class` (`count` matrices of largest
/// order `nmax`, `a_len` elements of A in the batch) with `algorithm` on `device`, for the
/// kernel emulation (`scripts/cuda_emu/eigh_emu.cpp`'s `plan:` kind), which then runs exactly
/// these shapes: a line `ENTRY BLOCK GRID SHARED NMAX TEAM PHASE LAYOUT` per launch, and the
/// workspace's bytes.
///
/// # Errors
/// As the class's planning: [`crate::Error::TooLarge`] for sizes that overflow.
#[doc(hidden)]
pub fn eigh_bucket_launches(
    kernel: &EighKernel,
    count: usize,
    nmax: usize,
    a_len: usize,
    algorithm: CudaEighAlgorithm,
    device: &DeviceInfo,
) -> Result<(Vec<String>, usize)> {
    let desc = kernel.class.desc();
    let bucket = Bucket {
        count,
        nmax,
        elem: kernel.elem(),
        vectors: kernel.vectors,
        a_len,
        algorithm,
    };
    let plan = desc.plan(kernel.class, &bucket, device)?;
    let entries = desc.entries(kernel);
    let lines = plan
        .launches
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {} {} {} {}",
                entries[l.entry], l.block, l.grid, l.shared, l.nmax, l.team, l.phase, l.layout
            )
        })
        .collect();
    Ok((lines, plan.workspace_bytes))
}

/// `static_assert(expr == value, "what")` as a line of C++.
pub(crate) fn assert_eq_line(expr: &str, value: usize, what: &str) -> String {
    format!("static_assert({expr} == {value}, \"{what}: differs from the Rust launch\");\n")
}

/// A device with `max_shared` bytes of shared memory per block and an H100's other limits,
/// for the order-only questions of [`EighClass::for_order`].
impl DeviceInfo {
    pub(crate) fn with_shared(max_shared: usize) -> Self {
        Self {
            name: String::new(),
            compute_capability: (9, 0),
            multiprocessors: 132,
            max_shared_per_block: max_shared,
            total_memory: 80 << 30,
            driver_version: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_registered_once_and_owns_its_variants() {
        for desc in REGISTRY {
            for class in desc.variants() {
                let owners = REGISTRY.into_iter().filter(|d| d.owns(class)).count();
                assert_eq!(owners, 1, "{class:?}");
            }
        }
        assert!(jacobi::Jacobi.owns(EighClass::Jacobi));
    }

    #[test]
    fn classes_cover_every_order_with_room_for_it() {
        let shared = 227 * 1024;
        let device = DeviceInfo::with_shared(shared);
        for elem in [4, 8] {
            for n in (1..=600).chain([1023, 1024, 1858, 3111, 4095, 4096]) {
                let class = EighClass::for_order(n, elem, shared);
                assert!(class.desc().shape(n, elem, &device).is_some(), "{n}");
                assert_ne!(
                    class,
                    EighClass::Jacobi,
                    "order {n} elem {elem} fell to Jacobi"
                );
            }
            assert_eq!(
                EighClass::for_order(513, elem, shared),
                EighClass::DivideConquer
            );
        }
        // Blocks too small for divide and conquer's f64 tiles: Jacobi above the block classes.
        assert_eq!(EighClass::for_order(300, 8, 32 * 1024), EighClass::Jacobi);
        // 227 KB of shared memory: A fits to f64 165, f32 235 (the block classes' limits).
        assert_eq!(EighClass::largest_fast_order(8, shared), 165);
        assert_eq!(EighClass::largest_fast_order(4, shared), 235);
    }
}
