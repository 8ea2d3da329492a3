//! The warp classes (`kernels/eigh/warp.cu`), n <= 32: a group of `lanes` lanes per matrix
//! (32 / lanes matrices per warp), each lane a row of A in registers; Householder
//! tridiagonalisation with shuffles inside the group, then implicit QL
//! (`kernels/eigh/ql.cuh`) computed by every lane of the group.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{common_headers, instantiate, EighKernel, EIGH_WARP_SOURCE};
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::Result;

/// Register row lengths of the warp classes, smallest first; each runs on the smallest power
/// of two of lanes that holds it.
pub const WARP_ROWS: [usize; 7] = [2, 4, 8, 12, 16, 24, 32];
/// Largest order of the warp classes.
pub const WARP_MAX_ORDER: usize = 32;
/// Threads per block of the warp-class kernels (`MB_WARP_THREADS` in warp.cu).
pub const WARP_BLOCK_THREADS: usize = 128;

/// The warp class of rows `row` (also the chains classes' reduction).
pub(crate) fn warp_shape(n: usize) -> Option<(usize, usize)> {
    let row = WARP_ROWS.into_iter().find(|&r| r >= n)?;
    Some((row.next_power_of_two(), row))
}

/// Shared memory of a warp-class block: per group Z (row rows, stride row + 1), v and w
/// (warp.cu's `mb_warp_group_words`).
pub(crate) fn warp_shared_bytes(lanes: usize, row: usize, elem: usize) -> usize {
    WARP_BLOCK_THREADS / lanes * (row * (row + 1) + 2 * row) * elem
}

/// The descriptor.
pub(crate) struct Warp;

impl SizeClass for Warp {
    fn owns(&self, class: EighClass) -> bool {
        matches!(class, EighClass::Warp { .. })
    }

    fn shape(&self, n: usize, _elem: usize, _device: &DeviceInfo) -> Option<EighClass> {
        warp_shape(n).map(|(lanes, row)| EighClass::Warp { lanes, row })
    }

    fn takes(&self, algorithm: CudaEighAlgorithm, _: usize, _: usize, _: usize, _: bool) -> bool {
        algorithm != CudaEighAlgorithm::Jacobi
    }

    fn plan(&self, class: EighClass, bucket: &Bucket, _device: &DeviceInfo) -> Result<ClassPlan> {
        let EighClass::Warp { lanes, row } = class else {
            unreachable!("the warp descriptor plans warp classes")
        };
        let per_block = WARP_BLOCK_THREADS / lanes;
        Ok(ClassPlan {
            launches: vec![LaunchShape {
                entry: 0,
                block: WARP_BLOCK_THREADS as u32,
                grid: blocks_for(bucket.count, per_block)?,
                shared: warp_shared_bytes(lanes, row, bucket.elem) as u32,
                nmax: bucket.nmax as i32,
                team: per_block as i32,
                phase: 0,
                layout: 0,
            }],
            workspace_bytes: 0,
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        WARP_ROWS
            .into_iter()
            .map(|row| EighClass::Warp {
                lanes: row.next_power_of_two(),
                row,
            })
            .collect()
    }

    fn name(&self, kernel: &EighKernel) -> String {
        let EighClass::Warp { lanes, row } = kernel.class else {
            unreachable!("the warp descriptor names warp classes")
        };
        format!(
            "eigh_warp_{}_g{lanes}_r{row}_{}",
            kernel.dtype,
            kernel.suffix()
        )
    }

    fn program(&self, kernel: &EighKernel) -> Option<String> {
        let EighClass::Warp { lanes, row } = kernel.class else {
            unreachable!("the warp descriptor compiles warp classes")
        };
        let mut s = common_headers();
        s.push_str(EIGH_WARP_SOURCE);
        s.push_str(&instantiate(
            "MB_EIGH_WARP_KERNEL",
            kernel,
            &self.name(kernel),
            &format!("{lanes}, {row}"),
        ));
        Some(s)
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let EighClass::Warp { lanes, row } = kernel.class else {
            unreachable!("the warp descriptor checks warp classes")
        };
        let t = kernel.c_type();
        let elem = kernel.elem();
        let mut s = assert_eq_line("MB_WARP_THREADS", WARP_BLOCK_THREADS, "warp block threads");
        s.push_str(&assert_eq_line(
            &format!("MB_WARP_THREADS / {lanes} * mb_warp_group_words({row}) * sizeof({t})"),
            warp_shared_bytes(lanes, row, elem),
            "warp shared bytes",
        ));
        s
    }
}
