//! Reduction helpers for any backend: run a spec on host slices, the NaN-propagation check
//! of whole-array reductions, and exact f64 references for row and segment reductions.

use super::exact_sum;
use megabatch::{Real, ReduceOp, ReduceSpec, Reducer, Reducible, RowReduceOp, SegmentReduceOp};

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

/// The exact column reductions of a row-major `rows x cols` array `x` (weights `w`, one per
/// row, for the weighted mean), in f64 with sums by [`exact_sum`]: the reference the
/// backends' row reductions are held to.
pub fn rows_reference(op: RowReduceOp, x: &[f64], rows: usize, cols: usize, w: &[f64]) -> Vec<f64> {
    (0..cols)
        .map(|j| {
            let column = (0..rows).map(|i| x[i * cols + j]);
            match op {
                RowReduceOp::Sum => exact_sum(column),
                RowReduceOp::Mean => exact_sum(column) / rows as f64,
                RowReduceOp::WeightedMean => {
                    exact_sum(column.zip(w).map(|(v, w)| v * w)) / exact_sum(w.iter().copied())
                }
                RowReduceOp::Max => column.fold(f64::NEG_INFINITY, f64::max),
                other => panic!("no reference for {other:?}: add one here"),
            }
        })
        .collect()
}

/// The exact reduction of each segment `offsets[s]..offsets[s + 1]` of `x` (the dot product
/// with the same range of `y`), in f64: an empty segment's mean is NaN, its max -inf and its
/// min +inf.
pub fn segments_reference(
    op: SegmentReduceOp,
    x: &[f64],
    y: &[f64],
    offsets: &[usize],
) -> Vec<f64> {
    offsets
        .windows(2)
        .map(|range| {
            let seg = x[range[0]..range[1]].iter().copied();
            match op {
                SegmentReduceOp::Sum => exact_sum(seg),
                SegmentReduceOp::Mean => exact_sum(seg) / (range[1] - range[0]) as f64,
                SegmentReduceOp::Max => seg.fold(f64::NEG_INFINITY, f64::max),
                SegmentReduceOp::Min => seg.fold(f64::INFINITY, f64::min),
                SegmentReduceOp::Dot => {
                    exact_sum(seg.zip(&y[range[0]..range[1]]).map(|(a, b)| a * b))
                }
                other => panic!("no reference for {other:?}: add one here"),
            }
        })
        .collect()
}
