//! Property tests: random symmetric matrices in random ragged batches satisfy the LAPACK
//! ratios, match nalgebra's eigenvalues, and give the same bits on any thread count.

mod common;

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
    let mut plan = BatchedEigh::<T>::plan_eigh(&cpu, &spec).unwrap();
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
