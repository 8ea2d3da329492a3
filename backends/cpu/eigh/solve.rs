//! One matrix, start to finish: scale, decompose with the kernel that suits its order, then
//! order eigenvalues ascending and fix eigenvector signs (the crate's conventions).

use faer::dyn_stack::MemBuffer;

use super::faer_evd;
use super::tridiag_ql::{implicit_ql, tridiagonalize, NoConvergence};
use crate::Real;

/// Orders from this one up go to faer's blocked solver; below it the unblocked
/// tridiagonalisation + QL kernel wins (measured: docs/benchmarks/cpu-eigh.md).
pub(crate) const FAER_MIN_ORDER: usize = 48;

/// Per-thread working memory for matrices up to order `max_n`, allocated at plan time.
pub(crate) struct Scratch<T> {
    z: Vec<T>,
    u: Vec<T>,
    d: Vec<T>,
    e: Vec<T>,
    order: Vec<usize>,
    faer: Option<MemBuffer>,
}

impl<T: Real> Scratch<T> {
    pub(crate) fn new(max_n: usize, vectors: bool) -> Self {
        let uses_faer = max_n >= FAER_MIN_ORDER;
        Self {
            z: vec![T::zero(); max_n * max_n],
            u: if uses_faer && vectors { vec![T::zero(); max_n * max_n] } else { Vec::new() },
            d: vec![T::zero(); max_n],
            e: vec![T::zero(); max_n],
            order: vec![0; max_n],
            faer: uses_faer.then(|| faer_evd::scratch_buffer(faer_evd::scratch_req::<T>(max_n, vectors))),
        }
    }
}

/// Largest |a_rc| over the lower triangle of a row-major matrix of order `n`, or `None` if a
/// value there is NaN or infinite.
pub(crate) fn lower_max_abs<T: Real>(a: &[T], n: usize) -> Option<T> {
    let mut m = T::zero();
    for r in 0..n {
        for &x in &a[r * n..r * n + r + 1] {
            if !x.is_finite() {
                return None;
            }
            m = m.max(x.abs());
        }
    }
    Some(m)
}

/// Multiplies by 2^k in two exact steps, so factors beyond the exponent range of one power of
/// two (needed for subnormal inputs) still apply.
fn scale_pow2<T: Real>(x: T, k: i32) -> T {
    let two = T::one() + T::one();
    let half = k / 2;
    x * two.powi(half) * two.powi(k - half)
}

/// Decomposes the row-major matrix `a` (order `n`, lower triangle read, all finite) into `w`
/// and, if given, `v` (row-major, eigenvectors as columns).
pub(crate) fn solve<T: Real>(
    a: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    s: &mut Scratch<T>,
) -> Result<(), NoConvergence> {
    if n == 0 {
        return Ok(());
    }
    let anrm = lower_max_abs(a, n).unwrap_or_else(T::zero);
    if anrm == T::zero() || n == 1 {
        // A zero matrix (or 1 x 1): eigenvalues are the diagonal, eigenvectors the identity.
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = a[i * n + i];
        }
        if let Some(v) = v {
            for (idx, x) in v.iter_mut().enumerate() {
                *x = if idx / n == idx % n { T::one() } else { T::zero() };
            }
        }
        return Ok(());
    }
    // Scale by a power of two (exact) so the largest entry lies in [0.5, 1).
    let k = -(anrm.to_f64_lossless().log2().floor() as i32) - 1;
    let z = &mut s.z[..n * n];
    for r in 0..n {
        for c in 0..=r {
            z[c * n + r] = scale_pow2(a[r * n + c], k);
        }
    }
    let want_vectors = v.is_some();
    let d = &mut s.d[..n];
    let vectors_in: &[T] = if n >= FAER_MIN_ORDER {
        let stack = s.faer.as_mut().expect("plan allocates faer scratch for its largest order");
        let u = want_vectors.then(|| &mut s.u[..n * n]);
        faer_evd::decompose(z, n, d, u, stack)?;
        &s.u
    } else {
        let e = &mut s.e[..n];
        tridiagonalize(z, n, d, e, want_vectors);
        implicit_ql(d, e, n, want_vectors.then_some(&mut *z))?;
        &s.z
    };
    // Ascending order by insertion sort on an index list: O(n) when already sorted (faer's
    // output), O(n^2) at worst, both negligible against the O(n^3) decomposition.
    let order = &mut s.order[..n];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    for i in 1..n {
        let mut j = i;
        while j > 0 && d[order[j - 1]] > d[order[j]] {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    for (wk, &src) in w.iter_mut().zip(order.iter()) {
        *wk = scale_pow2(d[src], -k);
    }
    if let Some(v) = v {
        for (k_out, &src) in order.iter().enumerate() {
            let col = &vectors_in[src * n..src * n + n];
            let mut big = 0;
            for (i, x) in col.iter().enumerate() {
                if x.abs() > col[big].abs() {
                    big = i;
                }
            }
            let sign = if col[big] < T::zero() { -T::one() } else { T::one() };
            for (i, &x) in col.iter().enumerate() {
                v[i * n + k_out] = sign * x;
            }
        }
    }
    Ok(())
}
