//! Summation and extremum kernels with a fixed evaluation order.

use crate::Real;

/// Elements summed with 8 running accumulators before pairwise halving takes over
/// (NumPy's `pairwise_sum` uses the same block).
pub(crate) const BLOCK: usize = 128;

/// NaN-propagating maximum: NaN if either argument is NaN (`f64::max` would drop it).
#[inline(always)]
pub(crate) fn max_nan<A: Real>(a: A, b: A) -> A {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// NaN-propagating minimum.
#[inline(always)]
pub(crate) fn min_nan<A: Real>(a: A, b: A) -> A {
    if a < b || a.is_nan() {
        a
    } else {
        b
    }
}

/// Sum of `f(i)` for `i in lo..hi`, pairwise over a tree fixed by `hi - lo` alone: at most
/// [`BLOCK`] terms with 8 interleaved accumulators, longer ranges split in halves (the split
/// rounded down to a multiple of 8) and summed recursively. Error bound about
/// `(BLOCK / 8 + log2((hi - lo) / BLOCK)) eps sum |f(i)|` (Higham 1993).
#[inline(always)]
pub(crate) fn pairwise<A: Real>(lo: usize, hi: usize, f: &impl Fn(usize) -> A) -> A {
    let n = hi - lo;
    if n <= BLOCK {
        let mut acc = [A::zero(); 8];
        let full = n / 8 * 8;
        let mut i = 0;
        while i < full {
            for (j, a) in acc.iter_mut().enumerate() {
                *a += f(lo + i + j);
            }
            i += 8;
        }
        let mut sum =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for k in full..n {
            sum += f(lo + k);
        }
        sum
    } else {
        let half = n / 2 / 8 * 8;
        pairwise(lo, lo + half, f) + pairwise(lo + half, hi, f)
    }
}

/// Fold of `f(i)` for `i in lo..hi` with a NaN-propagating `combine` (max or min), starting
/// from `identity`. Four interleaved running values; max and min are exact, so the order only
/// decides which NaN is returned.
#[inline(always)]
pub(crate) fn extremum<A: Real>(
    lo: usize,
    hi: usize,
    identity: A,
    combine: impl Fn(A, A) -> A,
    f: &impl Fn(usize) -> A,
) -> A {
    let mut acc = [identity; 4];
    let full = lo + (hi - lo) / 4 * 4;
    let mut i = lo;
    while i < full {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = combine(*a, f(i + j));
        }
        i += 4;
    }
    let mut r = combine(combine(acc[0], acc[1]), combine(acc[2], acc[3]));
    for k in full..hi {
        r = combine(r, f(k));
    }
    r
}

/// Combines the rows of a row-major `(rows, cols)` buffer pairwise in place (row 2i with row
/// 2i + 1, level by level) and returns row 0, or `None` for zero rows. The tree depends on
/// `rows` alone.
pub(crate) fn tree_rows<A: Real>(
    p: &mut [A],
    cols: usize,
    combine: impl Fn(A, A) -> A,
) -> Option<&[A]> {
    let mut rows = p.len().checked_div(cols).unwrap_or(0);
    if rows == 0 {
        return None;
    }
    while rows > 1 {
        let half = rows / 2;
        for i in 0..half {
            for j in 0..cols {
                p[i * cols + j] = combine(p[2 * i * cols + j], p[(2 * i + 1) * cols + j]);
            }
        }
        if rows % 2 == 1 {
            p.copy_within((rows - 1) * cols..rows * cols, half * cols);
            rows = half + 1;
        } else {
            rows = half;
        }
    }
    Some(&p[..cols])
}
