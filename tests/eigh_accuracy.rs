//! LAPACK-style accuracy of the CPU eigh: `dsyt21` residual and orthogonality ratios under 30,
//! eigenvalues against nalgebra, on LAPACK's matrix types, f32 and f64, one ragged batch each.

mod common;

use common::{eigenvalue_ratio, make, ratios, rng, to_t, MatrixType, ALL_TYPES};
use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec, Real};

const THRESHOLD: f64 = 30.0;

/// Runs every (order, type) pair as one ragged batch with the upper triangles set to NaN (they
/// must never be read), then checks every matrix's ratios, ordering and sign convention.
fn check<T: Real>(orders: &[usize], types: &[MatrixType], seed: u64) {
    let mut rng = rng(seed);
    let mut sizes = Vec::new();
    let mut labels = Vec::new();
    let mut a: Vec<T> = Vec::new();
    for &n in orders {
        for &t in types {
            let mut m = to_t::<T>(&make::<T>(t, n, &mut rng));
            for r in 0..n {
                for c in r + 1..n {
                    m[r * n + c] = T::nan();
                }
            }
            a.extend_from_slice(&m);
            sizes.push(n);
            labels.push((n, t));
        }
    }
    let cpu = Cpu::with_threads(2).unwrap();
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let offsets = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut plan = BatchedEigh::<T>::plan_eigh(&cpu, &spec).unwrap();
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); offsets.a_len()];
    cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();

    let values_spec = EighSpec::ragged(sizes.clone());
    let mut values_plan = BatchedEigh::<T>::plan_eigh(&cpu, &values_spec).unwrap();
    let mut w_only = vec![T::zero(); offsets.w_len()];
    cpu.eigh_host(&mut values_plan, &a, &mut w_only, None)
        .unwrap();

    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for (i, &(n, t)) in labels.iter().enumerate() {
        let s = offsets.slot(i);
        let ai = &a[s.a_start..s.a_start + n * n];
        let wi = &w[s.w_start..s.w_start + n];
        let vi = &v[s.a_start..s.a_start + n * n];
        let (res, orth) = ratios(ai, wi, vi, n);
        let ev = eigenvalue_ratio(ai, wi, n);
        let ev_only = eigenvalue_ratio(ai, &w_only[s.w_start..s.w_start + n], n);
        assert!(
            res < THRESHOLD && orth < THRESHOLD && ev < THRESHOLD && ev_only < THRESHOLD,
            "{} n={n} {t:?}: residual {res:.2}, orthogonality {orth:.2}, eigenvalues {ev:.2} / values-only {ev_only:.2}",
            T::DTYPE
        );
        assert!(
            wi.windows(2).all(|p| p[0] <= p[1]),
            "{} n={n} {t:?}: eigenvalues not ascending",
            T::DTYPE
        );
        for k in 0..n {
            let col: Vec<T> = (0..n).map(|r| vi[r * n + k]).collect();
            let big = col.iter().fold(T::zero(), |m, x| m.max(x.abs()));
            let first_big = col.iter().find(|x| x.abs() == big).unwrap();
            assert!(
                *first_big > T::zero(),
                "{} n={n} {t:?}: eigenvector {k} sign convention",
                T::DTYPE
            );
        }
        worst = (worst.0.max(res), worst.1.max(orth), worst.2.max(ev));
    }
    eprintln!(
        "{} orders {:?}..{:?}: worst residual {:.2}, orthogonality {:.2}, eigenvalue ratio {:.2}",
        T::DTYPE,
        orders.first(),
        orders.last(),
        worst.0,
        worst.1,
        worst.2
    );
}

#[test]
fn f64_all_types_orders_1_to_64() {
    check::<f64>(&(1..=64).collect::<Vec<_>>(), &ALL_TYPES, 1);
}

#[test]
fn f32_all_types_orders_1_to_64() {
    check::<f32>(&(1..=64).collect::<Vec<_>>(), &ALL_TYPES, 2);
}

const LARGE_TYPES: [MatrixType; 6] = [
    MatrixType::RandomDense,
    MatrixType::Clustered,
    MatrixType::Geometric,
    MatrixType::WilkinsonPlus,
    MatrixType::NearUnderflow,
    MatrixType::NearOverflow,
];

#[test]
fn f64_larger_orders_up_to_512() {
    check::<f64>(&[65, 100, 128, 200, 256], &LARGE_TYPES, 3);
    check::<f64>(&[512], &[MatrixType::RandomDense, MatrixType::Clustered], 4);
}

#[test]
fn f32_larger_orders_up_to_512() {
    check::<f32>(&[65, 100, 128, 200, 256], &LARGE_TYPES, 5);
    check::<f32>(&[512], &[MatrixType::RandomDense, MatrixType::Geometric], 6);
}
