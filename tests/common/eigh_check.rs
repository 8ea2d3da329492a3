//! The eigh accuracy suite, for any backend: LAPACK dsyt21 ratios, ordering and sign
//! convention on LAPACK's matrix types.

use megabatch::{BatchedEigh, EighSpec, Real};

use super::{eigenvalue_ratio, make, ratios, rng, to_t, MatrixType};

/// Runs every (order, type) pair on `backend` as one ragged batch with the upper triangles set to NaN (they
/// must never be read), then checks every matrix's ratios, ordering and sign convention.
pub fn check_eigh_accuracy<T: Real, B: BatchedEigh<T>>(
    backend: &B,
    orders: &[usize],
    types: &[MatrixType],
    seed: u64,
    threshold: f64,
) {
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
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let offsets = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut plan = BatchedEigh::<T>::plan_eigh(backend, &spec).unwrap();
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); offsets.a_len()];
    backend
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap();

    let values_spec = EighSpec::ragged(sizes.clone());
    let mut values_plan = BatchedEigh::<T>::plan_eigh(backend, &values_spec).unwrap();
    let mut w_only = vec![T::zero(); offsets.w_len()];
    backend
        .eigh_host(&mut values_plan, &a, &mut w_only, None)
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
            res < threshold && orth < threshold && ev < threshold && ev_only < threshold,
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
