//! The split classes (`kernels/eigh/split.cu`), from [`SPLIT_MIN_ORDER`] in large batches
//! where a block class would run: the block classes' reduction by a block per matrix, QL by
//! one lane per matrix (32 per warp), the recorded rotations replayed on Q by a block per
//! matrix, as [`SPLIT_ROUNDS`] rounds of chains and replay.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::driver::bytes_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{
    common_headers, instantiate, EighKernel, EIGH_BLOCK_SOURCE, EIGH_SPLIT_SOURCE,
};
use super::block::{block_chunks, block_shared_bytes, BLOCK_CHUNKS, CHECKED_ORDERS};
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::{Error, Result};

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
/// Chain and replay rounds the host queues for a split class (each round records up to n^2
/// words of chases per matrix, about 2.4 n^2 in all for random matrices; the last round
/// finishes the rest inside the replay blocks).
pub const SPLIT_ROUNDS: usize = 3;
/// Matrices per block of the chains kernel (a lane each).
const SPLIT_CHAINS_PER_BLOCK: usize = 32;
/// Ints of QL state per matrix in the workspace (`MB_SPLIT_INTS`, split.cu).
const SPLIT_INTS: usize = 8;

/// Fewest matrices of `elem`-byte floats for which the size classes take a split class.
pub fn split_min_batch(elem: usize, vectors: bool) -> usize {
    let table = if elem == 8 {
        SPLIT_MIN_BATCH_F64
    } else {
        SPLIT_MIN_BATCH_F32
    };
    table[usize::from(!vectors)]
}

/// Dynamic shared memory of the split classes' chains kernel: d and e of 32 matrices.
pub fn split_chains_shared_bytes(nmax: usize, elem: usize) -> usize {
    2 * SPLIT_CHAINS_PER_BLOCK * nmax * elem
}

/// Words (of the element type) of a split launch's workspace before its rotation lists:
/// d, e (count x nmax each), f and tst1 (count each), 8 ints per matrix (split.cu's
/// `mb_split_work`).
pub fn split_state_words(count: usize, nmax: usize, elem: usize) -> usize {
    count * (2 * nmax + 2) + (count * SPLIT_INTS * 4).div_ceil(elem)
}

/// The descriptor.
pub(crate) struct Split;

impl SizeClass for Split {
    fn owns(&self, class: EighClass) -> bool {
        matches!(class, EighClass::Split { .. })
    }

    fn shape(&self, n: usize, elem: usize, device: &DeviceInfo) -> Option<EighClass> {
        block_chunks(n, elem, device).map(|chunks| EighClass::Split { chunks })
    }

    fn takes(
        &self,
        algorithm: CudaEighAlgorithm,
        nmax: usize,
        count: usize,
        elem: usize,
        vectors: bool,
    ) -> bool {
        match algorithm {
            CudaEighAlgorithm::SizeClasses => {
                nmax >= SPLIT_MIN_ORDER && count >= split_min_batch(elem, vectors)
            }
            CudaEighAlgorithm::SplitBlocks => true,
            CudaEighAlgorithm::FusedBlocks
            | CudaEighAlgorithm::Jacobi
            | CudaEighAlgorithm::DivideConquer
            | CudaEighAlgorithm::DivideConquerGlobal => false,
            _ => nmax >= SPLIT_MIN_ORDER,
        }
    }

    /// The reduction, then per round the chains (a warp per 32 matrices) and, with vectors,
    /// the replay; the workspace holds each matrix's QL state and, with vectors, a rotation
    /// list as long as A.
    fn plan(&self, class: EighClass, bucket: &Bucket, _device: &DeviceInfo) -> Result<ClassPlan> {
        let EighClass::Split { chunks } = class else {
            unreachable!("the split descriptor plans split classes")
        };
        let (count, nmax, elem) = (bucket.count, bucket.nmax, bucket.elem);
        let step = |entry, block: usize, per_block, shared: usize, phase| {
            Ok::<_, Error>(LaunchShape {
                entry,
                block: block as u32,
                grid: blocks_for(count, per_block)?,
                shared: shared as u32,
                nmax: nmax as i32,
                team: 0,
                phase,
                layout: 0,
            })
        };
        let block = 32 * chunks;
        let block_shared = block_shared_bytes(nmax, elem);
        let chains_shared = split_chains_shared_bytes(nmax, elem);
        let mut launches = vec![step(0, block, 1, block_shared, 0)?];
        let rounds = if bucket.vectors { SPLIT_ROUNDS } else { 1 };
        for round in 0..rounds {
            launches.push(step(1, 32, SPLIT_CHAINS_PER_BLOCK, chains_shared, 0)?);
            if bucket.vectors {
                let last = i32::from(round + 1 == SPLIT_ROUNDS);
                launches.push(step(2, block, 1, block_shared, last)?);
            }
        }
        let words = split_state_words(count, nmax, elem)
            .checked_add(if bucket.vectors { bucket.a_len } else { 0 })
            .ok_or(Error::TooLarge("eigh workspace"))?;
        Ok(ClassPlan {
            launches,
            workspace_bytes: bytes_for(words, elem)?,
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        BLOCK_CHUNKS
            .into_iter()
            .map(|chunks| EighClass::Split { chunks })
            .collect()
    }

    fn name(&self, kernel: &EighKernel) -> String {
        let EighClass::Split { chunks } = kernel.class else {
            unreachable!("the split descriptor names split classes")
        };
        format!("eigh_split_{}_c{chunks}_{}", kernel.dtype, kernel.suffix())
    }

    /// `_reduce`, `_chains` and (with vectors) `_replay` after the name.
    fn entries(&self, kernel: &EighKernel) -> Vec<String> {
        let steps: &[&str] = if kernel.vectors {
            &["reduce", "chains", "replay"]
        } else {
            &["reduce", "chains"]
        };
        let name = self.name(kernel);
        steps.iter().map(|s| format!("{name}_{s}")).collect()
    }

    fn program(&self, kernel: &EighKernel) -> Option<String> {
        let EighClass::Split { chunks } = kernel.class else {
            unreachable!("the split descriptor compiles split classes")
        };
        let mut s = common_headers();
        // split.cu runs block.cu's reduction.
        s.push_str(EIGH_BLOCK_SOURCE);
        s.push_str(EIGH_SPLIT_SOURCE);
        s.push_str(&instantiate(
            "MB_EIGH_SPLIT_KERNELS",
            kernel,
            &self.name(kernel),
            &chunks.to_string(),
        ));
        Some(s)
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let EighClass::Split { chunks } = kernel.class else {
            unreachable!("the split descriptor checks split classes")
        };
        let t = kernel.c_type();
        let elem = kernel.elem();
        let mut s = assert_eq_line(
            &format!("mb_split_threads({chunks})"),
            32 * chunks,
            "split reduce/replay threads",
        );
        s.push_str(&assert_eq_line(
            "MB_SPLIT_CHAINS_PER_BLOCK",
            SPLIT_CHAINS_PER_BLOCK,
            "split chains per block",
        ));
        for n in CHECKED_ORDERS.into_iter().filter(|&n| n <= 32 * chunks) {
            s.push_str(&assert_eq_line(
                &format!("mb_block_shared_bytes<{t}>({n})"),
                block_shared_bytes(n, elem),
                "split block shared bytes",
            ));
            s.push_str(&assert_eq_line(
                &format!("mb_split_chains_shared_bytes<{t}>({n})"),
                split_chains_shared_bytes(n, elem),
                "split chains shared bytes",
            ));
            for count in [1, 31, 1000] {
                s.push_str(&assert_eq_line(
                    &format!("mb_split_state_words<{t}>({count}, {n})"),
                    split_state_words(count, n, elem),
                    "split workspace words",
                ));
            }
        }
        s
    }
}
