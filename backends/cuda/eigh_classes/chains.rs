//! The chains classes (`kernels/eigh/chains.cu`), 9 <= n <= 32 in large batches: the warp
//! classes' reduction, then one QL chain per lane (up to 32 matrices per block), the recorded
//! rotations replayed on Q by the groups.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::driver::bytes_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{
    common_headers, instantiate, EighKernel, EIGH_CHAINS_SOURCE, EIGH_WARP_SOURCE,
};
use super::warp::{warp_shape, WARP_BLOCK_THREADS, WARP_ROWS};
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::Result;

/// Smallest order of the chains classes (below, a chain is a few rotations long and the
/// group-computed QL of warp.cu has less bookkeeping).
pub const CHAINS_MIN_ORDER: usize = 9;
/// Most matrices one chains block takes (one chain per lane of its first warp).
pub const CHAINS_MAX_PER_BLOCK: usize = 32;
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

/// Shared memory of a chains block: d and e column-wise (32 rows each), a Z, v, w and staging
/// chunk per group, three ints per matrix (chains.cu's `mb_chains_ints_at`).
fn chains_shared_bytes(lanes: usize, row: usize, elem: usize) -> usize {
    let per_group = row * (row + 1) + 2 * row + CHAINS_STAGE_WORDS;
    (2 * 32 * row + WARP_BLOCK_THREADS / lanes * per_group) * elem + 3 * 32 * 4
}

/// Matrices per block for a launch of `count` matrices on `sms` multiprocessors: as many as
/// make about four blocks per multiprocessor, at least one per group (fewer chains per block
/// leave more blocks, so small batches still reach every multiprocessor).
fn per_block(lanes: usize, count: usize, sms: usize) -> usize {
    count
        .div_ceil(4 * sms.max(1))
        .clamp(WARP_BLOCK_THREADS / lanes, CHAINS_MAX_PER_BLOCK)
}

/// The descriptor.
pub(crate) struct Chains;

impl SizeClass for Chains {
    fn owns(&self, class: EighClass) -> bool {
        matches!(class, EighClass::Chains { .. })
    }

    fn shape(&self, n: usize, _elem: usize, _device: &DeviceInfo) -> Option<EighClass> {
        let (lanes, row) = warp_shape(n).filter(|_| n >= CHAINS_MIN_ORDER)?;
        Some(EighClass::Chains { lanes, row })
    }

    fn takes(
        &self,
        algorithm: CudaEighAlgorithm,
        _: usize,
        count: usize,
        elem: usize,
        _: bool,
    ) -> bool {
        match algorithm {
            CudaEighAlgorithm::SizeClasses
            | CudaEighAlgorithm::DivideConquer
            | CudaEighAlgorithm::DivideConquerGlobal => count >= chains_min_batch(elem),
            CudaEighAlgorithm::GroupChains | CudaEighAlgorithm::Jacobi => false,
            _ => true,
        }
    }

    fn plan(&self, class: EighClass, bucket: &Bucket, device: &DeviceInfo) -> Result<ClassPlan> {
        let EighClass::Chains { lanes, row } = class else {
            unreachable!("the chains descriptor plans chains classes")
        };
        let per_block = per_block(lanes, bucket.count, device.multiprocessors);
        Ok(ClassPlan {
            launches: vec![LaunchShape {
                entry: 0,
                block: WARP_BLOCK_THREADS as u32,
                grid: blocks_for(bucket.count, per_block)?,
                shared: chains_shared_bytes(lanes, row, bucket.elem) as u32,
                nmax: bucket.nmax as i32,
                team: per_block as i32,
                phase: 0,
                layout: 0,
            }],
            // Each matrix's rotation list sits at its own offset: one word per element of A.
            workspace_bytes: if bucket.vectors {
                bytes_for(bucket.a_len, bucket.elem)?
            } else {
                0
            },
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        WARP_ROWS
            .into_iter()
            .filter(|&row| row >= CHAINS_MIN_ORDER)
            .map(|row| EighClass::Chains {
                lanes: row.next_power_of_two(),
                row,
            })
            .collect()
    }

    fn name(&self, kernel: &EighKernel) -> String {
        let EighClass::Chains { lanes, row } = kernel.class else {
            unreachable!("the chains descriptor names chains classes")
        };
        format!(
            "eigh_chains_{}_g{lanes}_r{row}_{}",
            kernel.dtype,
            kernel.suffix()
        )
    }

    fn program(&self, kernel: &EighKernel) -> Option<String> {
        let EighClass::Chains { lanes, row } = kernel.class else {
            unreachable!("the chains descriptor compiles chains classes")
        };
        let mut s = common_headers();
        // chains.cu runs warp.cu's reduction.
        s.push_str(EIGH_WARP_SOURCE);
        s.push_str(EIGH_CHAINS_SOURCE);
        s.push_str(&instantiate(
            "MB_EIGH_CHAINS_KERNEL",
            kernel,
            &self.name(kernel),
            &format!("{lanes}, {row}"),
        ));
        Some(s)
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let EighClass::Chains { lanes, row } = kernel.class else {
            unreachable!("the chains descriptor checks chains classes")
        };
        let t = kernel.c_type();
        let mut s = assert_eq_line(
            "MB_WARP_THREADS",
            WARP_BLOCK_THREADS,
            "chains block threads",
        );
        s.push_str(&assert_eq_line(
            "MB_CHAINS_STAGE",
            CHAINS_STAGE_WORDS,
            "chains staging",
        ));
        s.push_str(&assert_eq_line(
            "MB_CHAINS_MAX_PER_BLOCK",
            CHAINS_MAX_PER_BLOCK,
            "chains per block",
        ));
        s.push_str(&assert_eq_line(
            &format!("mb_chains_ints_at<{lanes}, {row}>() * sizeof({t}) + 3 * 32 * sizeof(int)"),
            chains_shared_bytes(lanes, row, kernel.elem()),
            "chains shared bytes",
        ));
        s
    }
}
