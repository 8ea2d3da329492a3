//! Reduction helpers for any backend: run a spec on host slices, and the NaN-propagation check
//! of whole-array reductions.

use megabatch::{Real, ReduceOp, ReduceSpec, Reducer, Reducible};

/// Plans `spec` on `backend` and runs it once on host slices.
pub fn run<T: Reducible>(
    backend: &impl Reducer<T>,
    spec: &ReduceSpec,
    x: &[T],
    y: Option<&[T]>,
) -> Vec<T::Acc> {
    let mut plan = backend.plan_reduce(spec).unwrap();
    let mut out = vec![<T::Acc as Real>::of(0.0); spec.shape().unwrap().out_len];
    backend.reduce_host(&mut plan, x, y, &mut out).unwrap();
    out
}

/// The whole-array reduction `op` of `x` (and `y`).
pub fn full<T: Reducible>(
    backend: &impl Reducer<T>,
    op: ReduceOp,
    x: &[T],
    y: Option<&[T]>,
) -> T::Acc {
    run(backend, &ReduceSpec::Full { op, len: x.len() }, x, y)[0]
}

/// One NaN at the start, middle or end of `x` (or of `y`) makes every whole-array reduction NaN,
/// for each length in `sizes`.
pub fn check_full_nan_propagation(backend: &impl Reducer<f64>, sizes: &[usize]) {
    for &n in sizes {
        for pos in [0, n / 2, n - 1] {
            let clean: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 3.0).collect();
            let mut x = clean.clone();
            x[pos] = f64::NAN;
            for op in ReduceOp::ALL {
                if op.takes_y() {
                    assert!(
                        full(backend, op, &x, Some(&clean)).is_nan(),
                        "{op:?} NaN in x"
                    );
                    assert!(
                        full(backend, op, &clean, Some(&x)).is_nan(),
                        "{op:?} NaN in y"
                    );
                } else {
                    assert!(
                        full(backend, op, &x, None).is_nan(),
                        "{op:?} n={n} pos={pos}"
                    );
                }
            }
        }
    }
}
