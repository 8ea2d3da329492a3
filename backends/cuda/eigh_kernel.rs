//! The size classes of the CUDA eigh and the kernel variant that runs each: which kernel takes
//! a matrix of order `n`, with what launch shape and shared memory. The warp and block classes
//! keep their row length and thread count as compile-time constants (register arrays), so each
//! (class, dtype, values/vectors) is its own NVRTC program, compiled on first use and cached in
//! the process and on disk, like the attention variants.
//!
//! Classes, by order (measurements in docs/benchmarks/eigh-classes-h200.md):
//! - `Warp { lanes, row }`, n <= 8: `kernels/eigh/warp.cu`. A group of `lanes` lanes per
//!   matrix (32 / lanes matrices per warp), each lane a row of A in registers; Householder
//!   tridiagonalisation with shuffles inside the group, then implicit QL (`kernels/eigh/ql.cuh`)
//!   computed by every lane of the group.
//! - `Chains { lanes, row }`, 9 <= n <= 32: `kernels/eigh/chains.cu`. The same reduction, then
//!   one QL chain per lane (up to 32 matrices per block), the recorded rotations replayed on Q
//!   by the groups.
//! - `Block { chunks }`, 33 <= n <= 32 chunks while A fits one block's shared memory:
//!   `kernels/eigh/block.cu`, one block of 32 chunks threads per matrix, A in shared memory.
//! - `Split { chunks }`, from [`SPLIT_MIN_ORDER`] where `Block` would run:
//!   `kernels/eigh/split.cu`, the block classes' reduction, QL and replay as three kernels, one
//!   QL chain per lane (32 matrices per warp) in between.
//! - `Jacobi`: the parallel-order Jacobi of `kernels/eigh/jacobi.cu` (in the main translation
//!   unit), for the orders above (its matrices then live in a global workspace).

use super::nvrtc::{compile_source, KERNEL_SOURCES};

/// Register row lengths of the warp classes, smallest first; each runs on the smallest power
/// of two of lanes that holds it.
pub(crate) const WARP_ROWS: [usize; 7] = [2, 4, 8, 12, 16, 24, 32];
/// Largest order of the warp classes.
pub(crate) const WARP_MAX_ORDER: usize = 32;
/// Smallest order of the chains classes (below, a chain is a few rotations long and the
/// group-computed QL of warp.cu has less bookkeeping).
pub(crate) const CHAINS_MIN_ORDER: usize = 9;
/// Most matrices one chains block takes (one chain per lane of its first warp).
pub(crate) const CHAINS_MAX_PER_BLOCK: usize = 32;
/// Words of a rotation list staged in shared memory at a time (`MB_CHAINS_STAGE`, chains.cu).
const CHAINS_STAGE_WORDS: usize = 128;
/// Fewest f64 matrices of one order class for which the size classes take the chains kernel:
/// below, few chains share a warp and the group-computed QL of the warp classes, which needs
/// no replay, is faster. Measured on the H200 (docs/benchmarks/eigh-chains-h200.md): with
/// vectors the chains ran 0.70-0.97x the warp classes at 4096 matrices and 1.00-1.26x at 8192.
pub const CHAINS_MIN_BATCH_F64: usize = 8192;
/// The same for f32, whose redundant QL costs the warp classes half as much: the chains ran
/// 0.79-0.99x the warp classes at 16384 matrices and 0.99-1.22x at 131072.
pub const CHAINS_MIN_BATCH_F32: usize = 65536;

/// Fewest matrices of `elem`-byte floats for which the size classes take the chains kernel.
pub fn chains_min_batch(elem: usize) -> usize {
    if elem == 8 {
        CHAINS_MIN_BATCH_F64
    } else {
        CHAINS_MIN_BATCH_F32
    }
}
/// Smallest order the size classes give to the split classes instead of the block classes.
pub const SPLIT_MIN_ORDER: usize = 65;
/// Fewest f64 matrices of one split class for which the size classes take the split kernels
/// (below, the block class of the same chunks), with vectors and values only. Measured on the
/// H200 (docs/benchmarks/eigh-split-h200.md, split / block at n = 96-160): with vectors
/// 0.80-0.99x at 1024 matrices, 0.98-1.13x at 2048, 1.11-1.22x at 4096; values only 1.31-2.18x
/// from 1024.
pub const SPLIT_MIN_BATCH_F64: [usize; 2] = [4096, 1024];
/// The same for f32: with vectors 0.89-0.94x at 4096, 0.96-1.00x at 8192, 1.00-1.03x at 16384;
/// values only 0.75-1.12x at 1024, 1.19-1.61x at 2048.
pub const SPLIT_MIN_BATCH_F32: [usize; 2] = [16384, 2048];

/// Fewest matrices of `elem`-byte floats for which the size classes take a split class.
pub fn split_min_batch(elem: usize, vectors: bool) -> usize {
    let table = if elem == 8 {
        SPLIT_MIN_BATCH_F64
    } else {
        SPLIT_MIN_BATCH_F32
    };
    table[usize::from(!vectors)]
}

/// Chain and replay rounds the host queues for a split class (each round records up to n^2
/// words of chases per matrix, about 2.4 n^2 in all for random matrices; the last round
/// finishes the rest inside the replay blocks).
pub const SPLIT_ROUNDS: usize = 3;

/// Threads per block of the warp-class kernels (`__launch_bounds__(128)` in warp.cu).
pub(crate) const WARP_BLOCK_THREADS: usize = 128;
/// Chunks (of 32 threads) of the block classes, smallest first.
pub(crate) const BLOCK_CHUNKS: [usize; 3] = [2, 4, 8];

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
    /// Parallel-order two-sided Jacobi (shared memory or the plan's global workspace).
    Jacobi,
}

impl EighClass {
    /// The class for order `n` (>= 1) of `elem`-byte floats, given the largest dynamic shared
    /// memory one block may use.
    pub fn for_order(n: usize, elem: usize, max_shared: usize) -> Self {
        match Self::warp_for_order(n) {
            Some(Self::Warp { lanes, row }) if n >= CHAINS_MIN_ORDER => Self::Chains { lanes, row },
            Some(class) => class,
            None => Self::block_for_order(n, elem, max_shared),
        }
    }

    /// The largest order of `elem`-byte floats a warp, chains or block class takes (above,
    /// the Jacobi fallback: on the H200 0.11-0.13x the CPU backend at n = 256).
    pub fn largest_fast_order(elem: usize, max_shared: usize) -> usize {
        (1..=32 * BLOCK_CHUNKS[BLOCK_CHUNKS.len() - 1])
            .rev()
            .find(|&n| Self::for_order(n, elem, max_shared) != Self::Jacobi)
            .unwrap_or(WARP_MAX_ORDER)
    }

    /// The warp class (every lane of a group computing QL) for n <= 32, else none.
    pub fn warp_for_order(n: usize) -> Option<Self> {
        (n <= WARP_MAX_ORDER).then(|| {
            let row = WARP_ROWS
                .into_iter()
                .find(|&r| r >= n)
                .unwrap_or(WARP_MAX_ORDER);
            Self::Warp {
                lanes: row.next_power_of_two(),
                row,
            }
        })
    }

    fn block_for_order(n: usize, elem: usize, max_shared: usize) -> Self {
        match BLOCK_CHUNKS.into_iter().find(|&c| 32 * c >= n) {
            Some(chunks) if block_shared_bytes(n, elem) <= max_shared => {
                if n >= SPLIT_MIN_ORDER {
                    Self::Split { chunks }
                } else {
                    Self::Block { chunks }
                }
            }
            _ => Self::Jacobi,
        }
    }

    /// The block class of the same chunks for a split class; other classes as they are.
    pub fn fused(self) -> Self {
        match self {
            Self::Split { chunks } => Self::Block { chunks },
            other => other,
        }
    }

    /// The split class of the same chunks for a block class; other classes as they are.
    pub fn split(self) -> Self {
        match self {
            Self::Block { chunks } => Self::Split { chunks },
            other => other,
        }
    }

    /// Threads per block (`Split`: of its reduction and replay kernels; its chains kernel
    /// runs one warp per block).
    pub fn block_threads(self) -> usize {
        match self {
            Self::Warp { .. } | Self::Chains { .. } => WARP_BLOCK_THREADS,
            Self::Block { chunks } => 32 * (chunks + 1),
            Self::Split { chunks } => 32 * chunks,
            Self::Jacobi => unreachable!("the Jacobi launch shape depends on the order"),
        }
    }

    /// Matrices per block (`Chains`: the most; a launch may take fewer).
    pub fn per_block(self) -> usize {
        match self {
            Self::Warp { lanes, .. } => WARP_BLOCK_THREADS / lanes,
            Self::Chains { .. } => CHAINS_MAX_PER_BLOCK,
            _ => 1,
        }
    }

    /// Matrices per block for a launch of `count` matrices on `sms` multiprocessors: as many
    /// as make about four blocks per multiprocessor, at least one per group (fewer chains per
    /// block leave more blocks, so small batches still reach every multiprocessor).
    pub fn per_block_for(self, count: usize, sms: usize) -> usize {
        match self {
            Self::Chains { lanes, .. } => count
                .div_ceil(4 * sms.max(1))
                .clamp(WARP_BLOCK_THREADS / lanes, CHAINS_MAX_PER_BLOCK),
            _ => self.per_block(),
        }
    }

    /// Dynamic shared memory of one block for matrices up to order `nmax`, the layout the
    /// kernels compute.
    pub fn shared_bytes(self, nmax: usize, elem: usize) -> usize {
        match self {
            Self::Warp { row, .. } => self.per_block() * (row * (row + 1) + 2 * row) * elem,
            // chains.cu: d and e column-wise, a Z, v, w and staging chunk per group, three
            // ints per matrix.
            Self::Chains { lanes, row } => {
                let per_group = row * (row + 1) + 2 * row + CHAINS_STAGE_WORDS;
                (2 * 32 * row + WARP_BLOCK_THREADS / lanes * per_group) * elem + 3 * 32 * 4
            }
            Self::Block { .. } | Self::Split { .. } => block_shared_bytes(nmax, elem),
            Self::Jacobi => unreachable!("the Jacobi layout is computed in eigh.rs"),
        }
    }
}

/// Dynamic shared memory of the split classes' chains kernel: d and e of 32 matrices.
pub fn split_chains_shared_bytes(nmax: usize, elem: usize) -> usize {
    2 * 32 * nmax * elem
}

/// Words (of the element type) of a split launch's workspace before its rotation lists:
/// d, e (count x nmax each), f and tst1 (count each), 8 ints per matrix (split.cu's
/// `mb_split_work`).
pub fn split_state_words(count: usize, nmax: usize, elem: usize) -> usize {
    count * (2 * nmax + 2) + (count * 8 * 4).div_ceil(elem)
}

/// Shared memory of the block kernel for order n: A with an odd row stride, five vectors, 64
/// reduction partials, two slots of 2n rotation coefficients, 4 ints (block.cu's layout).
fn block_shared_bytes(n: usize, elem: usize) -> usize {
    (n * (n | 1) + 9 * n + 64) * elem + 16
}

/// One compiled eigh kernel: a warp or block class, a dtype and whether it accumulates
/// eigenvectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighKernel {
    /// `Warp` or `Block` (Jacobi lives in the main translation unit).
    pub class: EighClass,
    /// `"f32"` or `"f64"`.
    pub dtype: &'static str,
    /// Eigenvectors too (false: values only).
    pub vectors: bool,
}

impl EighKernel {
    /// The entry point's name, e.g. `eigh_warp_f64_g16_r12_v`.
    pub fn name(&self) -> String {
        let suffix = if self.vectors { "v" } else { "w" };
        match self.class {
            EighClass::Warp { lanes, row } => {
                format!("eigh_warp_{}_g{lanes}_r{row}_{suffix}", self.dtype)
            }
            EighClass::Chains { lanes, row } => {
                format!("eigh_chains_{}_g{lanes}_r{row}_{suffix}", self.dtype)
            }
            EighClass::Block { chunks } => format!("eigh_block_{}_c{chunks}_{suffix}", self.dtype),
            EighClass::Split { chunks } => format!("eigh_split_{}_c{chunks}_{suffix}", self.dtype),
            EighClass::Jacobi => format!("eigh_jacobi_{}", self.dtype),
        }
    }

    /// The program's entry points in launch order: the name itself, or for `Split` the
    /// name with `_reduce`, `_chains` and (with vectors) `_replay`.
    pub fn entries(&self) -> Vec<String> {
        let name = self.name();
        match self.class {
            EighClass::Split { .. } => {
                let steps: &[&str] = if self.vectors {
                    &["reduce", "chains", "replay"]
                } else {
                    &["reduce", "chains"]
                };
                steps.iter().map(|s| format!("{name}_{s}")).collect()
            }
            _ => vec![name],
        }
    }

    /// The NVRTC program of this variant: the shared headers, the class's source, and one
    /// instantiation line.
    pub fn source(&self) -> String {
        let t = if self.dtype == "f64" {
            "double"
        } else {
            "float"
        };
        let (file, line) = match self.class {
            EighClass::Chains { lanes, row } => (
                EIGH_CHAINS_SOURCE,
                format!(
                    "MB_EIGH_CHAINS_KERNEL({}, {t}, {lanes}, {row}, {})",
                    self.name(),
                    self.vectors
                ),
            ),
            EighClass::Warp { lanes, row } => (
                "",
                format!(
                    "MB_EIGH_WARP_KERNEL({}, {t}, {lanes}, {row}, {})",
                    self.name(),
                    self.vectors
                ),
            ),
            EighClass::Block { chunks } => (
                EIGH_BLOCK_SOURCE,
                format!(
                    "MB_EIGH_BLOCK_KERNEL({}, {t}, {chunks}, {})",
                    self.name(),
                    self.vectors
                ),
            ),
            EighClass::Split { chunks } => (
                EIGH_SPLIT_SOURCE,
                format!(
                    "MB_EIGH_SPLIT_KERNELS({}, {t}, {chunks}, {})",
                    self.name(),
                    self.vectors
                ),
            ),
            EighClass::Jacobi => unreachable!("Jacobi is in the main translation unit"),
        };
        let mut s = String::new();
        for (name, text) in KERNEL_SOURCES
            .iter()
            .filter(|(name, _)| name.ends_with("common.cuh"))
        {
            s.push_str(&format!("// ---- {name}\n{text}\n"));
        }
        s.push_str(EIGH_QL_SOURCE);
        if matches!(self.class, EighClass::Split { .. }) {
            // split.cu runs block.cu's reduction.
            s.push_str(EIGH_BLOCK_SOURCE);
        }
        if matches!(
            self.class,
            EighClass::Warp { .. } | EighClass::Chains { .. }
        ) {
            s.push_str(EIGH_WARP_SOURCE);
        }
        s.push_str(file);
        s.push('\n');
        s.push_str(&line);
        s.push('\n');
        s
    }

    /// Compiles this variant for `arch` (e.g. `"sm_90"`), cached as [`compile_source`] caches.
    ///
    /// # Errors
    /// [`crate::Error::Device`] when libnvrtc is missing or the compile fails (with the log).
    pub fn compile(&self, arch: &str) -> crate::Result<std::sync::Arc<Vec<u8>>> {
        compile_source(arch, &self.source())
    }

    /// Every variant the backend can compile (for the NVRTC test).
    pub fn all() -> Vec<Self> {
        let mut classes: Vec<EighClass> = WARP_ROWS
            .into_iter()
            .map(|row| EighClass::Warp {
                lanes: row.next_power_of_two(),
                row,
            })
            .collect();
        classes.extend(
            WARP_ROWS
                .into_iter()
                .filter(|&row| row >= CHAINS_MIN_ORDER)
                .map(|row| EighClass::Chains {
                    lanes: row.next_power_of_two(),
                    row,
                }),
        );
        classes.extend(
            BLOCK_CHUNKS
                .into_iter()
                .map(|chunks| EighClass::Block { chunks }),
        );
        classes.extend(
            BLOCK_CHUNKS
                .into_iter()
                .map(|chunks| EighClass::Split { chunks }),
        );
        let mut out = Vec::new();
        for class in classes {
            for dtype in ["f32", "f64"] {
                for vectors in [true, false] {
                    out.push(Self {
                        class,
                        dtype,
                        vectors,
                    });
                }
            }
        }
        out
    }
}

/// `kernels/eigh/ql.cuh`: the tridiagonal QL shared by the warp and block classes.
pub const EIGH_QL_SOURCE: &str = include_str!("../../kernels/eigh/ql.cuh");
/// `kernels/eigh/warp.cu`.
pub const EIGH_WARP_SOURCE: &str = include_str!("../../kernels/eigh/warp.cu");
/// `kernels/eigh/chains.cu` (after warp.cu, whose reduction it shares).
pub const EIGH_CHAINS_SOURCE: &str = include_str!("../../kernels/eigh/chains.cu");
/// `kernels/eigh/block.cu`.
pub const EIGH_BLOCK_SOURCE: &str = include_str!("../../kernels/eigh/block.cu");
/// `kernels/eigh/split.cu` (after block.cu, whose reduction it runs).
pub const EIGH_SPLIT_SOURCE: &str = include_str!("../../kernels/eigh/split.cu");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_order_with_room_for_it() {
        let shared = 227 * 1024;
        for elem in [4, 8] {
            for n in 1..=512 {
                match EighClass::for_order(n, elem, shared) {
                    EighClass::Chains { lanes, row } => {
                        assert!((CHAINS_MIN_ORDER..=32).contains(&n) && n <= row && row <= lanes)
                    }
                    EighClass::Warp { lanes, row } => {
                        assert!(n <= row && row <= lanes && lanes <= 32 && lanes.is_power_of_two())
                    }
                    EighClass::Block { chunks } => {
                        assert!(n > 32 && n < SPLIT_MIN_ORDER && n <= 32 * chunks);
                        assert!(block_shared_bytes(n, elem) <= shared);
                    }
                    EighClass::Split { chunks } => {
                        assert!(n >= SPLIT_MIN_ORDER && n <= 32 * chunks);
                        assert!(block_shared_bytes(n, elem) <= shared);
                        assert!(split_chains_shared_bytes(n, elem) <= shared);
                    }
                    EighClass::Jacobi => assert!(n > 160, "order {n} elem {elem} fell to Jacobi"),
                }
            }
        }
        // f64 A at n = 128 is 132 KB: one block on an H100/H200.
        assert_eq!(
            EighClass::for_order(128, 8, shared),
            EighClass::Split { chunks: 4 }
        );
        assert_eq!(
            EighClass::for_order(64, 8, shared),
            EighClass::Block { chunks: 2 }
        );
        assert_eq!(EighClass::for_order(256, 8, shared), EighClass::Jacobi);
        // 227 KB of shared memory: A fits to f64 165, f32 235 (the block classes' limits).
        assert_eq!(EighClass::largest_fast_order(8, shared), 165);
        assert_eq!(EighClass::largest_fast_order(4, shared), 235);
    }
}
