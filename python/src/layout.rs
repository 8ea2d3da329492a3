//! How an array's elements lie in memory, from its DLPack shape and strides (in elements).

/// The memory layouts the bindings read without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// C-contiguous (row-major, numpy's default).
    RowMajor,
    /// Every matrix transposed, the batch C-contiguous: `[..., n, n]` with strides
    /// `[..., n * n, 1, n]`, as `a.mT` (or `a.T` of one matrix, a Fortran-ordered array) of a
    /// C-contiguous `a`. Read row-major, each matrix is its transpose: its lower triangle is
    /// the matrix's upper one.
    Transposed,
    /// Anything else (slices with steps, broadcasts, other axis orders).
    Strided,
}

/// The layout of an array of `shape` and `strides` (`None`: compact row-major, as DLPack
/// before 1.2 allowed). Axes of length 1 may have any stride (numpy gives `newaxis` stride 0),
/// and an empty array has every layout: both are `RowMajor`.
pub fn classify(shape: &[usize], strides: Option<&[i64]>) -> Layout {
    let Some(strides) = strides else {
        return Layout::RowMajor;
    };
    if strides.len() != shape.len() || shape.contains(&0) {
        return if strides.len() == shape.len() {
            Layout::RowMajor
        } else {
            Layout::Strided
        };
    }
    if is_compact(shape, strides) {
        return Layout::RowMajor;
    }
    let rank = shape.len();
    if rank >= 2 && shape[rank - 1] == shape[rank - 2] {
        let mut swapped_strides = strides.to_vec();
        swapped_strides.swap(rank - 1, rank - 2);
        // The matrices are square, so swapping the strides of the last two axes describes
        // the transposed view of the same memory; it is compact iff the array is `Transposed`.
        if is_compact(shape, &swapped_strides) {
            return Layout::Transposed;
        }
    }
    Layout::Strided
}

/// Whether `strides` are the compact row-major strides of `shape`, ignoring axes of length 1.
fn is_compact(shape: &[usize], strides: &[i64]) -> bool {
    let mut expected: i64 = 1;
    for (&len, &stride) in shape.iter().zip(strides).rev() {
        if len != 1 && stride != expected {
            return false;
        }
        // No overflow: the caller's element count fits in memory.
        expected = expected.saturating_mul(len as i64);
    }
    true
}
