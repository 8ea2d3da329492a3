//! Shared test helpers: LAPACK-style test matrices and accuracy ratios, computed in f64
//! independently of the code under test.
#![allow(dead_code)]

pub mod attention_check;
pub mod child;
pub mod counting_alloc;
pub mod cxx;
pub mod eigh_check;
pub mod element_mask_check;
pub mod reduce_check;

use megabatch::Real;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// LAPACK's symmetric test matrix types (dchkst / ddrvst "matrix types"), built in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixType {
    Zero,
    Identity,
    /// Random diagonal entries in [-1, 1].
    Diagonal,
    /// U diag(1, 1/cond, ..., 1/cond) U^T (LAPACK mode 1): one eigenvalue apart, the rest clustered.
    Clustered,
    /// Eigenvalues 1/cond^((i-1)/(n-1)) (mode 3), random orthogonal U.
    Geometric,
    /// Eigenvalues 1 - (i-1)/(n-1) (1 - 1/cond) (mode 4), random orthogonal U.
    Arithmetic,
    /// Random spectrum with random signs, random orthogonal U.
    RandomSpectrum,
    /// Wilkinson's W+_n: tridiagonal, diagonal |i - (n-1)/2|, off-diagonal 1 (close pairs).
    WilkinsonPlus,
    /// Dense with entries uniform in [-1, 1].
    RandomDense,
    /// Random dense scaled so its entries are just above the underflow threshold.
    NearUnderflow,
    /// Random dense scaled so its largest eigenvalue is close to overflow.
    NearOverflow,
}

pub const ALL_TYPES: [MatrixType; 11] = [
    MatrixType::Zero,
    MatrixType::Identity,
    MatrixType::Diagonal,
    MatrixType::Clustered,
    MatrixType::Geometric,
    MatrixType::Arithmetic,
    MatrixType::RandomSpectrum,
    MatrixType::WilkinsonPlus,
    MatrixType::RandomDense,
    MatrixType::NearUnderflow,
    MatrixType::NearOverflow,
];

fn gaussian(rng: &mut StdRng) -> f64 {
    // Box-Muller: independent of anything in the crate.
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A random orthogonal matrix (row-major): modified Gram-Schmidt, twice, on Gaussian columns.
pub fn random_orthogonal(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut q: Vec<f64> = (0..n * n).map(|_| gaussian(rng)).collect();
    for _pass in 0..2 {
        for c in 0..n {
            for p in 0..c {
                let dot: f64 = (0..n).map(|r| q[r * n + c] * q[r * n + p]).sum();
                for r in 0..n {
                    q[r * n + c] -= dot * q[r * n + p];
                }
            }
            let norm: f64 = (0..n).map(|r| q[r * n + c].powi(2)).sum::<f64>().sqrt();
            for r in 0..n {
                q[r * n + c] /= norm;
            }
        }
    }
    q
}

/// U diag(d) U^T, row-major, exactly symmetric.
fn with_spectrum(d: &[f64], rng: &mut StdRng) -> Vec<f64> {
    let n = d.len();
    let u = random_orthogonal(n, rng);
    let mut a = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..=r {
            let s: f64 = (0..n).map(|k| u[r * n + k] * d[k] * u[c * n + k]).sum();
            a[r * n + c] = s;
            a[c * n + r] = s;
        }
    }
    a
}

/// A symmetric test matrix of type `t` and order `n`, row-major f64, scaled for dtype `T`.
pub fn make<T: Real>(t: MatrixType, n: usize, rng: &mut StdRng) -> Vec<f64> {
    let eps = T::epsilon().to_f64_lossless();
    let cond = 1.0 / eps;
    let denom = (n.max(2) - 1) as f64;
    match t {
        MatrixType::Zero => vec![0.0; n * n],
        MatrixType::Identity => (0..n * n)
            .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
            .collect(),
        MatrixType::Diagonal => {
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                a[i * n + i] = rng.random_range(-1.0..1.0);
            }
            a
        }
        MatrixType::Clustered => {
            let d: Vec<f64> = (0..n)
                .map(|i| if i == 0 { 1.0 } else { 1.0 / cond })
                .collect();
            with_spectrum(&d, rng)
        }
        MatrixType::Geometric => {
            let d: Vec<f64> = (0..n).map(|i| cond.powf(-(i as f64) / denom)).collect();
            with_spectrum(&d, rng)
        }
        MatrixType::Arithmetic => {
            let d: Vec<f64> = (0..n)
                .map(|i| 1.0 - i as f64 / denom * (1.0 - 1.0 / cond))
                .collect();
            with_spectrum(&d, rng)
        }
        MatrixType::RandomSpectrum => {
            let d: Vec<f64> = (0..n)
                .map(|_| {
                    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                    sign * (rng.random_range(0.0..1.0) * cond.ln()).exp() / cond
                })
                .collect();
            with_spectrum(&d, rng)
        }
        MatrixType::WilkinsonPlus => {
            let mut a = vec![0.0; n * n];
            let mid = (n as f64 - 1.0) / 2.0;
            for i in 0..n {
                a[i * n + i] = (i as f64 - mid).abs();
                if i + 1 < n {
                    a[i * n + i + 1] = 1.0;
                    a[(i + 1) * n + i] = 1.0;
                }
            }
            a
        }
        MatrixType::RandomDense => random_dense(n, rng),
        MatrixType::NearUnderflow => {
            // Entries of order sqrt(safe_min): squares of off-diagonal entries underflow.
            let s = T::SAFE_MIN.to_f64_lossless().sqrt() * 0.5;
            random_dense(n, rng).into_iter().map(|x| x * s).collect()
        }
        MatrixType::NearOverflow => {
            // Largest eigenvalue within a factor ~4 of the largest finite value.
            let max = if T::DTYPE == "f32" {
                f32::MAX as f64
            } else {
                f64::MAX
            };
            let s = max / (4.0 * n as f64);
            random_dense(n, rng).into_iter().map(|x| x * s).collect()
        }
    }
}

pub fn random_dense(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..=r {
            let x = rng.random_range(-1.0..1.0);
            a[r * n + c] = x;
            a[c * n + r] = x;
        }
    }
    a
}

pub fn to_t<T: Real>(a: &[f64]) -> Vec<T> {
    a.iter().map(|&x| T::of(x)).collect()
}

/// Largest power of two not above the largest |entry| (1 for a zero matrix): dividing by it is
/// exact and keeps the ratio computations clear of overflow.
fn pow2_scale(a: &[f64]) -> f64 {
    let m = a.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if m == 0.0 {
        1.0
    } else {
        2f64.powi(m.log2().floor() as i32)
    }
}

fn one_norm(a: &[f64], n: usize) -> f64 {
    (0..n)
        .map(|c| (0..n).map(|r| a[r * n + c].abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// LAPACK `dsyt21`-style ratios for one matrix, in f64:
/// residual `|A V - V diag(w)|_1 / (n |A|_1 ulp)` and orthogonality `|V^T V - I|_1 / (n ulp)`,
/// where `A` is the symmetric matrix whose lower triangle is `a` and `ulp` is `T::epsilon()`.
pub fn ratios<T: Real>(a: &[T], w: &[T], v: &[T], n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let ulp = T::epsilon().to_f64_lossless();
    let full: Vec<f64> = (0..n * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            if r >= c {
                a[i].to_f64_lossless()
            } else {
                a[c * n + r].to_f64_lossless()
            }
        })
        .collect();
    let s = pow2_scale(&full);
    let full: Vec<f64> = full.iter().map(|x| x / s).collect();
    let w: Vec<f64> = w.iter().map(|x| x.to_f64_lossless() / s).collect();
    let v: Vec<f64> = v.iter().map(|x| x.to_f64_lossless()).collect();
    let mut res = vec![0.0; n * n];
    for r in 0..n {
        for k in 0..n {
            let av: f64 = (0..n).map(|j| full[r * n + j] * v[j * n + k]).sum();
            res[r * n + k] = av - v[r * n + k] * w[k];
        }
    }
    let anorm = one_norm(&full, n).max(f64::MIN_POSITIVE);
    let residual = one_norm(&res, n) / (n as f64 * anorm * ulp);
    let mut orth = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let d: f64 = (0..n).map(|r| v[r * n + i] * v[r * n + j]).sum();
            orth[i * n + j] = d - if i == j { 1.0 } else { 0.0 };
        }
    }
    (residual, one_norm(&orth, n) / (n as f64 * ulp))
}

/// Eigenvalues (ascending) of the symmetric matrix whose lower triangle is `a`, by nalgebra's
/// `SymmetricEigen` in f64: the independent reference.
pub fn reference_eigenvalues<T: Real>(a: &[T], n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let full: Vec<f64> = (0..n * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            if r >= c {
                a[i].to_f64_lossless()
            } else {
                a[c * n + r].to_f64_lossless()
            }
        })
        .collect();
    let s = pow2_scale(&full);
    let m =
        nalgebra::DMatrix::from_row_slice(n, n, &full.iter().map(|x| x / s).collect::<Vec<_>>());
    let mut w: Vec<f64> = m.symmetric_eigenvalues().iter().map(|x| x * s).collect();
    w.sort_by(f64::total_cmp);
    w
}

/// Max |w_i - ref_i| / (n |A|_1 ulp) over the matrix's eigenvalues (Weyl: a backward-stable
/// solver keeps this O(1)).
pub fn eigenvalue_ratio<T: Real>(a: &[T], w: &[T], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let reference = reference_eigenvalues(a, n);
    let full: Vec<f64> = (0..n * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            if r >= c {
                a[i].to_f64_lossless()
            } else {
                a[c * n + r].to_f64_lossless()
            }
        })
        .collect();
    let s = pow2_scale(&full);
    let anorm = (one_norm(&full, n) / s).max(f64::MIN_POSITIVE);
    let ulp = T::epsilon().to_f64_lossless();
    w.iter()
        .zip(&reference)
        .map(|(x, r)| ((x.to_f64_lossless() - r) / s).abs() / (n as f64 * anorm * ulp))
        .fold(0.0, f64::max)
}

/// Exactly rounded sum of f64 values (Shewchuk, "Adaptive precision floating-point arithmetic",
/// 1997: a non-overlapping expansion of partial sums).
pub fn exact_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in values {
        let mut kept = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    partials.iter().rev().fold(0.0, |acc, &p| acc + p)
}

/// Summation error bound with a safety factor of 2: (16 + log2 n) eps sum |x|, which covers
/// pairwise and fixed-shape tree summation with short sequential runs.
pub fn bound(n: usize, eps: f64, abs_sum: f64) -> f64 {
    2.0 * (16.0 + (n.max(2) as f64).log2()) * eps * abs_sum
}

/// The CUDA device, or `None` with a notice when there is none; a missing device fails the
/// test when `MEGABATCH_REQUIRE_CUDA=1`.
#[cfg(feature = "cuda")]
pub fn cuda_or_skip() -> Option<megabatch::backends::cuda::Cuda> {
    match megabatch::backends::cuda::Cuda::new() {
        Ok(c) => Some(c),
        Err(e) => {
            let required = std::env::var("MEGABATCH_REQUIRE_CUDA").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "MEGABATCH_REQUIRE_CUDA=1 but no CUDA device: {e}"
            );
            eprintln!("skipping: no CUDA device ({e})");
            None
        }
    }
}

/// The wgpu device, or `None` with a notice when there is no adapter; a missing adapter fails
/// the test when `MEGABATCH_REQUIRE_WGPU=1`.
#[cfg(feature = "wgpu")]
#[allow(dead_code)]
pub fn wgpu_or_skip() -> Option<megabatch::backends::wgpu::Wgpu> {
    match megabatch::backends::wgpu::Wgpu::new() {
        Ok(w) => Some(w),
        Err(e) => {
            let required = std::env::var("MEGABATCH_REQUIRE_WGPU").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "MEGABATCH_REQUIRE_WGPU=1 but no wgpu adapter: {e}"
            );
            eprintln!("skipping: no wgpu adapter ({e})");
            None
        }
    }
}

/// The adapter `gpu` chose, enumerated again by a fresh instance (the environment's backends),
/// for tests that open an application's own device on it.
#[cfg(feature = "wgpu")]
#[allow(dead_code)] // Not every test binary that includes this module opens one.
pub fn same_adapter(gpu: &megabatch::backends::wgpu::Wgpu) -> wgpu::Adapter {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| a.get_info().name == gpu.adapter().name)
        .expect("the adapter megabatch chose")
}
