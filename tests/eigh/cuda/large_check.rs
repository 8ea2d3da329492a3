//! LAPACK dsyt21 checks at orders in the thousands, fast enough for the GPU host (the suite's
//! `common::ratios` is a plain O(n^3) loop: minutes per matrix at n = 4096).
//!
//! - Test matrices with a prescribed spectrum, `U diag(lambda) U^T`, built in O(n^2 log n):
//!   `U` is a random orthogonal butterfly, two sweeps of log2(n) layers of Givens rotations
//!   of row pairs `(i, i + 2^l)` with random angles, a random permutation between them (every
//!   entry of `U` nonzero), applied to both sides as `G M G^T` per layer (rows, then columns,
//!   each in parallel over rows).
//! - The residual `||A V - V W||_1 / (n ||A||_1 ulp)` and orthogonality `||V^T V - I||_1 /
//!   (n ulp)` ratios in f64 from faer's matrix products over row blocks on rayon's threads,
//!   and the eigenvalues against the prescribed spectrum, `max |w_k - lambda_k| / (n ||A||_1
//!   ulp)` (the rounding of A to f32 moves them by at most `sqrt(n) ulp ||A||_2 / 2`).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use megabatch::Real;

/// A spectrum of LAPACK's kinds for a test matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spectrum {
    /// Uniform in [-1, 1].
    Random,
    /// 1 once, `ulp` (the dtype's) n - 1 times: one huge cluster (LAPACK's type 8 of dsyt21's
    /// drivers, where deflation decides).
    Clustered,
    /// Three tight clusters of pairs `1 + (i mod 3) 1e-7`, two of them shifted by 1.
    Triples,
    /// `ulp^(i / (n - 1))`: graded over the dtype's whole precision.
    Graded,
}

/// The eigenvalues of `kind` at order `n` for a dtype with unit roundoff `ulp`, ascending.
pub fn spectrum(kind: Spectrum, n: usize, ulp: f64, rng: &mut StdRng) -> Vec<f64> {
    let denom = n.max(2) as f64 - 1.0;
    let mut d: Vec<f64> = (0..n)
        .map(|i| match kind {
            Spectrum::Random => rng.random_range(-1.0..1.0),
            Spectrum::Clustered => {
                if i == 0 {
                    1.0
                } else {
                    ulp
                }
            }
            Spectrum::Triples => 1.0 + (i % 3) as f64 * 1e-7 + if i < n / 2 { 0.0 } else { 1.0 },
            Spectrum::Graded => ulp.powf(i as f64 / denom),
        })
        .collect();
    d.sort_by(f64::total_cmp);
    d
}

/// Rotates rows `i` and `i + half` of the row-major `n x n` matrix `m` for every `i` with
/// `i mod 2 half < half`, by the angle `angles[i]`.
fn rotate_rows(m: &mut [f64], n: usize, half: usize, angles: &[(f64, f64)]) {
    m.par_chunks_mut(2 * half * n)
        .enumerate()
        .for_each(|(chunk, rows)| {
            let (top, bottom) = rows.split_at_mut((half * n).min(rows.len()));
            for (k, x) in top.chunks_mut(n).enumerate() {
                let Some(y) = bottom.get_mut(k * n..(k + 1) * n) else {
                    break;
                };
                let (c, s) = angles[chunk * 2 * half + k];
                for (a, b) in x.iter_mut().zip(y.iter_mut()) {
                    let (p, q) = (*a, *b);
                    *a = c * p + s * q;
                    *b = c * q - s * p;
                }
            }
        });
}

/// Rotates columns `i` and `i + half` of every row as `rotate_rows` rotates rows.
fn rotate_columns(m: &mut [f64], n: usize, half: usize, angles: &[(f64, f64)]) {
    m.par_chunks_mut(n).for_each(|row| {
        for i in (0..n).filter(|i| i % (2 * half) < half && i + half < n) {
            let (c, s) = angles[i];
            let (p, q) = (row[i], row[i + half]);
            row[i] = c * p + s * q;
            row[i + half] = c * q - s * p;
        }
    });
}

/// `G M G^T` for one layer `G` of rotations with random angles.
fn layer(m: &mut [f64], n: usize, half: usize, rng: &mut StdRng) {
    let angles: Vec<(f64, f64)> = (0..n)
        .map(|_| {
            let t: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            (t.cos(), t.sin())
        })
        .collect();
    rotate_rows(m, n, half, &angles);
    rotate_columns(m, n, half, &angles);
}

/// `P M P^T` for a random permutation `P`.
fn permute(m: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    let mut out = vec![0.0; n * n];
    out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
        for (c, x) in row.iter_mut().enumerate() {
            *x = m[p[r] * n + p[c]];
        }
    });
    out
}

/// `U diag(lambda) U^T` (row-major, exactly symmetric) for a random orthogonal butterfly `U`.
pub fn with_spectrum(lambda: &[f64], rng: &mut StdRng) -> Vec<f64> {
    let n = lambda.len();
    let mut m = vec![0.0; n * n];
    for (i, &l) in lambda.iter().enumerate() {
        m[i * n + i] = l;
    }
    for sweep in 0..2 {
        if sweep > 0 {
            m = permute(&m, n, rng);
        }
        let mut half = 1;
        while half < n {
            layer(&mut m, n, half, rng);
            half *= 2;
        }
    }
    // Exactly symmetric: the two triangles differ in rounding.
    for r in 0..n {
        for c in 0..r {
            m[c * n + r] = m[r * n + c];
        }
    }
    m
}

/// A test matrix of `kind` at order `n` for `T`, its eigenvalues, from `seed`.
pub fn make<T: Real>(kind: Spectrum, n: usize, seed: u64) -> (Vec<T>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ulp = T::epsilon().to_f64_lossless();
    let lambda = spectrum(kind, n, ulp, &mut rng);
    let a = with_spectrum(&lambda, &mut rng);
    (a.iter().map(|&x| T::of(x)).collect(), lambda)
}

/// `dst = lhs rhs` (f64), `dst`'s rows split over rayon's threads.
fn product(dst: &mut [f64], lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) {
    let n = rhs.ncols();
    const ROWS: usize = 64;
    dst.par_chunks_mut(ROWS * n)
        .enumerate()
        .for_each(|(block, out)| {
            let r0 = block * ROWS;
            let rows = out.len() / n;
            let out = MatMut::from_row_major_slice_mut(out, rows, n);
            matmul(
                out,
                Accum::Replace,
                lhs.subrows(r0, rows),
                rhs,
                1.0,
                Par::Seq,
            );
        });
}

/// The largest column sum of absolute values of the row-major `n x n` matrix `m`.
fn one_norm(m: &[f64], n: usize) -> f64 {
    let mut sums = vec![0.0; n];
    for row in m.chunks(n) {
        for (s, x) in sums.iter_mut().zip(row) {
            *s += x.abs();
        }
    }
    sums.into_iter().fold(0.0, f64::max)
}

/// dsyt21's residual and orthogonality ratios and the eigenvalue ratio against `lambda` of
/// one matrix: `a` row-major (both triangles), eigenvalues `w` ascending, eigenvectors as the
/// columns of the row-major `v`.
pub fn ratios<T: Real>(a: &[T], w: &[T], v: &[T], lambda: &[f64]) -> (f64, f64, f64) {
    let n = w.len();
    let ulp = T::epsilon().to_f64_lossless();
    let a: Vec<f64> = a.iter().map(|x| x.to_f64_lossless()).collect();
    let v: Vec<f64> = v.iter().map(|x| x.to_f64_lossless()).collect();
    let w: Vec<f64> = w.iter().map(|x| x.to_f64_lossless()).collect();
    let anorm = one_norm(&a, n).max(f64::MIN_POSITIVE);
    let vm = MatRef::from_row_major_slice(&v, n, n);
    let mut r = vec![0.0; n * n];
    product(&mut r, MatRef::from_row_major_slice(&a, n, n), vm);
    r.par_chunks_mut(n)
        .zip(v.par_chunks(n))
        .for_each(|(rr, vr)| {
            for ((x, y), l) in rr.iter_mut().zip(vr).zip(&w) {
                *x -= y * l;
            }
        });
    let residual = one_norm(&r, n) / (n as f64 * anorm * ulp);
    product(&mut r, vm.transpose(), vm);
    for i in 0..n {
        r[i * n + i] -= 1.0;
    }
    let orthogonality = one_norm(&r, n) / (n as f64 * ulp);
    let values = w
        .iter()
        .zip(lambda)
        .map(|(x, l)| (x - l).abs() / (n as f64 * anorm * ulp))
        .fold(0.0, f64::max);
    (residual, orthogonality, values)
}

/// The eigenvalue ratio alone (values-only plans).
pub fn values_ratio<T: Real>(a: &[T], w: &[T], lambda: &[f64]) -> f64 {
    let n = w.len();
    let ulp = T::epsilon().to_f64_lossless();
    let a: Vec<f64> = a.iter().map(|x| x.to_f64_lossless()).collect();
    let anorm = one_norm(&a, n).max(f64::MIN_POSITIVE);
    w.iter()
        .zip(lambda)
        .map(|(x, l)| (x.to_f64_lossless() - l).abs() / (n as f64 * anorm * ulp))
        .fold(0.0, f64::max)
}

#[test]
fn the_butterfly_matrices_have_their_spectrum_and_the_ratios_are_small_for_exact_factors() {
    // A tiny case with an exact factorisation from the CPU backend (no device).
    use megabatch::backends::cpu::Cpu;
    use megabatch::{BatchedEigh, EighSpec};
    let n = 37;
    for kind in [Spectrum::Random, Spectrum::Clustered, Spectrum::Graded] {
        let (a, lambda) = make::<f64>(kind, n, 5);
        for r in 0..n {
            for c in 0..r {
                assert_eq!(a[r * n + c], a[c * n + r]);
            }
        }
        let cpu = Cpu::new().unwrap();
        let spec = EighSpec::uniform(n, 1).with_vectors(true);
        let mut plan = cpu.plan_eigh(&spec).unwrap();
        let (mut w, mut v) = (vec![0.0; n], vec![0.0; n * n]);
        cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
        let (res, orth, ev) = ratios(&a, &w, &v, &lambda);
        assert!(
            res < 30.0 && orth < 30.0 && ev < 30.0,
            "{kind:?}: {res} {orth} {ev}"
        );
        // Every entry of the matrix is filled (the butterfly mixes every pair of rows).
        if kind == Spectrum::Random {
            assert!(a.iter().all(|&x| x != 0.0));
        }
    }
}
