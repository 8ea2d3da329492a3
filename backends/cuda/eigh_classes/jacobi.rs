//! The Jacobi class (`kernels/eigh/jacobi.cu`, in the main translation unit): parallel-order
//! two-sided Jacobi for the orders above the other classes, a team of threads per matrix with
//! the matrix in shared memory, or one matrix per block in a global workspace when it does not
//! fit. Its buckets hold one padded order each.

use super::super::adapter::DeviceInfo;
use super::super::command::blocks_for;
use super::super::driver::bytes_for;
use super::super::eigh::CudaEighAlgorithm;
use super::super::eigh_kernel::EighKernel;
use super::{assert_eq_line, Bucket, ClassPlan, EighClass, LaunchShape, SizeClass};
use crate::{Error, Result};

/// Threads per team when a Jacobi matrix lives in the global workspace.
const GLOBAL_TEAM: usize = 512;
/// Fraction of device memory the global workspace may take (1 / this).
const WORKSPACE_SHARE: usize = 8;

/// Jacobi threads per team: one per (pair, row) item of a rotation pass, but at most a warp up
/// to order 32, so small matrices synchronise with warp barriers only; up to 256 above.
fn team_size(nmax: usize) -> usize {
    let items = (nmax / 2 * nmax).next_power_of_two();
    if nmax <= 32 {
        items.clamp(4, 32)
    } else {
        items.clamp(64, 256)
    }
}

/// Dynamic shared memory of a Jacobi CTA (jacobi.cu's `mb_jacobi_shared_bytes`).
fn jacobi_shared_bytes(
    elem: usize,
    nmax: usize,
    teams: usize,
    vectors: bool,
    in_global: bool,
) -> usize {
    let mats = if in_global {
        0
    } else {
        nmax * (nmax + 1) * if vectors { 2 } else { 1 }
    };
    let per_team = mats + 3 * nmax;
    let ints_at = (teams * per_team * elem).next_multiple_of(8);
    ints_at + teams * (2 * nmax + 4) * 4 + teams * 8
}

/// The descriptor.
pub(crate) struct Jacobi;

impl SizeClass for Jacobi {
    fn owns(&self, class: EighClass) -> bool {
        class == EighClass::Jacobi
    }

    fn shape(&self, _n: usize, _elem: usize, _device: &DeviceInfo) -> Option<EighClass> {
        Some(EighClass::Jacobi)
    }

    fn takes(&self, _: CudaEighAlgorithm, _: usize, _: usize, _: usize, _: bool) -> bool {
        true
    }

    fn pads(&self) -> bool {
        true
    }

    /// Warp-sized teams share a block; a larger team is the whole block, since its
    /// `__syncthreads` barriers must not be shared with a team on another sweep. Matrices that
    /// do not fit shared memory get one block each in a global-memory slot, the grid looping
    /// over the bucket.
    fn plan(&self, _class: EighClass, bucket: &Bucket, device: &DeviceInfo) -> Result<ClassPlan> {
        let (nmax, elem, vectors, count) = (bucket.nmax, bucket.elem, bucket.vectors, bucket.count);
        let team = team_size(nmax);
        let block = if team <= 32 { 128 } else { team };
        let teams = block / team;
        let shared = jacobi_shared_bytes(elem, nmax, teams, vectors, false);
        if shared <= device.max_shared_per_block {
            return Ok(ClassPlan {
                launches: vec![LaunchShape {
                    entry: 0,
                    block: block as u32,
                    grid: blocks_for(count, teams)?,
                    shared: shared as u32,
                    nmax: nmax as i32,
                    team: team as i32,
                    phase: 0,
                    layout: 0,
                }],
                workspace_bytes: 0,
            });
        }
        let slot_bytes = bytes_for(nmax * (nmax + 1) * if vectors { 2 } else { 1 }, elem)?;
        let budget = device.total_memory / WORKSPACE_SHARE;
        let slots = count
            .min(2 * device.multiprocessors)
            .min((budget / slot_bytes).max(1));
        Ok(ClassPlan {
            launches: vec![LaunchShape {
                entry: 0,
                block: GLOBAL_TEAM as u32,
                grid: slots as u32,
                shared: jacobi_shared_bytes(elem, nmax, 1, vectors, true) as u32,
                nmax: nmax as i32,
                team: GLOBAL_TEAM as i32,
                phase: 0,
                layout: 0,
            }],
            workspace_bytes: slots
                .checked_mul(slot_bytes)
                .ok_or(Error::TooLarge("eigh workspace"))?,
        })
    }

    fn variants(&self) -> Vec<EighClass> {
        vec![EighClass::Jacobi]
    }

    fn name(&self, kernel: &EighKernel) -> String {
        format!("eigh_jacobi_{}", kernel.dtype)
    }

    fn program(&self, _kernel: &EighKernel) -> Option<String> {
        None
    }

    fn layout_checks(&self, kernel: &EighKernel) -> String {
        let t = kernel.c_type();
        let elem = kernel.elem();
        let mut s = String::new();
        for nmax in [2, 32, 34, 166, 256] {
            let team = team_size(nmax);
            let block = if team <= 32 { 128 } else { team };
            for (teams, in_global) in [(block / team, false), (1, true)] {
                s.push_str(&assert_eq_line(
                    &format!(
                        "mb_jacobi_shared_bytes<{t}>({nmax}, {teams}, {}, {in_global})",
                        kernel.vectors
                    ),
                    jacobi_shared_bytes(elem, nmax, teams, kernel.vectors, in_global),
                    "jacobi shared bytes",
                ));
            }
        }
        s
    }
}
