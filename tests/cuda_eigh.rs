//! The CUDA eigh against the same LAPACK ratios as the CPU backend, against the CPU backend's
//! eigenvalues on random batches, and its errors. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.
#![cfg(feature = "cuda")]

mod common;

use common::eigh_check::check_eigh_accuracy;
use common::{cuda_or_skip, make, rng, to_t, MatrixType, ALL_TYPES};
use megabatch::backends::cpu::Cpu;
use megabatch::{Backend, BatchedEigh, EighSpec, Error, Real};
use proptest::prelude::*;

const THRESHOLD: f64 = 30.0;

#[test]
fn lapack_types_orders_1_to_64() {
    let Some(cuda) = cuda_or_skip() else { return };
    let orders: Vec<usize> = (1..=64).collect();
    check_eigh_accuracy::<f64, _>(&cuda, &orders, &ALL_TYPES, 11, THRESHOLD);
    check_eigh_accuracy::<f32, _>(&cuda, &orders, &ALL_TYPES, 12, THRESHOLD);
}

#[test]
fn lapack_types_larger_orders_and_global_workspace() {
    let Some(cuda) = cuda_or_skip() else { return };
    let types = [
        MatrixType::RandomDense,
        MatrixType::Clustered,
        MatrixType::WilkinsonPlus,
        MatrixType::NearOverflow,
        MatrixType::NearUnderflow,
    ];
    // 96 and 128 (f64) spill out of shared memory into the global workspace; 256 too in f32.
    check_eigh_accuracy::<f64, _>(&cuda, &[65, 96, 128, 200, 256], &types, 13, THRESHOLD);
    check_eigh_accuracy::<f32, _>(&cuda, &[65, 96, 128, 200, 256], &types, 14, THRESHOLD);
}

/// A uniform batch through device buffers against the CPU backend's eigenvalues.
fn uniform_matches_cpu<T: Real>(
    cuda: &megabatch::backends::cuda::Cuda,
    n: usize,
    batch: usize,
    seed: u64,
) {
    let mut r = rng(seed);
    let mut a: Vec<T> = Vec::with_capacity(n * n * batch);
    for _ in 0..batch {
        a.extend(to_t::<T>(&make::<T>(MatrixType::RandomDense, n, &mut r)));
    }
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = BatchedEigh::<T>::plan_eigh(cuda, &spec).unwrap();
    let mut a_dev = cuda.alloc::<T>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<T>(n * batch).unwrap();
    let mut v_dev = cuda.alloc::<T>(n * n * batch).unwrap();
    cuda.eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    let mut w = vec![T::zero(); n * batch];
    cuda.download(&w_dev, &mut w).unwrap();

    let cpu = Cpu::with_threads(2).unwrap();
    let mut cpu_plan = BatchedEigh::<T>::plan_eigh(&cpu, &EighSpec::uniform(n, batch)).unwrap();
    let mut w_cpu = vec![T::zero(); n * batch];
    cpu.eigh_host(&mut cpu_plan, &a, &mut w_cpu, None).unwrap();
    let eps = T::UNIT_ROUNDOFF.to_f64_lossless();
    for m in 0..batch {
        let norm = w_cpu[m * n..(m + 1) * n]
            .iter()
            .fold(0.0f64, |acc, x| acc.max(x.to_f64_lossless().abs()));
        for k in 0..n {
            let (g, c) = (
                w[m * n + k].to_f64_lossless(),
                w_cpu[m * n + k].to_f64_lossless(),
            );
            assert!(
                (g - c).abs() <= 8.0 * n as f64 * eps * norm.max(f64::MIN_POSITIVE),
                "{} n={n} matrix {m} eigenvalue {k}: cuda {g} cpu {c}",
                T::DTYPE
            );
        }
    }
}

#[test]
fn uniform_batches_match_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[
        (2, 1000),
        (3, 777),
        (4, 4096),
        (12, 1582),
        (16, 513),
        (32, 300),
        (48, 64),
    ] {
        uniform_matches_cpu::<f64>(&cuda, n, batch, n as u64);
        uniform_matches_cpu::<f32>(&cuda, n, batch, 100 + n as u64);
    }
}

#[test]
fn non_finite_input_names_the_first_bad_matrix_and_writes_nothing() {
    let Some(cuda) = cuda_or_skip() else { return };
    let sizes = vec![3, 5, 4, 5];
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let mut a = vec![0.0f64; offsets.a_len()];
    for (i, &n) in sizes.iter().enumerate() {
        let s = offsets.slot(i);
        for d in 0..n {
            a[s.a_start + d * n + d] = 1.0 + d as f64;
        }
    }
    let s2 = offsets.slot(2);
    a[s2.a_start + 4 + 1] = f64::INFINITY; // lower triangle of matrix 2
    let s3 = offsets.slot(3);
    a[s3.a_start + 5 * 4] = f64::NAN; // and of matrix 3
    let mut plan = BatchedEigh::<f64>::plan_eigh(&cuda, &spec).unwrap();
    let mut w = vec![-7.0; offsets.w_len()];
    let mut v = vec![-7.0; offsets.a_len()];
    let err = cuda
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { matrix: 2 }), "{err:?}");
    assert!(
        w.iter().chain(&v).all(|&x| x == -7.0),
        "outputs were written"
    );
    // NaN in the (never read) upper triangle is fine.
    a[s2.a_start + 4 + 1] = 0.5;
    a[s3.a_start + 5 * 4] = 0.0;
    a[s3.a_start + 1] = f64::NAN;
    cuda.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
}

#[test]
fn shape_and_plan_errors() {
    let Some(cuda) = cuda_or_skip() else { return };
    let mut plan = BatchedEigh::<f32>::plan_eigh(&cuda, &EighSpec::uniform(4, 3)).unwrap();
    let mut w = vec![0.0f32; 12];
    let err = cuda
        .eigh_host(&mut plan, &[0.0; 47], &mut w, None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { what: "a", .. }), "{err:?}");
    let mut v = vec![0.0f32; 48];
    let err = cuda
        .eigh_host(&mut plan, &[0.0; 48], &mut w, Some(&mut v))
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let other = cuda_or_skip().unwrap();
    let err = other
        .eigh_host(&mut plan, &[0.0; 48], &mut w, None)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let err = BatchedEigh::<f64>::plan_eigh(&cuda, &EighSpec::uniform(5000, 1)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    // Empty batches and order 0 are valid and do nothing.
    let mut plan = BatchedEigh::<f64>::plan_eigh(&cuda, &EighSpec::ragged(vec![0, 0])).unwrap();
    cuda.eigh_host(&mut plan, &[], &mut [], None).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Ragged batches of mixed orders (several buckets, shared and global memory) give the
    /// CPU backend's eigenvalues.
    #[test]
    fn ragged_batches_match_the_cpu_backend(sizes in prop::collection::vec(0usize..140, 1..40), seed in 0u64..1000) {
        let Some(cuda) = cuda_or_skip() else { return Ok(()) };
        let mut r = rng(seed);
        let mut a: Vec<f64> = Vec::new();
        for &n in &sizes {
            a.extend(make::<f64>(MatrixType::RandomSpectrum, n, &mut r));
        }
        let spec = EighSpec::ragged(sizes.clone());
        let offsets = spec.offsets(8).unwrap();
        let mut plan = BatchedEigh::<f64>::plan_eigh(&cuda, &spec).unwrap();
        let mut w = vec![0.0; offsets.w_len()];
        cuda.eigh_host(&mut plan, &a, &mut w, None).unwrap();
        let cpu = Cpu::with_threads(1).unwrap();
        let mut cpu_plan = BatchedEigh::<f64>::plan_eigh(&cpu, &spec).unwrap();
        let mut w_cpu = vec![0.0; offsets.w_len()];
        cpu.eigh_host(&mut cpu_plan, &a, &mut w_cpu, None).unwrap();
        for (i, &n) in sizes.iter().enumerate() {
            let s = offsets.slot(i);
            let norm = w_cpu[s.w_start..s.w_start + n].iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for k in 0..n {
                let (g, c) = (w[s.w_start + k], w_cpu[s.w_start + k]);
                prop_assert!((g - c).abs() <= 8.0 * n as f64 * f64::EPSILON * norm, "matrix {} n={} k={}: {} vs {}", i, n, k, g, c);
            }
        }
    }
}
