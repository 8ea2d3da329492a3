//! The divide-and-conquer class (`kernels/eigh/dc.cu`), orders above the block classes (where A
//! no longer fits a block's shared memory) up to [`DC_MAX_ORDER`], and every order from 33
//! under [`CudaEighAlgorithm::DivideConquer`]: blocked Householder tridiagonalisation with the
//! matrix in global memory, Cuppen's divide and conquer on the tridiagonal matrix (LAPACK
//! dstedc/dlaed0-dlaed4, warp QL leaves, GEMM merges), a blocked back-transformation; values
//! only, QL on the tridiagonal matrix, a lane per matrix. A block per matrix with small shared
//! memory, so several matrices are in flight per multiprocessor.
//!
//! Each matrix in flight has a slot of the plan's workspace (two n x n buffers for Q with
//! vectors, one for the copy of A without); the slots hold at most a
//! [`DC_WORKSPACE_SHARE`]-th of the device's memory, and a bucket with more matrices than
//! slots runs as waves of the same launches (`MbEighArgs::phase` the wave,
//! `MbEighArgs::team` the slots).

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{common_headers, EighKernel, EIGH_BLOCK_SOURCE, EIGH_DC_SOURCE};
use super::warp::WARP_MAX_ORDER;
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::{Error, Result};

/// Largest order of the divide-and-conquer class (issue 26's medium range; above, Jacobi).
pub const DC_MAX_ORDER: usize = 512;
/// The slots of a bucket take at most this fraction of the device's memory (1 / this).
pub const DC_WORKSPACE_SHARE: usize = 8;
/// Threads per block of the reduce, solve and back steps (`MB_DC_THREADS`).
const DC_THREADS: usize = 256;
/// Panel width and reflector block (`MB_DC_NB`).
const DC_NB: usize = 32;
/// Matrices per block of the values step (`MB_DC_VALUES_PER_BLOCK`).
const DC_VALUES_PER_BLOCK: usize = 32;
/// The merge GEMM's tiles (`MB_DC_TM`, `MB_DC_TK`).
const DC_TM: usize = 64;
const DC_TK: usize = 16;
/// Ints per slot after the slots (`MB_DC_INTS`).
const DC_INTS: usize = 4;

/// Words (of the element type) of one slot for launch order `nmax` (dc.cu's
/// `mb_dc_slot_words`): Q buffers, the panel's V and W, d, e and tau.
pub(crate) fn dc_slot_words(nmax: usize, vectors: bool) -> usize {
    (if vectors { 2 } else { 1 }) * nmax * nmax + 2 * nmax * DC_NB + 3 * nmax
}

/// Bytes of the workspace of `slots` slots (dc.cu's `mb_dc_workspace_bytes`).
pub(crate) fn dc_workspace_bytes(
    slots: usize,
    nmax: usize,
    elem: usize,
    vectors: bool,
) -> Option<usize> {
    slots
        .checked_mul(dc_slot_words(nmax, vectors))?
        .checked_mul(elem)?
        .checked_add(slots.checked_mul(DC_INTS * 4)?)
}

/// Shared memory of the reduce step (`mb_dc_reduce_shared_bytes`).
pub(crate) fn dc_reduce_shared_bytes(nmax: usize, elem: usize) -> usize {
    (2 * nmax + 64 + 2 * DC_NB + 4 * 32 * (DC_NB + 1)) * elem
}

/// Shared memory of the solve step (`mb_dc_merge_shared_bytes`): 11 vectors of floats and 7
/// of ints, the GEMM tiles, 64 partials, 8 ints.
pub(crate) fn dc_merge_shared_bytes(nmax: usize, elem: usize) -> usize {
    (11 * nmax + 2 * DC_TK * DC_TM + 64) * elem + (7 * nmax + 8) * 4
}

/// Shared memory of the back step (`mb_dc_back_shared_bytes`).
pub(crate) fn dc_back_shared_bytes(elem: usize) -> usize {
    (2 * DC_NB * DC_NB + DC_NB) * elem
}

/// Matrices in flight (slots) for a bucket of `count` matrices of order `nmax` on `device`.
fn dc_slots(count: usize, nmax: usize, elem: usize, vectors: bool, device: &DeviceInfo) -> usize {
    let slot = dc_workspace_bytes(1, nmax, elem, vectors).unwrap_or(usize::MAX);
    let budget = device.total_memory / DC_WORKSPACE_SHARE;
    count.min((budget / slot).max(1)).max(1)
}

/// The descriptor.
pub(crate) struct Dc;

impl SizeClass for Dc {
    fn owns(&self, class: EighClass) -> bool {
        class == EighClass::DivideConquer
    }

    /// Orders 33 to [`DC_MAX_ORDER`] whose solve step's shared memory fits a block.
    fn shape(&self, n: usize, elem: usize, device: &DeviceInfo) -> Option<EighClass> {
        (n > WARP_MAX_ORDER
            && n <= DC_MAX_ORDER
            && dc_merge_shared_bytes(n, elem) <= device.max_shared_per_block)
            .then_some(EighClass::DivideConquer)
    }

    /// Every algorithm but Jacobi: the block and split classes come first in the registry and
    /// take what they hold, except under [`CudaEighAlgorithm::DivideConquer`].
    fn takes(&self, algorithm: CudaEighAlgorithm, _: usize, _: usize, _: usize, _: bool) -> bool {
        algorithm != CudaEighAlgorithm::Jacobi
    }

    /// Not yet measured on a GPU: [`EighClass::largest_fast_order`] (what `Auto` sends to
    /// CUDA) stays at the block classes' orders until the bench grid has run.
    fn measured(&self) -> bool {
        false
    }

    /// Per wave of `slots` matrices: reduce, then solve and back (vectors) or values.
    fn plan(&self, _class: EighClass, bucket: &Bucket, device: &DeviceInfo) -> Result<ClassPlan> {
        let (count, nmax, elem, vectors) = (bucket.count, bucket.nmax, bucket.elem, bucket.vectors);
        let slots = dc_slots(count, nmax, elem, vectors, device);
        let team = i32::try_from(slots).map_err(|_| Error::TooLarge("eigh workspace slots"))?;
        let mut launches = Vec::new();
        for (wave, first) in (0..count).step_by(slots).enumerate() {
            let here = slots.min(count - first);
            let phase = i32::try_from(wave).map_err(|_| Error::TooLarge("eigh waves"))?;
            let step = |entry, block: usize, per_block, shared: usize| {
                Ok::<_, Error>(LaunchShape {
                    entry,
                    block: block as u32,
                    grid: blocks_for(here, per_block)?,
                    shared: shared as u32,
                    nmax: nmax as i32,
                    team,
                    phase,
                })
            };
            launches.push(step(0, DC_THREADS, 1, dc_reduce_shared_bytes(nmax, elem))?);
            if vectors {
                launches.push(step(1, DC_THREADS, 1, dc_merge_shared_bytes(nmax, elem))?);
                launches.push(step(2, DC_THREADS, 1, dc_back_shared_bytes(elem))?);
            } else {
                launches.push(step(1, DC_VALUES_PER_BLOCK, DC_VALUES_PER_BLOCK, 0)?);
            }
        }
        Ok(ClassPlan {
            launches,
            workspace_bytes: dc_workspace_bytes(slots, nmax, elem, vectors)
                .ok_or(Error::TooLarge("eigh workspace"))?,
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        vec![EighClass::DivideConquer]
    }

    fn name(&self, kernel: &EighKernel) -> String {
        format!("eigh_dc_{}_{}", kernel.dtype, kernel.suffix())
    }

    /// `_reduce`, then `_solve` and `_back` (vectors) or `_values`.
    fn entries(&self, kernel: &EighKernel) -> Vec<String> {
        let steps: &[&str] = if kernel.vectors {
            &["reduce", "solve", "back"]
        } else {
            &["reduce", "values"]
        };
        let name = self.name(kernel);
        steps.iter().map(|s| format!("{name}_{s}")).collect()
    }

    fn program(&self, kernel: &EighKernel) -> Option<String> {
        let mut s = common_headers();
        // dc.cu uses block.cu's block reductions.
        s.push_str(EIGH_BLOCK_SOURCE);
        s.push_str(EIGH_DC_SOURCE);
        s.push_str(&format!(
            "\nMB_EIGH_DC_KERNELS({}, {}, {})\n",
            self.name(kernel),
            kernel.c_type(),
            kernel.vectors
        ));
        Some(s)
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let t = kernel.c_type();
        let elem = kernel.elem();
        let mut s = assert_eq_line("mb_dc_threads()", DC_THREADS, "dc threads");
        for (name, value) in [
            ("MB_DC_NB", DC_NB),
            ("MB_DC_VALUES_PER_BLOCK", DC_VALUES_PER_BLOCK),
            ("MB_DC_TM", DC_TM),
            ("MB_DC_TK", DC_TK),
            ("MB_DC_INTS", DC_INTS),
        ] {
            s.push_str(&assert_eq_line(name, value, "dc constant"));
        }
        s.push_str(&assert_eq_line(
            &format!("mb_dc_back_shared_bytes<{t}>()"),
            dc_back_shared_bytes(elem),
            "dc back shared bytes",
        ));
        for n in [33, 64, 166, 236, 511, 512] {
            s.push_str(&assert_eq_line(
                &format!("mb_dc_reduce_shared_bytes<{t}>({n})"),
                dc_reduce_shared_bytes(n, elem),
                "dc reduce shared bytes",
            ));
            s.push_str(&assert_eq_line(
                &format!("mb_dc_merge_shared_bytes<{t}>({n})"),
                dc_merge_shared_bytes(n, elem),
                "dc solve shared bytes",
            ));
            for slots in [1, 7, 1000] {
                s.push_str(&assert_eq_line(
                    &format!(
                        "mb_dc_workspace_bytes<{t}>({slots}, {n}, {})",
                        kernel.vectors
                    ),
                    dc_workspace_bytes(slots, n, elem, kernel.vectors).expect("small"),
                    "dc workspace bytes",
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(total_memory: usize) -> DeviceInfo {
        DeviceInfo {
            total_memory,
            ..DeviceInfo::with_shared(227 * 1024)
        }
    }

    /// A bucket larger than the workspace's slots runs in waves: every matrix in exactly one
    /// wave, each wave's steps in order, the workspace within its share of the device.
    #[test]
    fn waves_cover_every_matrix_once_within_the_workspace_share() {
        for (count, nmax, vectors) in [(1, 33, true), (5000, 512, true), (70_001, 256, false)] {
            let dev = device(8 << 30);
            let bucket = Bucket {
                count,
                nmax,
                elem: 8,
                vectors,
                a_len: count * nmax * nmax,
            };
            let plan = Dc.plan(EighClass::DivideConquer, &bucket, &dev).unwrap();
            let steps = if vectors { 3 } else { 2 };
            assert_eq!(plan.launches.len() % steps, 0);
            let slots = plan.launches[0].team as usize;
            assert!(plan.workspace_bytes <= dev.total_memory / DC_WORKSPACE_SHARE || slots == 1);
            assert_eq!(
                plan.workspace_bytes,
                dc_workspace_bytes(slots, nmax, 8, vectors).unwrap()
            );
            let mut covered = 0;
            for (wave, group) in plan.launches.chunks(steps).enumerate() {
                let here = slots.min(count - covered);
                assert!(group.iter().all(|l| l.phase == wave as i32));
                assert_eq!(group[0].grid as usize, here, "a block per matrix");
                let per_last = if vectors { 1 } else { DC_VALUES_PER_BLOCK };
                assert_eq!(group[steps - 1].grid as usize, here.div_ceil(per_last));
                covered += here;
            }
            assert_eq!(covered, count);
        }
    }
}
