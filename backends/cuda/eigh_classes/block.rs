//! The block classes (`kernels/eigh/block.cu`), 33 <= n <= 32 chunks while A fits one block's
//! shared memory: one block of `32 (chunks + 1)` threads per matrix, A in shared memory, the
//! last warp running QL's rotation chain while the others apply it.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{common_headers, instantiate, EighKernel, EIGH_BLOCK_SOURCE};
use super::warp::WARP_MAX_ORDER;
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::Result;

/// Chunks (of 32 threads) of the block classes, smallest first.
pub const BLOCK_CHUNKS: [usize; 3] = [2, 4, 8];

/// Orders at which the layout checks compare shared-memory sizes (odd and even strides).
pub(crate) const CHECKED_ORDERS: [usize; 4] = [33, 64, 65, 165];

/// Shared memory of the block kernel for order n: A with an odd row stride, five vectors, 64
/// reduction partials, two slots of 2n rotation coefficients, 4 ints (block.cu's
/// `mb_block_shared_bytes`).
pub(crate) fn block_shared_bytes(n: usize, elem: usize) -> usize {
    (n * (n | 1) + 9 * n + 64) * elem + 16
}

/// The chunks of the block (and split) class that holds order `n` on `device`, if A fits its
/// shared memory.
pub(crate) fn block_chunks(n: usize, elem: usize, device: &DeviceInfo) -> Option<usize> {
    BLOCK_CHUNKS.into_iter().find(|&c| 32 * c >= n).filter(|_| {
        n > WARP_MAX_ORDER && block_shared_bytes(n, elem) <= device.max_shared_per_block
    })
}

/// The descriptor.
pub(crate) struct Block;

impl SizeClass for Block {
    fn owns(&self, class: EighClass) -> bool {
        matches!(class, EighClass::Block { .. })
    }

    fn shape(&self, n: usize, elem: usize, device: &DeviceInfo) -> Option<EighClass> {
        block_chunks(n, elem, device).map(|chunks| EighClass::Block { chunks })
    }

    fn takes(&self, algorithm: CudaEighAlgorithm, _: usize, _: usize, _: usize, _: bool) -> bool {
        !matches!(
            algorithm,
            CudaEighAlgorithm::Jacobi
                | CudaEighAlgorithm::DivideConquer
                | CudaEighAlgorithm::DivideConquerGlobal
        )
    }

    fn plan(&self, class: EighClass, bucket: &Bucket, _device: &DeviceInfo) -> Result<ClassPlan> {
        let EighClass::Block { chunks } = class else {
            unreachable!("the block descriptor plans block classes")
        };
        Ok(ClassPlan {
            launches: vec![LaunchShape {
                entry: 0,
                block: (32 * (chunks + 1)) as u32,
                grid: blocks_for(bucket.count, 1)?,
                shared: block_shared_bytes(bucket.nmax, bucket.elem) as u32,
                nmax: bucket.nmax as i32,
                team: 1,
                phase: 0,
                layout: 0,
            }],
            workspace_bytes: 0,
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        BLOCK_CHUNKS
            .into_iter()
            .map(|chunks| EighClass::Block { chunks })
            .collect()
    }

    fn name(&self, kernel: &EighKernel) -> String {
        let EighClass::Block { chunks } = kernel.class else {
            unreachable!("the block descriptor names block classes")
        };
        format!("eigh_block_{}_c{chunks}_{}", kernel.dtype, kernel.suffix())
    }

    fn program(&self, kernel: &EighKernel) -> Option<String> {
        let EighClass::Block { chunks } = kernel.class else {
            unreachable!("the block descriptor compiles block classes")
        };
        let mut s = common_headers();
        s.push_str(EIGH_BLOCK_SOURCE);
        s.push_str(&instantiate(
            "MB_EIGH_BLOCK_KERNEL",
            kernel,
            &self.name(kernel),
            &chunks.to_string(),
        ));
        Some(s)
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let EighClass::Block { chunks } = kernel.class else {
            unreachable!("the block descriptor checks block classes")
        };
        let t = kernel.c_type();
        let mut s = assert_eq_line(
            &format!("mb_block_threads({chunks})"),
            32 * (chunks + 1),
            "block threads",
        );
        for n in CHECKED_ORDERS.into_iter().filter(|&n| n <= 32 * chunks) {
            s.push_str(&assert_eq_line(
                &format!("mb_block_shared_bytes<{t}>({n})"),
                block_shared_bytes(n, kernel.elem()),
                "block shared bytes",
            ));
        }
        s
    }
}
