//! The per-matrix kernel for larger orders: faer's blocked self-adjoint eigensolver
//! (Householder tridiagonalisation with blocked updates, then divide and conquer / QR on the
//! tridiagonal; faer 0.24 `linalg::evd::self_adjoint_evd`), sequential inside one matrix
//! because the batch is already spread over threads, with scratch from the plan's arena.

use faer::diag::DiagMut;
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::{MatMut, MatRef, Par};

use crate::Real;

fn compute(vectors: bool) -> ComputeEigenvectors {
    if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    }
}

/// Scratch faer needs for one matrix of order `n`.
pub(crate) fn scratch_req<T: Real>(n: usize, vectors: bool) -> StackReq {
    evd::self_adjoint_evd_scratch::<T>(n, compute(vectors), Par::Seq, Default::default())
}

/// Allocates faer's scratch (plan time).
pub(crate) fn scratch_buffer(req: StackReq) -> MemBuffer {
    MemBuffer::new(req)
}

/// Eigenvalues of the symmetric matrix whose lower triangle is in `z` (column-major, order
/// `n`) into `d`, and eigenvectors into `u` (column-major) if given. Fails only if faer's QR
/// iteration does not converge.
pub(crate) fn decompose<T: Real>(
    z: &[T],
    n: usize,
    d: &mut [T],
    u: Option<&mut [T]>,
    stack: &mut MemBuffer,
) -> Result<(), super::tridiag_ql::NoConvergence> {
    let a = MatRef::from_column_major_slice(&z[..n * n], n, n);
    let s = DiagMut::from_slice_mut(&mut d[..n]);
    let u = u.map(|u| MatMut::from_column_major_slice_mut(&mut u[..n * n], n, n));
    evd::self_adjoint_evd(a, s, u, Par::Seq, MemStack::new(stack), Default::default())
        .map_err(|_| super::tridiag_ql::NoConvergence)
}
