//! What an eigh call reports per matrix: the status codes of [`super::BatchedEigh::eigh_info`]
//! (cuSOLVER's batched `info` layout) and the host call's error they make.

use crate::{Error, Result};

/// Per-matrix status code (see [`crate::BatchedEigh::eigh_info`]): the matrix is finite and was
/// decomposed; its outputs hold its eigenvalues (and eigenvectors). After a host call that
/// returned an error for another matrix, it means only that this matrix is sound: such a
/// call writes no output at all. Empty (order 0) matrices always report it.
pub const EIGH_SOLVED: i32 = 0;
/// Per-matrix status code: the matrix's lower triangle holds NaN or +-inf. Nothing was
/// computed for it; a device-buffer call fills its eigenvalues (and eigenvectors, if planned)
/// with NaN, so they never look like a result. Host calls return [`Error::NonFinite`].
pub const EIGH_NON_FINITE: i32 = 1;
/// Per-matrix status code: the iteration did not converge (QL's 30 iterations per eigenvalue,
/// Jacobi's 60 sweeps). A device-buffer call on a GPU fills the matrix's outputs with NaN;
/// host calls return [`Error::NoConvergence`]. Not observed on finite input.
pub const EIGH_NO_CONVERGENCE: i32 = 2;

/// The error a host call reports for the per-matrix status codes `info` (one per matrix, as
/// [`crate::BatchedEigh::eigh_info`] writes them): [`Error::NonFinite`] naming the first matrix with
/// [`EIGH_NON_FINITE`], else [`Error::NoConvergence`] naming the first with any other nonzero
/// code, else `Ok`.
///
/// # Errors
/// As described.
pub fn eigh_info_result(info: &[i32]) -> Result<()> {
    if let Some(matrix) = info.iter().position(|&c| c == EIGH_NON_FINITE) {
        return Err(Error::NonFinite { matrix });
    }
    match info.iter().position(|&c| c != EIGH_SOLVED) {
        Some(matrix) => Err(Error::NoConvergence { matrix }),
        None => Ok(()),
    }
}
