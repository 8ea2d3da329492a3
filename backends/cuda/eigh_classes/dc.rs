//! The divide-and-conquer class (`kernels/eigh/dc.cu`), orders above the block classes (where A
//! no longer fits a block's shared memory) up to [`DC_MAX_ORDER`], and every order from 33
//! under [`CudaEighAlgorithm::DivideConquer`]: blocked Householder tridiagonalisation with the
//! matrix in global memory, Cuppen's divide and conquer on the tridiagonal matrix (LAPACK
//! dstedc/dlaed0-dlaed4, warp QL leaves, GEMM merges), a blocked back-transformation; values
//! only, QL on the tridiagonal matrix, a lane per matrix. A block per matrix with small shared
//! memory, so several matrices are in flight per multiprocessor.
//!
//! Each matrix in flight has a slot of the plan's workspace (one n x n buffer: with vectors
//! the tridiagonal matrix's eigenvectors, merged in place; without, the copy of A being
//! reduced), so the workspace of a bucket whose matrices all fit one wave is about the size of
//! its matrices (1.02-1.1x from n = 1024). The slots hold at most a
//! [`DC_WORKSPACE_SHARE`]-th of the device's memory, and a bucket with more matrices than
//! slots runs as waves of the same launches (`MbEighArgs::phase` the wave,
//! `MbEighArgs::team` the slots).
//!
//! Only vectors of the order's length use shared memory (the reduce step's v and w, the solve
//! step's 18 per-order vectors). Where a step's would not fit a block with its tiles (the
//! solve step from f64 n = 1858 / f32 n = 3111 with 227 KiB per block, earlier on smaller
//! devices), the plan chooses from the bucket's order to keep them in the slots instead
//! (`MbEighArgs::layout`, a bit per step); [`CudaEighAlgorithm::DivideConquerGlobal`] forces
//! that layout for both steps at every order, to test and measure it.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::{common_headers, EighKernel, EIGH_BLOCK_SOURCE, EIGH_DC_SOURCE};
use super::warp::WARP_MAX_ORDER;
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::{Error, Result};

/// Largest order of the divide-and-conquer class: the CUDA eigh's own limit
/// ([`super::super::CUDA_EIGH_MAX_ORDER`]), so no order of a CUDA plan falls to Jacobi unless
/// forced ([`CudaEighAlgorithm::Jacobi`]) or on a device whose blocks cannot hold the class's
/// tiles.
pub const DC_MAX_ORDER: usize = 4096;
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
/// Layout bit: the reduce step's v and w in the slot (`MB_DC_REDUCE_GLOBAL`).
const DC_REDUCE_GLOBAL: i32 = 1;
/// Layout bit: the solve step's per-order vectors in the slot (`MB_DC_SOLVE_GLOBAL`).
const DC_SOLVE_GLOBAL: i32 = 2;
/// Words of the element type per order that a slot holds for those vectors when either bit
/// is set (`MB_DC_GLOBAL_VECTORS`: 11 vectors of floats and 7 of ints, an int per word).
const DC_GLOBAL_VECTORS: usize = 18;

/// Words (of the element type) of one slot for launch order `nmax` and `layout` bits (dc.cu's
/// `mb_dc_slot_words`): the n x n buffer, the panel's V and W (the merge's row panel), d, e
/// and tau, and with either layout bit the per-order vectors.
pub(crate) fn dc_slot_words(nmax: usize, layout: i32) -> usize {
    let global = if layout != 0 {
        DC_GLOBAL_VECTORS * nmax
    } else {
        0
    };
    nmax * nmax + 2 * nmax * DC_NB + 3 * nmax + global
}

/// Bytes of the workspace of `slots` slots (dc.cu's `mb_dc_workspace_bytes`).
pub(crate) fn dc_workspace_bytes(
    slots: usize,
    nmax: usize,
    elem: usize,
    layout: i32,
) -> Option<usize> {
    slots
        .checked_mul(dc_slot_words(nmax, layout))?
        .checked_mul(elem)?
        .checked_add(slots.checked_mul(DC_INTS * 4)?)
}

/// Shared memory of the reduce step (`mb_dc_reduce_shared_bytes`): v and w unless in the
/// slot, partials, panel products and the trailing update's four tiles.
pub(crate) fn dc_reduce_shared_bytes(nmax: usize, elem: usize, layout: i32) -> usize {
    let vectors = if layout & DC_REDUCE_GLOBAL != 0 {
        0
    } else {
        2 * nmax
    };
    (vectors + 64 + 2 * DC_NB + 4 * 32 * (DC_NB + 1)) * elem
}

/// Shared memory of the solve step (`mb_dc_merge_shared_bytes`): 11 vectors of floats and 7
/// of ints unless in the slot, the GEMM tiles, 64 partials, 8 ints.
pub(crate) fn dc_merge_shared_bytes(nmax: usize, elem: usize, layout: i32) -> usize {
    let (floats, ints) = if layout & DC_SOLVE_GLOBAL != 0 {
        (0, 0)
    } else {
        (11 * nmax, 7 * nmax)
    };
    (floats + 2 * DC_TK * DC_TM + 64) * elem + (ints + 8) * 4
}

/// Shared memory of the back step (`mb_dc_back_shared_bytes`).
pub(crate) fn dc_back_shared_bytes(elem: usize) -> usize {
    (2 * DC_NB * DC_NB + DC_NB) * elem
}

/// The layout bits of a bucket of largest order `nmax`: a step keeps its per-order vectors in
/// the slots where they would not fit a block's shared memory beside its tiles, or when
/// `forced` ([`CudaEighAlgorithm::DivideConquerGlobal`]). Values only runs no solve step.
fn dc_layout(nmax: usize, elem: usize, vectors: bool, forced: bool, device: &DeviceInfo) -> i32 {
    let limit = device.max_shared_per_block;
    if forced {
        return DC_REDUCE_GLOBAL | DC_SOLVE_GLOBAL;
    }
    let mut layout = 0;
    if dc_reduce_shared_bytes(nmax, elem, 0) > limit {
        layout |= DC_REDUCE_GLOBAL;
    }
    if vectors && dc_merge_shared_bytes(nmax, elem, 0) > limit {
        layout |= DC_SOLVE_GLOBAL;
    }
    layout
}

/// Matrices in flight (slots) for a bucket of `count` matrices of order `nmax` on `device`.
fn dc_slots(count: usize, nmax: usize, elem: usize, layout: i32, device: &DeviceInfo) -> usize {
    let slot = dc_workspace_bytes(1, nmax, elem, layout).unwrap_or(usize::MAX);
    let budget = device.total_memory / DC_WORKSPACE_SHARE;
    count.min((budget / slot).max(1)).max(1)
}

/// The descriptor.
pub(crate) struct Dc;

impl SizeClass for Dc {
    fn owns(&self, class: EighClass) -> bool {
        class == EighClass::DivideConquer
    }

    /// Orders 33 to [`DC_MAX_ORDER`] on a device whose blocks hold every step's tiles (the
    /// per-order vectors go to the slots where they do not fit: 34 KiB f64 / 17 KiB f32 then).
    fn shape(&self, n: usize, elem: usize, device: &DeviceInfo) -> Option<EighClass> {
        let global = DC_REDUCE_GLOBAL | DC_SOLVE_GLOBAL;
        let fits = [
            dc_reduce_shared_bytes(n, elem, global),
            dc_merge_shared_bytes(n, elem, global),
            dc_back_shared_bytes(elem),
        ]
        .into_iter()
        .all(|bytes| bytes <= device.max_shared_per_block);
        (n > WARP_MAX_ORDER && n <= DC_MAX_ORDER && fits).then_some(EighClass::DivideConquer)
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

    /// Per wave of `slots` matrices: reduce, then solve and back (vectors) or values; the
    /// layout from the bucket's largest order (every wave the same).
    fn plan(&self, _class: EighClass, bucket: &Bucket, device: &DeviceInfo) -> Result<ClassPlan> {
        let (count, nmax, elem, vectors) = (bucket.count, bucket.nmax, bucket.elem, bucket.vectors);
        let forced = bucket.algorithm == CudaEighAlgorithm::DivideConquerGlobal;
        let layout = dc_layout(nmax, elem, vectors, forced, device);
        let slots = dc_slots(count, nmax, elem, layout, device);
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
                    layout,
                })
            };
            launches.push(step(
                0,
                DC_THREADS,
                1,
                dc_reduce_shared_bytes(nmax, elem, layout),
            )?);
            if vectors {
                launches.push(step(
                    1,
                    DC_THREADS,
                    1,
                    dc_merge_shared_bytes(nmax, elem, layout),
                )?);
                launches.push(step(2, DC_THREADS, 1, dc_back_shared_bytes(elem))?);
            } else {
                launches.push(step(1, DC_VALUES_PER_BLOCK, DC_VALUES_PER_BLOCK, 0)?);
            }
        }
        Ok(ClassPlan {
            launches,
            workspace_bytes: dc_workspace_bytes(slots, nmax, elem, layout)
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
            ("MB_DC_REDUCE_GLOBAL", DC_REDUCE_GLOBAL as usize),
            ("MB_DC_SOLVE_GLOBAL", DC_SOLVE_GLOBAL as usize),
            ("MB_DC_GLOBAL_VECTORS", DC_GLOBAL_VECTORS),
        ] {
            s.push_str(&assert_eq_line(name, value, "dc constant"));
        }
        s.push_str(&assert_eq_line(
            &format!("mb_dc_back_shared_bytes<{t}>()"),
            dc_back_shared_bytes(elem),
            "dc back shared bytes",
        ));
        for n in [33, 64, 166, 236, 511, 512, 513, 1024, 1858, 3111, 4096] {
            for layout in 0..4 {
                s.push_str(&assert_eq_line(
                    &format!("mb_dc_reduce_shared_bytes<{t}>({n}, {layout})"),
                    dc_reduce_shared_bytes(n, elem, layout),
                    "dc reduce shared bytes",
                ));
                s.push_str(&assert_eq_line(
                    &format!("mb_dc_merge_shared_bytes<{t}>({n}, {layout})"),
                    dc_merge_shared_bytes(n, elem, layout),
                    "dc solve shared bytes",
                ));
                for slots in [1, 7, 1000] {
                    s.push_str(&assert_eq_line(
                        &format!("mb_dc_workspace_bytes<{t}>({slots}, {n}, {layout})"),
                        dc_workspace_bytes(slots, n, elem, layout).expect("small"),
                        "dc workspace bytes",
                    ));
                }
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

    fn bucket(count: usize, nmax: usize, elem: usize, vectors: bool) -> Bucket {
        Bucket {
            count,
            nmax,
            elem,
            vectors,
            a_len: count * nmax * nmax,
            algorithm: CudaEighAlgorithm::SizeClasses,
        }
    }

    /// A bucket larger than the workspace's slots runs in waves: every matrix in exactly one
    /// wave, each wave's steps in order, the workspace within its share of the device.
    #[test]
    fn waves_cover_every_matrix_once_within_the_workspace_share() {
        for (count, nmax, vectors) in [
            (1, 33, true),
            (5000, 512, true),
            (70_001, 256, false),
            (300, 2048, true),
            (9, 4096, false),
        ] {
            let dev = device(8 << 30);
            let plan = Dc
                .plan(
                    EighClass::DivideConquer,
                    &bucket(count, nmax, 8, vectors),
                    &dev,
                )
                .unwrap();
            let steps = if vectors { 3 } else { 2 };
            assert_eq!(plan.launches.len() % steps, 0);
            let slots = plan.launches[0].team as usize;
            let layout = plan.launches[0].layout;
            assert!(plan.workspace_bytes <= dev.total_memory / DC_WORKSPACE_SHARE || slots == 1);
            assert_eq!(
                plan.workspace_bytes,
                dc_workspace_bytes(slots, nmax, 8, layout).unwrap()
            );
            let mut covered = 0;
            for (wave, group) in plan.launches.chunks(steps).enumerate() {
                let here = slots.min(count - covered);
                assert!(group.iter().all(|l| l.phase == wave as i32));
                assert!(group.iter().all(|l| l.layout == layout));
                assert_eq!(group[0].grid as usize, here, "a block per matrix");
                let per_last = if vectors { 1 } else { DC_VALUES_PER_BLOCK };
                assert_eq!(group[steps - 1].grid as usize, here.div_ceil(per_last));
                covered += here;
            }
            assert_eq!(covered, count);
        }
    }

    /// The per-order vectors move to the slots exactly where a step's shared memory with them
    /// would exceed the device's block (f64 solve from 1858, f32 from 3111 at 227 KiB; the
    /// reduce step keeps them to 4096), every launch within the block's shared memory, and
    /// the forced layout moves both steps' at any order.
    #[test]
    fn the_global_layout_is_taken_where_the_vectors_do_not_fit() {
        let dev = device(80 << 30);
        for (elem, first) in [(8, 1858), (4, 3111)] {
            for n in [first - 1, first, 4096] {
                let plan = Dc
                    .plan(EighClass::DivideConquer, &bucket(4, n, elem, true), &dev)
                    .unwrap();
                let want = if n >= first { DC_SOLVE_GLOBAL } else { 0 };
                assert!(plan.launches.iter().all(|l| l.layout == want), "{elem} {n}");
                assert!(plan
                    .launches
                    .iter()
                    .all(|l| l.shared as usize <= dev.max_shared_per_block));
            }
        }
        // A 48 KiB device: the f64 solve step's vectors from n = 278, the reduce step's from 897.
        let small = DeviceInfo {
            max_shared_per_block: 48 * 1024,
            ..dev.clone()
        };
        for (n, want) in [
            (277, 0),
            (278, DC_SOLVE_GLOBAL),
            (897, DC_SOLVE_GLOBAL | DC_REDUCE_GLOBAL),
        ] {
            assert_eq!(dc_layout(n, 8, true, false, &small), want, "n {n}");
            assert_eq!(
                Dc.shape(n, 8, &small),
                Some(EighClass::DivideConquer),
                "n {n}"
            );
        }
        // Values only: no solve step.
        assert_eq!(dc_layout(4096, 8, false, false, &dev), 0);
        let mut forced = bucket(3, 40, 4, true);
        forced.algorithm = CudaEighAlgorithm::DivideConquerGlobal;
        let plan = Dc.plan(EighClass::DivideConquer, &forced, &dev).unwrap();
        assert!(plan
            .launches
            .iter()
            .all(|l| l.layout == DC_REDUCE_GLOBAL | DC_SOLVE_GLOBAL));
        // Blocks too small for the f64 reduce step's tiles: no divide and conquer.
        let tiny = DeviceInfo {
            max_shared_per_block: 32 * 1024,
            ..dev
        };
        assert_eq!(Dc.shape(100, 8, &tiny), None);
        assert_eq!(Dc.shape(100, 4, &tiny), Some(EighClass::DivideConquer));
    }

    /// Issue 26's aim, plan device bytes at most about twice the matrices: a slot is one n x n
    /// buffer and panels, so a bucket in one wave takes 1.02-1.1x its matrices from n = 1024.
    #[test]
    fn the_workspace_of_one_wave_is_about_the_matrices() {
        let dev = device(80 << 30);
        for (n, count) in [(1024, 512), (2048, 128), (4096, 32), (4096, 1)] {
            for elem in [4, 8] {
                for vectors in [true, false] {
                    let plan = Dc
                        .plan(
                            EighClass::DivideConquer,
                            &bucket(count, n, elem, vectors),
                            &dev,
                        )
                        .unwrap();
                    assert_eq!(plan.launches[0].team as usize, count, "one wave");
                    let ratio = plan.workspace_bytes as f64 / (count * n * n * elem) as f64;
                    assert!((1.0..1.1).contains(&ratio), "n {n} elem {elem}: {ratio}");
                }
            }
        }
    }
}
