//! Householder tridiagonalisation and the implicit QL algorithm with Wilkinson-style shifts:
//! the per-matrix kernel for small orders.
//!
//! Algorithm: EISPACK `tred2` and `tql2` (Smith et al., Matrix Eigensystem Routines - EISPACK
//! Guide, 1976; Bowdler, Martin, Reinsch & Wilkinson, Numer. Math. 11 (1968) 293), in the form
//! popularised by JAMA. Re-derived here for a column-major working matrix, so that every inner
//! loop (Householder updates, accumulation, Givens rotations of eigenvector columns) walks
//! contiguous memory. The matrix is pre-scaled by the caller so its largest entry is in
//! [0.5, 1), which keeps the sums of squares clear of overflow and underflow.

use crate::Real;

/// The QL iteration did not converge within its iteration cap (30 per eigenvalue, as LAPACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoConvergence;

/// sqrt(x^2 + y^2) without libm's `hypot` when the squares can neither overflow nor lose
/// everything to underflow (the common case after the caller's scaling), `hypot` otherwise.
#[inline(always)]
fn fast_hypot<T: Real>(x: T, y: T) -> T {
    let r2 = x * x + y * y;
    if r2 > T::SAFE_MIN.sqrt() && r2 < T::max_value().sqrt() {
        r2.sqrt()
    } else {
        x.hypot(y)
    }
}

/// The smallest `tst1` of the QL deflation test `|e| <= eps * tst1`: off-diagonals below
/// `SAFE_MIN / eps` are dropped even in a block of tiny entries. Without this floor a block of
/// subnormal entries (a fuzzed f32 matrix with entries 1e-43 .. 1e-19 makes one) is iterated
/// in subnormal arithmetic, whose few significant bits give Givens rotations with
/// `c^2 + s^2` off 1 by 5% and eigenvectors that are not orthonormal. Rotations built from a
/// normal `e` stay orthogonal to rounding. The caller scales the matrix so that its largest
/// entry is at least 0.5, so the dropped entries are far below `eps * ||A||`, the backward
/// error the algorithm guarantees anyway; LAPACK's `xSTEQR` adds `SAFE_MIN` to its test too.
#[inline(always)]
pub(crate) fn negligible_floor<T: Real>() -> T {
    T::SAFE_MIN / (T::epsilon() * T::epsilon())
}

/// Dot product with four independent partial sums (a fixed order, so results are the same on
/// every run and thread count), which breaks the add-latency chain of a single accumulator.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let zero = T::zero();
    let mut acc = [zero; 4];
    let (a4, a_tail) = a.split_at(a.len() / 4 * 4);
    let (b4, b_tail) = b[..a.len()].split_at(a4.len());
    for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = zero;
    for (x, y) in a_tail.iter().zip(b_tail) {
        tail += *x * *y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Reduces the symmetric matrix held in `z` (column-major, `z[c * n + r]` is row `r`, column
/// `c`; only entries with `r >= c` are read) to tridiagonal form `T = Q^T A Q`.
/// On return `d` holds T's diagonal, `e[1..n]` its sub-diagonal (`e[0] = 0`), and, if
/// `accumulate`, `z` holds Q (column-major); otherwise `z` is garbage.
#[inline(always)]
pub(crate) fn tridiagonalize<T: Real>(
    z: &mut [T],
    n: usize,
    d: &mut [T],
    e: &mut [T],
    accumulate: bool,
) {
    debug_assert!(z.len() >= n * n && d.len() >= n && e.len() >= n && n >= 1);
    let zero = T::zero();
    let at = |r: usize, c: usize| c * n + r;
    for j in 0..n {
        d[j] = z[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let mut scale = zero;
        let mut h = zero;
        for &dk in &d[..i] {
            scale += dk.abs();
        }
        if scale == zero {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = z[at(i - 1, j)];
                z[at(i, j)] = zero;
                z[at(j, i)] = zero;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let mut g = h.sqrt();
            if f > zero {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in &mut e[..i] {
                *ej = zero;
            }
            // e[0..i] = A[0..i, 0..i] * d (symmetric product from the lower triangle).
            for j in 0..i {
                let f = d[j];
                z[at(j, i)] = f;
                let col = &z[j * n + j..j * n + i];
                let below = &col[1..];
                let g = e[j] + col[0] * f + dot(below, &d[j + 1..i]);
                for (ek, &ck) in e[j + 1..i].iter_mut().zip(below) {
                    *ek += ck * f;
                }
                e[j] = g;
            }
            let mut f = zero;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            // Rank-2 update A -= d e^T + e d^T on the lower triangle.
            for j in 0..i {
                let f = d[j];
                let g = e[j];
                let col = &mut z[j * n + j..j * n + i];
                for ((ck, &ek), &dk) in col.iter_mut().zip(&e[j..i]).zip(&d[j..i]) {
                    *ck -= f * ek + g * dk;
                }
                d[j] = z[at(i - 1, j)];
                z[at(i, j)] = zero;
            }
        }
        d[i] = h;
    }
    if !accumulate {
        for (j, dj) in d.iter_mut().enumerate().take(n) {
            *dj = z[at(j, j)];
        }
        e[0] = zero;
        return;
    }
    // Accumulate the Householder reflectors into Q, back to front.
    for i in 0..n - 1 {
        z[at(n - 1, i)] = z[at(i, i)];
        z[at(i, i)] = T::one();
        let h = d[i + 1];
        if h != zero {
            for k in 0..=i {
                d[k] = z[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let (left, right) = z.split_at_mut((i + 1) * n);
                let u = &right[..=i];
                let col = &mut left[j * n..j * n + i + 1];
                let g = dot(u, col);
                for (ck, &dk) in col.iter_mut().zip(&d[..=i]) {
                    *ck -= g * dk;
                }
            }
        }
        for k in 0..=i {
            z[at(k, i + 1)] = zero;
        }
    }
    for j in 0..n {
        d[j] = z[at(n - 1, j)];
        z[at(n - 1, j)] = zero;
    }
    z[at(n - 1, n - 1)] = T::one();
    e[0] = zero;
}

/// Eigenvalues (into `d`, unordered) and optionally eigenvectors (rotations applied to the
/// columns of `z`, which must hold Q from [`tridiagonalize`]) of the symmetric tridiagonal
/// matrix with diagonal `d` and sub-diagonal `e[1..n]`. `e` is destroyed.
#[inline(always)]
pub(crate) fn implicit_ql<T: Real>(
    d: &mut [T],
    e: &mut [T],
    n: usize,
    mut z: Option<&mut [T]>,
) -> Result<(), NoConvergence> {
    let zero = T::zero();
    let one = T::one();
    let two = one + one;
    let eps = T::epsilon();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = zero;
    let mut f = zero;
    let mut tst1 = negligible_floor::<T>();
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 30 {
                    return Err(NoConvergence);
                }
                // Shift from the leading 2x2 block (Wilkinson-style), then chase the bulge.
                let g = d[l];
                let mut p = (d[l + 1] - g) / (two * e[l]);
                let mut r = fast_hypot(p, one);
                if p < zero {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..n] {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = one;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = zero;
                let mut s2 = zero;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    h = c * p;
                    r = fast_hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if let Some(z) = z.as_deref_mut() {
                        let (left, right) = z.split_at_mut((i + 1) * n);
                        let zi = &mut left[i * n..];
                        let zi1 = &mut right[..n];
                        for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                            let hb = *b;
                            *b = s * *a + c * hb;
                            *a = c * *a - s * hb;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = zero;
    }
    Ok(())
}
