//! The divide-and-conquer class at orders 1024-4096 on a real GPU (`kernels/eigh/dc.cu`): the
//! per-order vectors in shared memory (f64 1024, f32 1024 and 2048 on a 227 KiB device) and in
//! the workspace's slots (f64 from 1858, f32 from 3111: f64 2048 and 4096, f32 4096), LAPACK
//! dsyt21 ratios < 30 with vectors and the eigenvalues against the prescribed spectrum with
//! and without (random, one huge cluster, three tight clusters, graded over the dtype's
//! precision), NaN in single matrices of a batch; and the case the device check runs under
//! compute-sanitizer. Each matrix is one block for seconds, and the host checks are O(n^3)
//! (`large_check.rs`): these run only where `MEGABATCH_REQUIRE_CUDA=1` (the GPU host's
//! `scripts/gpu-eigh-check.sh`), elsewhere they print a `SKIPPED` notice.

use std::io::Write;

use super::large_check::{make, ratios, values_ratio, Spectrum};
use crate::common::cuda_or_skip;
use megabatch::backends::cuda::{Cuda, CudaEighAlgorithm, EighClass};
use megabatch::{Backend, BatchedEigh, EighSpec, Real, EIGH_NON_FINITE, EIGH_SOLVED};

const THRESHOLD: f64 = 30.0;

/// The device, where the GPU host asks for these tests; else `None` after a notice on the
/// process's stderr (libtest would swallow a passing test's `eprintln!`).
fn large_or_skip(test: &str) -> Option<Cuda> {
    if std::env::var("MEGABATCH_REQUIRE_CUDA").is_ok_and(|v| v == "1") {
        return cuda_or_skip();
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: orders 1024-4096 run only with MEGABATCH_REQUIRE_CUDA=1 (the GPU host)"
    );
    None
}

/// One uniform batch of order `n`, a matrix per spectrum, through `algorithm`'s plans with
/// and without vectors: every ratio below the threshold, the plan on divide and conquer.
fn check_order<T: Real>(cuda: &Cuda, n: usize, kinds: &[Spectrum], algorithm: CudaEighAlgorithm) {
    let batch = kinds.len();
    let mut a: Vec<T> = Vec::with_capacity(batch * n * n);
    let mut lambdas = Vec::new();
    for (k, &kind) in kinds.iter().enumerate() {
        let (m, lambda) = make::<T>(kind, n, 1000 + n as u64 + k as u64);
        a.extend(m);
        lambdas.push(lambda);
    }
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = cuda.plan_eigh_with::<T>(&spec, algorithm).unwrap();
    assert_eq!(plan.classes(), [(EighClass::DivideConquer, batch)]);
    let (mut w, mut v) = (vec![T::zero(); n * batch], vec![T::zero(); n * n * batch]);
    cuda.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    let values = EighSpec::uniform(n, batch);
    let mut plan = cuda.plan_eigh_with::<T>(&values, algorithm).unwrap();
    let mut w_only = vec![T::zero(); n * batch];
    cuda.eigh_host(&mut plan, &a, &mut w_only, None).unwrap();
    for (k, kind) in kinds.iter().enumerate() {
        let (ai, vi) = (&a[k * n * n..][..n * n], &v[k * n * n..][..n * n]);
        let (wi, wo) = (&w[k * n..][..n], &w_only[k * n..][..n]);
        let (res, orth, ev) = ratios(ai, wi, vi, &lambdas[k]);
        let ev_only = values_ratio(ai, wo, &lambdas[k]);
        eprintln!(
            "{} n {n} {kind:?} {algorithm:?}: residual {res:.2}, orthogonality {orth:.2}, \
             eigenvalues {ev:.2} / values only {ev_only:.2}",
            T::DTYPE
        );
        assert!(
            res < THRESHOLD && orth < THRESHOLD && ev < THRESHOLD && ev_only < THRESHOLD,
            "{} n {n} {kind:?}: residual {res:.2}, orthogonality {orth:.2}, eigenvalues \
             {ev:.2} / values only {ev_only:.2}",
            T::DTYPE
        );
    }
}

/// Orders 1024, 2048 and 4096, f64 and f32, both layouts of the per-order vectors.
#[test]
fn dc_large_orders_pass_the_lapack_ratios() {
    let Some(cuda) = large_or_skip("dc_large_orders_pass_the_lapack_ratios") else {
        return;
    };
    let all = [
        Spectrum::Random,
        Spectrum::Clustered,
        Spectrum::Triples,
        Spectrum::Graded,
    ];
    let sizes = CudaEighAlgorithm::SizeClasses;
    for n in [1024, 2048] {
        check_order::<f64>(&cuda, n, &all, sizes);
        check_order::<f32>(&cuda, n, &all, sizes);
    }
    check_order::<f64>(&cuda, 4096, &[Spectrum::Random, Spectrum::Graded], sizes);
    check_order::<f32>(
        &cuda,
        4096,
        &[Spectrum::Triples, Spectrum::Clustered],
        sizes,
    );
}

/// NaN or -inf in single matrices of a ragged batch of large orders (one bucket, its layout
/// from its largest order: f64 2048 keeps the solve step's vectors in the slots): exactly
/// those matrices get `NonFinite` and NaN outputs, the others pass the ratios.
#[test]
fn dc_large_non_finite_matrices_are_marked_alone() {
    let Some(cuda) = large_or_skip("dc_large_non_finite_matrices_are_marked_alone") else {
        return;
    };
    non_finite::<f64>(&cuda, &[513, 2048, 1100, 2048], &[1, 2]);
    non_finite::<f32>(&cuda, &[1500, 700, 3200], &[0]);
}

fn non_finite<T: Real>(cuda: &Cuda, sizes: &[usize], bad: &[usize]) {
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    let offsets = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut a: Vec<T> = Vec::with_capacity(offsets.a_len());
    let mut lambdas = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (m, lambda) = make::<T>(Spectrum::Random, n, 77 + i as u64);
        a.extend(m);
        lambdas.push(lambda);
    }
    for (k, &i) in bad.iter().enumerate() {
        let s = offsets.slot(i);
        a[s.a_start + (s.n - 1) * s.n + s.n / 2] = if k % 2 == 0 {
            T::nan()
        } else {
            T::neg_infinity()
        };
    }
    let mut plan = cuda
        .plan_eigh_device::<T>(&spec, CudaEighAlgorithm::SizeClasses)
        .unwrap();
    assert_eq!(plan.classes(), [(EighClass::DivideConquer, sizes.len())]);
    let mut a_dev = cuda.alloc::<T>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<T>(offsets.w_len()).unwrap();
    let mut v_dev = cuda.alloc::<T>(offsets.a_len()).unwrap();
    // Queued without waiting; the per-matrix status tells which failed.
    cuda.eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    let mut info = vec![-99; sizes.len()];
    cuda.eigh_info(&mut plan, &mut info).unwrap();
    let want: Vec<i32> = (0..sizes.len())
        .map(|i| {
            if bad.contains(&i) {
                EIGH_NON_FINITE
            } else {
                EIGH_SOLVED
            }
        })
        .collect();
    assert_eq!(info, want, "{}", T::DTYPE);
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); offsets.a_len()];
    cuda.download(&w_dev, &mut w).unwrap();
    cuda.download(&v_dev, &mut v).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let s = offsets.slot(i);
        let (wi, vi) = (&w[s.w_start..][..n], &v[s.a_start..][..n * n]);
        if bad.contains(&i) {
            assert!(
                wi.iter().chain(vi).all(|x| x.is_nan()),
                "{} matrix {i}",
                T::DTYPE
            );
            continue;
        }
        let (res, orth, ev) = ratios(&a[s.a_start..][..n * n], wi, vi, &lambdas[i]);
        assert!(
            res < THRESHOLD && orth < THRESHOLD && ev < THRESHOLD,
            "{} matrix {i} n {n}: residual {res:.2}, orthogonality {orth:.2}, eigenvalues {ev:.2}",
            T::DTYPE
        );
    }
}

/// The case `scripts/gpu-eigh-check.sh large` runs under compute-sanitizer memcheck: one
/// order above the old limit of 512 in each layout of the per-order vectors (f64 600 in
/// shared memory; f32 700 forced into the slots), two matrices each, vectors and values.
#[test]
fn dc_large_sanitizer_case() {
    let Some(cuda) = large_or_skip("dc_large_sanitizer_case") else {
        return;
    };
    let kinds = [Spectrum::Random, Spectrum::Triples];
    check_order::<f64>(&cuda, 600, &kinds, CudaEighAlgorithm::SizeClasses);
    check_order::<f32>(&cuda, 700, &kinds, CudaEighAlgorithm::DivideConquerGlobal);
}
