//! One matrix, start to finish: scale, decompose with the kernel that suits its order, then
//! order eigenvalues ascending and fix eigenvector signs (the crate's conventions).

use faer::dyn_stack::{MemBuffer, StackReq};

use super::faer_evd;
use super::lanes::{implicit_ql_lanes, tridiagonalize_lanes};
use super::tridiag_ql::{implicit_ql, tridiagonalize, NoConvergence};
use crate::{Error, Real, Result};

/// Orders from this one up go to faer's blocked solver; below it the unblocked
/// tridiagonalisation + QL kernel wins (measured: docs/benchmarks/cpu-eigh.md).
pub(crate) const FAER_MIN_ORDER: usize = 48;

/// Orders from 2 up to this one run `LANES` matrices at a time in SIMD lanes when the
/// batch has that many consecutive matrices of one order (measured: docs/benchmarks/cpu-eigh.md).
pub(crate) const LANE_MAX_ORDER: usize = 32;

/// Matrices per lane group. 4 for both dtypes: f64 fills an AVX2 register; 8 f32 lanes measured
/// slower than 4 (LLVM did not vectorise the 8-wide code better than the 4-wide, and the
/// lockstep QL waits for the slowest of more lanes).
pub(crate) const LANES: usize = 4;

/// Per-thread working memory for matrices up to order `max_n`, allocated at plan time from a
/// [`ScratchReq`], the one place its size is worked out.
pub(crate) struct Scratch<T> {
    z: Vec<T>,
    u: Vec<T>,
    d: Vec<T>,
    e: Vec<T>,
    order: Vec<usize>,
    faer: Option<MemBuffer>,
    // Lane groups: interleaved working matrices, and one lane unpacked for `finish`.
    lane_z: Vec<T>,
    lane_d: Vec<T>,
    lane_e: Vec<T>,
    unpacked: Vec<T>,
}

/// What one [`Scratch`] takes, array by array (lengths in elements), in the spirit of faer's
/// `StackReq::all_of`: the plan's memory check and the allocation both read it, so they
/// cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScratchReq {
    /// `z` (column-major work matrix) and `u` (faer's eigenvectors, with vectors from
    /// [`FAER_MIN_ORDER`]).
    z: usize,
    u: usize,
    /// `d`, `e` and the `order` permutation: `max_n` each.
    vec: usize,
    /// faer's workspace (from [`FAER_MIN_ORDER`]).
    faer: Option<StackReq>,
    /// Lane groups: `lane_z`, `lane_d` and `lane_e` (and `unpacked`), for orders up to
    /// [`LANE_MAX_ORDER`].
    lane_n: usize,
}

impl ScratchReq {
    /// The scratch of matrices up to order `max_n`, with or without eigenvectors.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if a length or the byte count overflows `usize`.
    pub(crate) fn new<T: Real>(max_n: usize, vectors: bool) -> Result<Self> {
        let uses_faer = max_n >= FAER_MIN_ORDER;
        let nn = max_n
            .checked_mul(max_n)
            .ok_or(Error::TooLarge("eigh scratch size overflows usize"))?;
        let mut req = Self {
            z: nn,
            u: if uses_faer && vectors { nn } else { 0 },
            vec: max_n,
            faer: None,
            lane_n: max_n.min(LANE_MAX_ORDER),
        };
        // Our arrays first: faer is asked only about orders whose matrices fit in `usize`.
        req.bytes::<T>()?;
        req.faer = uses_faer.then(|| faer_evd::scratch_req::<T>(max_n, vectors));
        req.bytes::<T>()?;
        Ok(req)
    }

    /// Bytes of one [`Scratch`] made from this requirement: exactly the sum of its allocations.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the sum overflows `usize` (faer's own requirement included).
    pub(crate) fn bytes<T: Real>(&self) -> Result<usize> {
        let too_large = || Error::TooLarge("eigh scratch size overflows usize");
        let lane_nn = self.lane_n * self.lane_n;
        let elements = [
            self.z,
            self.u,
            2 * self.vec,
            lane_nn * LANES,
            2 * self.lane_n * LANES,
            lane_nn,
        ]
        .into_iter()
        .try_fold(0usize, |sum, len| sum.checked_add(len))
        .and_then(|len| len.checked_mul(std::mem::size_of::<T>()))
        .ok_or_else(too_large)?;
        let faer = match self.faer {
            Some(req) if req.align_bytes() == 0 => return Err(too_large()),
            Some(req) => req.size_bytes(),
            None => 0,
        };
        elements
            .checked_add(self.vec * std::mem::size_of::<usize>())
            .and_then(|b| b.checked_add(faer))
            .ok_or_else(too_large)
    }
}

impl<T: Real> Scratch<T> {
    /// Allocates what `req` describes.
    pub(crate) fn new(req: &ScratchReq) -> Self {
        let lane_n = req.lane_n;
        Self {
            z: vec![T::zero(); req.z],
            u: vec![T::zero(); req.u],
            d: vec![T::zero(); req.vec],
            e: vec![T::zero(); req.vec],
            order: vec![0; req.vec],
            faer: req.faer.map(faer_evd::scratch_buffer),
            lane_z: vec![T::zero(); lane_n * lane_n * LANES],
            lane_d: vec![T::zero(); lane_n * LANES],
            lane_e: vec![T::zero(); lane_n * LANES],
            unpacked: vec![T::zero(); lane_n * lane_n],
        }
    }

    /// Bytes this scratch holds, read from its allocations.
    pub(crate) fn bytes(&self) -> usize {
        let elements = [
            &self.z,
            &self.u,
            &self.d,
            &self.e,
            &self.lane_z,
            &self.lane_d,
            &self.lane_e,
            &self.unpacked,
        ]
        .iter()
        .map(|v| v.len())
        .sum::<usize>();
        elements * std::mem::size_of::<T>()
            + self.order.len() * std::mem::size_of::<usize>()
            + self.faer.as_ref().map_or(0, |b| b.len())
    }
}

/// Runs one decomposition of order `n` (>= [`FAER_MIN_ORDER`]) with this scratch, on the
/// calling thread. faer's matrix products allocate thread-local packing buffers the first time
/// a thread uses them; plans call this on every pool thread so that `execute` never does.
pub(crate) fn warm_up<T: Real>(n: usize, vectors: bool, s: &mut Scratch<T>) {
    let mut a = vec![T::zero(); n * n];
    for (idx, x) in a.iter_mut().enumerate() {
        let (r, c) = (idx / n, idx % n);
        *x = T::of(((r.max(c) * 7 + r.min(c) * 13) % 17) as f64 - 8.0);
    }
    let mut w = vec![T::zero(); n];
    let mut v = vectors.then(|| vec![T::zero(); n * n]);
    // The result is irrelevant; a failure here would resurface, typed, at execute time.
    let _ = solve(&a, n, &mut w, v.as_deref_mut(), s);
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

/// Multiplication by 2^k as two exact power-of-two factors, so that scalings beyond the exponent
/// range of one factor (needed for subnormal inputs) still apply.
#[derive(Clone, Copy)]
struct Pow2<T>(T, T);

impl<T: Real> Pow2<T> {
    /// The factor that brings a matrix with largest |entry| `anrm` (> 0) into [0.5, 1), and
    /// the factor that undoes it.
    fn normalising(anrm: T) -> (Self, Self) {
        let k = -(anrm.to_f64_lossless().log2().floor() as i32) - 1;
        (Self::new(k), Self::new(-k))
    }

    fn new(k: i32) -> Self {
        let two = T::one() + T::one();
        Self(two.powi(k / 2), two.powi(k - k / 2))
    }

    #[inline(always)]
    fn apply(self, x: T) -> T {
        x * self.0 * self.1
    }
}

/// Decomposes the row-major matrix `a` (order `n`, lower triangle read, all finite) into `w`
/// and, if given, `v` (row-major, eigenvectors as columns).
///
/// On x86-64 CPUs with AVX2 the same code runs compiled for AVX2 (twice the vector width of
/// the SSE2 baseline). No FMA is enabled, so every rounding, and hence every output bit, is the
/// same on both paths.
pub(crate) fn solve<T: Real>(
    a: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    s: &mut Scratch<T>,
) -> Result<(), NoConvergence> {
    // faer dispatches to its own SIMD kernels at run time; only our kernels need the AVX2 copy.
    #[cfg(target_arch = "x86_64")]
    if n < FAER_MIN_ORDER && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { solve_avx2(a, n, w, v, s) };
    }
    solve_portable(a, n, w, v, s)
}

/// [`solve_portable`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn solve_avx2<T: Real>(
    a: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    s: &mut Scratch<T>,
) -> Result<(), NoConvergence> {
    solve_portable(a, n, w, v, s)
}

/// Orders up to this one run on stack arrays whose sizes are compile-time constants, so the
/// loops of the kernel unroll and lose their bounds checks; per-matrix overhead dominates there.
const STACK_MAX_ORDER: usize = 12;

#[inline(always)]
fn solve_portable<T: Real>(
    a: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    s: &mut Scratch<T>,
) -> Result<(), NoConvergence> {
    let mut v = v;
    macro_rules! on_stack {
        ($($order:literal)*) => {
            match n {
                $($order => return solve_on_stack::<T, $order>(a, w, v),)*
                _ => {}
            }
        };
    }
    on_stack!(2 3 4 5 6 7 8 9 10 11 12);
    const { assert!(STACK_MAX_ORDER == 12) };
    let Some(unscale) = load_scaled(a, n, w, v.as_deref_mut(), &mut s.z) else {
        return Ok(());
    };
    let want_vectors = v.is_some();
    let d = &mut s.d[..n];
    if n >= FAER_MIN_ORDER {
        let stack = s
            .faer
            .as_mut()
            .expect("plan allocates faer scratch for its largest order");
        let u = want_vectors.then(|| &mut s.u[..n * n]);
        faer_evd::decompose(&s.z, n, d, u, stack)?;
        finish(d, &s.u, n, w, v, &mut s.order, unscale);
    } else {
        let z = &mut s.z[..n * n];
        let e = &mut s.e[..n];
        tridiagonalize(z, n, d, e, want_vectors);
        implicit_ql(d, e, n, want_vectors.then_some(&mut *z))?;
        finish(d, z, n, w, v, &mut s.order, unscale);
    }
    Ok(())
}

/// The tridiagonal-QL path with every work array on the stack and of constant size `N`.
#[inline(always)]
fn solve_on_stack<T: Real, const N: usize>(
    a: &[T],
    w: &mut [T],
    mut v: Option<&mut [T]>,
) -> Result<(), NoConvergence> {
    let mut z = [[T::zero(); N]; N];
    let (mut d, mut e, mut order) = ([T::zero(); N], [T::zero(); N], [0usize; N]);
    let (a, w) = (&a[..N * N], &mut w[..N]);
    let z = z.as_flattened_mut();
    let Some(unscale) = load_scaled(a, N, w, v.as_deref_mut(), z) else {
        return Ok(());
    };
    let want_vectors = v.is_some();
    tridiagonalize(z, N, &mut d, &mut e, want_vectors);
    implicit_ql(&mut d, &mut e, N, want_vectors.then_some(&mut *z))?;
    finish(&d, z, N, w, v.map(|v| &mut v[..N * N]), &mut order, unscale);
    Ok(())
}

/// Copies the lower triangle of `a`, scaled by a power of two so that its largest entry lies in
/// [0.5, 1), into `z` (column-major). A zero matrix or a 1 x 1 matrix is solved on the spot
/// (eigenvalues the diagonal, eigenvectors the identity) and `None` returned; otherwise the
/// factor that undoes the scaling.
#[inline(always)]
fn load_scaled<T: Real>(
    a: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    z: &mut [T],
) -> Option<Pow2<T>> {
    let anrm = lower_max_abs(a, n).unwrap_or_else(T::zero);
    if anrm == T::zero() || n == 1 {
        for (i, wi) in w.iter_mut().enumerate().take(n) {
            *wi = a[i * n + i];
        }
        if let Some(v) = v {
            for (idx, x) in v.iter_mut().enumerate().take(n * n) {
                *x = if idx / n == idx % n {
                    T::one()
                } else {
                    T::zero()
                };
            }
        }
        return None;
    }
    let (scale, unscale) = Pow2::normalising(anrm);
    let z = &mut z[..n * n];
    for r in 0..n {
        for c in 0..=r {
            z[c * n + r] = scale.apply(a[r * n + c]);
        }
    }
    Some(unscale)
}

/// Writes eigenvalues ascending (unscaled) to `w` and, if `v` is given, the eigenvectors held as
/// columns of `vectors` (column-major) to `v` (row-major), each with its largest-magnitude
/// component positive.
#[inline(always)]
fn finish<T: Real>(
    d: &[T],
    vectors: &[T],
    n: usize,
    w: &mut [T],
    v: Option<&mut [T]>,
    order: &mut [usize],
    unscale: Pow2<T>,
) {
    // Insertion sort on an index list: O(n) when already sorted (faer's output), O(n^2) at
    // worst, both negligible against the O(n^3) decomposition.
    let order = &mut order[..n];
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
        *wk = unscale.apply(d[src]);
    }
    if let Some(v) = v {
        for (k_out, &src) in order.iter().enumerate() {
            let col = &vectors[src * n..src * n + n];
            let mut big = 0;
            for (i, x) in col.iter().enumerate() {
                if x.abs() > col[big].abs() {
                    big = i;
                }
            }
            let sign = if col[big] < T::zero() {
                -T::one()
            } else {
                T::one()
            };
            for (i, &x) in col.iter().enumerate() {
                v[i * n + k_out] = sign * x;
            }
        }
    }
}

/// One lane group: `L` matrices of the same order `n` (2..=[`LANE_MAX_ORDER`]), all finite.
/// Returns the lane of the first matrix that did not converge.
pub(crate) fn solve_lane_group<T: Real, const L: usize>(
    a: [&[T]; L],
    n: usize,
    w: [&mut [T]; L],
    v: Option<[&mut [T]; L]>,
    s: &mut Scratch<T>,
) -> Result<(), usize> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { solve_lane_group_avx2(a, n, w, v, s) };
    }
    solve_lane_group_portable(a, n, w, v, s)
}

/// [`solve_lane_group_portable`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn solve_lane_group_avx2<T: Real, const L: usize>(
    a: [&[T]; L],
    n: usize,
    w: [&mut [T]; L],
    v: Option<[&mut [T]; L]>,
    s: &mut Scratch<T>,
) -> Result<(), usize> {
    solve_lane_group_portable(a, n, w, v, s)
}

#[inline(always)]
fn solve_lane_group_portable<T: Real, const L: usize>(
    a: [&[T]; L],
    n: usize,
    w: [&mut [T]; L],
    v: Option<[&mut [T]; L]>,
    s: &mut Scratch<T>,
) -> Result<(), usize> {
    let norms: [T; L] = std::array::from_fn(|q| lower_max_abs(a[q], n).unwrap_or_else(T::zero));
    if norms.iter().any(|&x| x == T::zero()) {
        // A zero matrix is solved on the spot by the scalar path; rare enough to not batch.
        let mut v = v
            .map(|v| v.map(Some))
            .unwrap_or_else(|| std::array::from_fn(|_| None));
        for (q, wq) in w.into_iter().enumerate() {
            solve(a[q], n, wq, v[q].take(), s).map_err(|_| q)?;
        }
        return Ok(());
    }
    let z: &mut [[T; L]] = s.lane_z[..n * n * L].as_chunks_mut::<L>().0;
    let d: &mut [[T; L]] = s.lane_d[..n * L].as_chunks_mut::<L>().0;
    let e: &mut [[T; L]] = s.lane_e[..n * L].as_chunks_mut::<L>().0;
    let mut unscale = [Pow2::<T>::new(0); L];
    for q in 0..L {
        let (scale, back) = Pow2::normalising(norms[q]);
        unscale[q] = back;
        for r in 0..n {
            for c in 0..=r {
                z[c * n + r][q] = scale.apply(a[q][r * n + c]);
            }
        }
    }
    let want_vectors = v.is_some();
    tridiagonalize_lanes(z, n, d, e, want_vectors);
    implicit_ql_lanes(d, e, n, want_vectors.then_some(&mut *z)).map_err(|(q, _)| q)?;
    let mut v = v
        .map(|v| v.map(Some))
        .unwrap_or_else(|| std::array::from_fn(|_| None));
    for (q, wq) in w.into_iter().enumerate() {
        for (dst, src) in s.d[..n].iter_mut().zip(d.iter()) {
            *dst = src[q];
        }
        let vq = v[q].take();
        if vq.is_some() {
            for (dst, src) in s.unpacked[..n * n].iter_mut().zip(z.iter()) {
                *dst = src[q];
            }
        }
        finish(&s.d[..n], &s.unpacked, n, wq, vq, &mut s.order, unscale[q]);
    }
    Ok(())
}

#[cfg(test)]
mod scratch_tests {
    use super::*;

    /// The requirement the plan checks against memory is what `Scratch::new` allocates.
    #[test]
    fn requirement_is_the_allocation() {
        for n in [0, 1, 2, 12, 13, 31, 32, 33, 47, 48, 49, 64, 100] {
            for vectors in [false, true] {
                let req = ScratchReq::new::<f64>(n, vectors).unwrap();
                let bytes = Scratch::<f64>::new(&req).bytes();
                assert_eq!(req.bytes::<f64>().unwrap(), bytes, "f64 n={n} {vectors}");
                let req = ScratchReq::new::<f32>(n, vectors).unwrap();
                let bytes = Scratch::<f32>::new(&req).bytes();
                assert_eq!(req.bytes::<f32>().unwrap(), bytes, "f32 n={n} {vectors}");
            }
        }
    }

    #[test]
    fn requirement_overflow_is_too_large() {
        assert!(matches!(
            ScratchReq::new::<f64>(usize::MAX / 2, false),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            ScratchReq::new::<f64>(1 << 31, false),
            Err(Error::TooLarge(_))
        ));
    }
}
