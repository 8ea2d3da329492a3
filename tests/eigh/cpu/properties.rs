//! Property tests: random symmetric matrices in random ragged batches satisfy the LAPACK
//! ratios, match nalgebra's eigenvalues, and give the same bits on any thread count.

use crate::common;

use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec, Real};
use proptest::prelude::*;

/// A ragged batch: sizes 0..=40, entries uniform in [-1, 1] times 2^scale.
fn batch() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    (
        prop::collection::vec(0usize..=40, 0..12),
        -60i32..60,
        any::<u64>(),
    )
        .prop_map(|(sizes, scale, seed)| {
            let mut rng = common::rng(seed);
            let mut a = Vec::new();
            for &n in &sizes {
                a.extend(
                    common::random_dense(n, &mut rng)
                        .into_iter()
                        .map(|x| x * 2f64.powi(scale)),
                );
            }
            (sizes, a)
        })
}

fn run<T: Real>(threads: usize, sizes: &[usize], a: &[T], vectors: bool) -> (Vec<T>, Vec<T>) {
    let cpu = Cpu::with_threads(threads).unwrap();
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(vectors);
    let off = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let mut w = vec![T::zero(); off.w_len()];
    let mut v = vec![T::zero(); if vectors { off.a_len() } else { 0 }];
    cpu.eigh_host(&mut plan, a, &mut w, vectors.then_some(&mut v[..]))
        .unwrap();
    (w, v)
}

fn check<T: Real>(sizes: &[usize], a64: &[f64]) -> Result<(), TestCaseError> {
    let a = common::to_t::<T>(a64);
    let (w, v) = run::<T>(3, sizes, &a, true);
    let spec = EighSpec::ragged(sizes.to_vec());
    let off = spec.offsets(8).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let s = off.slot(i);
        let (ai, wi, vi) = (
            &a[s.a_start..s.a_start + n * n],
            &w[s.w_start..s.w_start + n],
            &v[s.a_start..s.a_start + n * n],
        );
        let (res, orth) = common::ratios(ai, wi, vi, n);
        let ev = common::eigenvalue_ratio(ai, wi, n);
        prop_assert!(
            res < 30.0 && orth < 30.0 && ev < 30.0,
            "{} n={n}: {res} {orth} {ev}",
            T::DTYPE
        );
    }
    let (w1, v1) = run::<T>(1, sizes, &a, true);
    prop_assert!(w1 == w && v1 == v, "results depend on the thread count");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_ragged_batches_f64((sizes, a) in batch()) {
        check::<f64>(&sizes, &a)?;
    }

    #[test]
    fn random_ragged_batches_f32((sizes, a) in batch()) {
        check::<f32>(&sizes, &a)?;
    }

    #[test]
    fn values_only_matches_values_with_vectors((sizes, a) in batch()) {
        let (w_vec, _) = run::<f64>(2, &sizes, &a, true);
        let (w_only, _) = run::<f64>(2, &sizes, &a, false);
        let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(f64::MIN_POSITIVE);
        for (x, y) in w_vec.iter().zip(&w_only) {
            prop_assert!((x - y).abs() <= 64.0 * f64::EPSILON * 40.0 * scale, "{x} vs {y}");
        }
    }
}

/// Uniform batches: consecutive same-order matrices run as SIMD lane groups (4 at a time), with
/// the remainder solved one by one.
fn uniform_batch() -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (2usize..=36, 1usize..=19, -40i32..40, any::<u64>()).prop_map(|(n, batch, scale, seed)| {
        let mut rng = common::rng(seed);
        let a = (0..batch)
            .flat_map(|_| common::random_dense(n, &mut rng))
            .map(|x| x * 2f64.powi(scale))
            .collect();
        (n, batch, a)
    })
}

fn lane_group_check<T: Real>(n: usize, batch: usize, a64: &[f64]) -> Result<(), TestCaseError> {
    let a = common::to_t::<T>(a64);
    let sizes = vec![n; batch];
    let (w, v) = run::<T>(2, &sizes, &a, true);
    for b in 0..batch {
        let (ai, wi, vi) = (
            &a[b * n * n..(b + 1) * n * n],
            &w[b * n..(b + 1) * n],
            &v[b * n * n..(b + 1) * n * n],
        );
        let (res, orth) = common::ratios(ai, wi, vi, n);
        let ev = common::eigenvalue_ratio(ai, wi, n);
        prop_assert!(
            res < 30.0 && orth < 30.0 && ev < 30.0,
            "{} n={n} matrix {b}: {res} {orth} {ev}",
            T::DTYPE
        );
        // The same matrix alone (never in a lane group) gives the same eigenvalues.
        let (w_alone, _) = run::<T>(1, &[n], ai, true);
        let anorm = ai
            .iter()
            .fold(0.0f64, |m, x| m.max(x.to_f64_lossless().abs()));
        for (x, y) in wi.iter().zip(&w_alone) {
            let diff = (x.to_f64_lossless() - y.to_f64_lossless()).abs();
            prop_assert!(
                diff <= 30.0 * n as f64 * anorm * T::epsilon().to_f64_lossless(),
                "{x:?} vs {y:?}"
            );
        }
    }
    let (w3, v3) = run::<T>(3, &sizes, &a, true);
    prop_assert!(w3 == w && v3 == v, "results depend on the thread count");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn lane_groups_f64((n, batch, a) in uniform_batch()) {
        lane_group_check::<f64>(n, batch, &a)?;
    }

    #[test]
    fn lane_groups_f32((n, batch, a) in uniform_batch()) {
        lane_group_check::<f32>(n, batch, &a)?;
    }
}
