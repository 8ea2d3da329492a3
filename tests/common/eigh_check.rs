//! The eigh accuracy suite, for any backend: LAPACK dsyt21 ratios, ordering and sign
//! convention on LAPACK's matrix types.

use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec, Error, Real};

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
    check_eigh_accuracy_planned::<T, B>(backend, orders, types, seed, threshold, &|spec| {
        backend.plan_eigh(spec).unwrap()
    });
}

/// As [`check_eigh_accuracy`], with the plans (vectors, then values only) made by `plan`.
pub fn check_eigh_accuracy_planned<T: Real, B: BatchedEigh<T>>(
    backend: &B,
    orders: &[usize],
    types: &[MatrixType],
    seed: u64,
    threshold: f64,
    plan: &dyn Fn(&EighSpec) -> B::EighPlan,
) {
    let plan_eigh = plan;
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
    let mut plan = plan_eigh(&spec);
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); offsets.a_len()];
    backend
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap();

    let values_spec = EighSpec::ragged(sizes.clone());
    let mut values_plan = plan_eigh(&values_spec);
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

/// A uniform batch through device buffers against the CPU backend's eigenvalues.
pub fn uniform_matches_cpu<T: Real, B: BatchedEigh<T>>(
    backend: &B,
    n: usize,
    batch: usize,
    seed: u64,
) {
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let plan = backend.plan_eigh(&spec).unwrap();
    plan_matches_cpu(backend, plan, n, batch, seed);
}

/// As [`uniform_matches_cpu`], with a plan the caller made (for `n`, `batch`, with vectors).
#[allow(dead_code)]
pub fn plan_matches_cpu<T: Real, B: BatchedEigh<T>>(
    backend: &B,
    mut plan: B::EighPlan,
    n: usize,
    batch: usize,
    seed: u64,
) {
    let mut r = rng(seed);
    let mut a: Vec<T> = Vec::with_capacity(n * n * batch);
    for _ in 0..batch {
        a.extend(to_t::<T>(&make::<T>(MatrixType::RandomDense, n, &mut r)));
    }
    let mut a_dev = backend.alloc::<T>(a.len()).unwrap();
    backend.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = backend.alloc::<T>(n * batch).unwrap();
    let mut v_dev = backend.alloc::<T>(n * n * batch).unwrap();
    backend
        .eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    let mut w = vec![T::zero(); n * batch];
    backend.download(&w_dev, &mut w).unwrap();

    let cpu = Cpu::with_threads(2).unwrap();
    let mut cpu_plan = cpu.plan_eigh(&EighSpec::uniform(n, batch)).unwrap();
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
                "{} n={n} matrix {m} eigenvalue {k}: {:?} {g} cpu {c}",
                T::DTYPE,
                backend.kind()
            );
        }
    }
}

/// NaN/Inf in a lower triangle: `NonFinite` naming the first such matrix, outputs untouched;
/// NaN in an upper triangle is never read.
pub fn check_non_finite_input<B: BatchedEigh<f64>>(backend: &B) {
    let sizes = [3usize, 5, 4, 5];
    let (spec, offsets, mut a) = banded_batch(&sizes, 0.0);
    let s2 = offsets.slot(2);
    a[s2.a_start + 4 + 1] = f64::INFINITY; // lower triangle of matrix 2
    let s3 = offsets.slot(3);
    a[s3.a_start + 5 * 4] = f64::NAN; // and of matrix 3
    let mut plan = backend.plan_eigh(&spec).unwrap();
    assert_rejected(backend, &mut plan, &a, &offsets, 2, "first of two");
    // NaN in the (never read) upper triangle is fine.
    a[s2.a_start + 4 + 1] = 0.5;
    a[s3.a_start + 5 * 4] = 0.0;
    a[s3.a_start + 1] = f64::NAN;
    let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
    backend
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap();
}

/// NaN or Inf in one matrix at a time, each of `sizes` in turn (one ragged plan), names that
/// matrix and leaves every output untouched; the clean batch then succeeds.
#[allow(dead_code)]
pub fn check_non_finite_in_each<B: BatchedEigh<f64>>(backend: &B, sizes: &[usize]) {
    let (spec, offsets, mut a) = banded_batch(sizes, 0.25);
    let mut plan = backend.plan_eigh(&spec).unwrap();
    for (bad, &n) in sizes.iter().enumerate() {
        let at = offsets.slot(bad).a_start + (n - 1) * n; // last row, first column
        let saved = a[at];
        a[at] = if bad % 2 == 0 {
            f64::NAN
        } else {
            f64::NEG_INFINITY
        };
        assert_rejected(backend, &mut plan, &a, &offsets, bad, &format!("order {n}"));
        a[at] = saved;
    }
    let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
    backend
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap();
}

/// A ragged batch (with vectors) of matrices with 1, 2, ... on the diagonal and `sub` below it.
fn banded_batch(sizes: &[usize], sub: f64) -> (EighSpec, megabatch::EighOffsets, Vec<f64>) {
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let mut a = vec![0.0f64; offsets.a_len()];
    for (i, &n) in sizes.iter().enumerate() {
        let s = offsets.slot(i);
        for d in 0..n {
            a[s.a_start + d * n + d] = 1.0 + d as f64;
            if d > 0 {
                a[s.a_start + d * n + d - 1] = sub;
            }
        }
    }
    (spec, offsets, a)
}

/// `eigh_host` on `a` fails with `NonFinite { matrix: bad }` and writes no output.
fn assert_rejected<B: BatchedEigh<f64>>(
    backend: &B,
    plan: &mut B::EighPlan,
    a: &[f64],
    offsets: &megabatch::EighOffsets,
    bad: usize,
    label: &str,
) {
    let mut w = vec![-7.0; offsets.w_len()];
    let mut v = vec![-7.0; offsets.a_len()];
    let err = backend
        .eigh_host(plan, a, &mut w, Some(&mut v))
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { matrix } if matrix == bad),
        "{label}: {err:?}"
    );
    assert!(
        w.iter().chain(&v).all(|&x| x == -7.0),
        "{label}: outputs were written"
    );
}

/// A ragged batch of `RandomSpectrum` matrices (orders as `sizes`) gives the CPU backend's
/// eigenvalues within `8 n eps |w|_max`.
pub fn ragged_matches_cpu<B: BatchedEigh<f64>>(
    backend: &B,
    sizes: &[usize],
    seed: u64,
) -> Result<(), String> {
    let mut r = rng(seed);
    let mut a: Vec<f64> = Vec::new();
    for &n in sizes {
        a.extend(make::<f64>(MatrixType::RandomSpectrum, n, &mut r));
    }
    let spec = EighSpec::ragged(sizes.to_vec());
    let offsets = spec.offsets(8).unwrap();
    let mut plan = backend.plan_eigh(&spec).unwrap();
    let mut w = vec![0.0; offsets.w_len()];
    backend.eigh_host(&mut plan, &a, &mut w, None).unwrap();
    let cpu = Cpu::with_threads(1).unwrap();
    let mut cpu_plan = cpu.plan_eigh(&spec).unwrap();
    let mut w_cpu = vec![0.0; offsets.w_len()];
    cpu.eigh_host(&mut cpu_plan, &a, &mut w_cpu, None).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let s = offsets.slot(i);
        let norm = w_cpu[s.w_start..s.w_start + n]
            .iter()
            .fold(0.0f64, |m, x| m.max(x.abs()));
        for k in 0..n {
            let (g, c) = (w[s.w_start + k], w_cpu[s.w_start + k]);
            if (g - c).abs() > 8.0 * n as f64 * f64::EPSILON * norm {
                return Err(format!("matrix {i} n={n} k={k}: {g} vs {c}"));
            }
        }
    }
    Ok(())
}

/// Typed errors every GPU backend's eigh shares: a short `a` is `Shape`, `v` for a values-only
/// plan and a plan of another instance (`other`) are `PlanMismatch`, order 5000 is
/// `Unsupported`; empty batches and order 0 run and do nothing.
pub fn check_shape_and_plan_errors<B: BatchedEigh<f32>>(backend: &B, other: &B) {
    let mut plan = backend.plan_eigh(&EighSpec::uniform(4, 3)).unwrap();
    let mut w = vec![0.0f32; 12];
    let err = backend
        .eigh_host(&mut plan, &[0.0; 47], &mut w, None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { what: "a", .. }), "{err:?}");
    let mut v = vec![0.0f32; 48];
    let err = backend
        .eigh_host(&mut plan, &[0.0; 48], &mut w, Some(&mut v))
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let err = other
        .eigh_host(&mut plan, &[0.0; 48], &mut w, None)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let err = backend.plan_eigh(&EighSpec::uniform(5000, 1)).err();
    assert!(matches!(err, Some(Error::Unsupported { .. })), "{err:?}");
    let mut plan = backend.plan_eigh(&EighSpec::ragged(vec![0, 0])).unwrap();
    backend.eigh_host(&mut plan, &[], &mut [], None).unwrap();
}

/// The device-buffer eigh contract: a ragged batch (orders `sizes`, random dense matrices with
/// NaN in every upper triangle, which is never read) whose matrices `bad` hold NaN (even
/// positions of `bad`) or -inf (odd) in their lower triangle goes through `plan` on device
/// buffers, then through host slices, then clean:
/// - GPU backends: `eigh` returns `Ok`; [`BatchedEigh::eigh_info`] marks exactly the bad
///   matrices [`EIGH_NON_FINITE`] and the others [`EIGH_SOLVED`]; the bad matrices'
///   eigenvalues and eigenvectors are all NaN; every other matrix passes LAPACK's dsyt21
///   ratios and its eigenvalues match nalgebra's (`threshold`). The CPU backend, whose buffers
///   are host memory, returns `NonFinite` naming the first bad matrix there, writes nothing,
///   and records the same status.
/// - `eigh_host` returns `NonFinite` for the first bad matrix with its outputs untouched, and
///   the status again marks exactly the bad matrices.
/// - A clean batch then reports every matrix solved, and `info` of the wrong length is a
///   `Shape` error.
///
/// `plan` must be for `EighSpec::ragged(sizes).with_vectors(true)`.
#[allow(dead_code)]
pub fn check_device_info<T: Real, B: BatchedEigh<T>>(
    backend: &B,
    mut plan: B::EighPlan,
    sizes: &[usize],
    bad: &[usize],
    seed: u64,
    threshold: f64,
) {
    use megabatch::{EIGH_NON_FINITE, EIGH_SOLVED};
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    let offsets = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut r = rng(seed);
    let mut clean: Vec<T> = Vec::with_capacity(offsets.a_len());
    for &n in sizes {
        let mut m = to_t::<T>(&make::<T>(MatrixType::RandomDense, n, &mut r));
        for row in 0..n {
            for c in row + 1..n {
                m[row * n + c] = T::nan();
            }
        }
        clean.extend(m);
    }
    let mut a = clean.clone();
    for (k, &i) in bad.iter().enumerate() {
        let s = offsets.slot(i);
        let n = s.n;
        // A lower-triangle entry: the last row's middle column.
        a[s.a_start + (n - 1) * n + (n - 1) / 2] = if k % 2 == 0 {
            T::nan()
        } else {
            T::neg_infinity()
        };
    }
    let expected: Vec<i32> = (0..sizes.len())
        .map(|i| {
            if bad.contains(&i) && sizes[i] > 0 {
                EIGH_NON_FINITE
            } else {
                EIGH_SOLVED
            }
        })
        .collect();
    let first_bad = expected.iter().position(|&c| c != EIGH_SOLVED);
    let label = format!("{} {:?}", T::DTYPE, backend.kind());

    // Device buffers.
    let mut a_dev = backend.alloc::<T>(a.len()).unwrap();
    backend.upload(&a, &mut a_dev).unwrap();
    let marker = T::of(-7.0);
    let mut w_dev = backend.alloc::<T>(offsets.w_len()).unwrap();
    backend
        .upload(&vec![marker; offsets.w_len()], &mut w_dev)
        .unwrap();
    let mut v_dev = backend.alloc::<T>(offsets.a_len()).unwrap();
    backend
        .upload(&vec![marker; offsets.a_len()], &mut v_dev)
        .unwrap();
    let result = backend.eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev));
    let mut info = vec![-99; sizes.len()];
    backend.eigh_info(&mut plan, &mut info).unwrap();
    assert_eq!(info, expected, "{label}: info after the device-buffer call");
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); offsets.a_len()];
    backend.download(&w_dev, &mut w).unwrap();
    backend.download(&v_dev, &mut v).unwrap();
    match result {
        Ok(()) => {
            for (i, &n) in sizes.iter().enumerate() {
                let s = offsets.slot(i);
                let wi = &w[s.w_start..s.w_start + n];
                let vi = &v[s.a_start..s.a_start + n * n];
                if expected[i] == EIGH_NON_FINITE {
                    assert!(
                        wi.iter().chain(vi).all(|x| x.is_nan()),
                        "{label}: matrix {i} (n = {n}) has NaN input: its outputs must be NaN"
                    );
                    continue;
                }
                let ai = &a[s.a_start..s.a_start + n * n];
                let (res, orth) = ratios(ai, wi, vi, n);
                let ev = eigenvalue_ratio(ai, wi, n);
                assert!(
                    res < threshold && orth < threshold && ev < threshold,
                    "{label}: matrix {i} (n = {n}) next to bad ones: residual {res:.2}, \
                     orthogonality {orth:.2}, eigenvalues {ev:.2}"
                );
            }
        }
        Err(Error::NonFinite { matrix }) => {
            // Host-memory buffers (the CPU): the host call's contract.
            assert_eq!(Some(matrix), first_bad, "{label}");
            assert!(
                w.iter().chain(&v).all(|&x| x == marker),
                "{label}: outputs were written"
            );
        }
        Err(e) => panic!("{label}: {e:?}"),
    }

    // Host slices: the error, outputs untouched, the same status.
    let mut w = vec![marker; offsets.w_len()];
    let mut v = vec![marker; offsets.a_len()];
    let err = backend
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { matrix } if Some(matrix) == first_bad),
        "{label}: {err:?}"
    );
    assert!(
        w.iter().chain(&v).all(|&x| x == marker),
        "{label}: host outputs were written"
    );
    let mut info = vec![-99; sizes.len()];
    backend.eigh_info(&mut plan, &mut info).unwrap();
    assert_eq!(info, expected, "{label}: info after the host call");
    assert_eq!(
        megabatch::eigh_info_result(&info),
        Err(Error::NonFinite {
            matrix: first_bad.unwrap()
        })
    );

    // Clean input: every matrix solved.
    backend.upload(&clean, &mut a_dev).unwrap();
    backend
        .eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    backend.eigh_info(&mut plan, &mut info).unwrap();
    assert!(info.iter().all(|&c| c == EIGH_SOLVED), "{label}: {info:?}");
    let err = backend
        .eigh_info(&mut plan, &mut vec![0; sizes.len() + 1])
        .unwrap_err();
    assert!(
        matches!(err, Error::Shape { what: "info", .. }),
        "{label}: {err:?}"
    );
}
