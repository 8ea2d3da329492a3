//! The CUDA Reducer against exact references (every operation and dtype, sizes across the
//! one-block/two-stage and warp/block-per-segment boundaries), NaN propagation, identities of
//! empty inputs, bitwise determinism, and a device-resident eigh -> reduce -> eigh loop that
//! reads back one scalar per iteration.
#![cfg(feature = "cuda")]

use crate::common;

use common::reduce_check::{self, rows_reference, run, segments_reference};
use common::{bound, cuda_or_skip, exact_sum, rng};
use half::{bf16, f16};
use megabatch::backends::cuda::Cuda;
use megabatch::{
    Backend, BatchedEigh, EighSpec, Error, Real, ReduceOp, ReducePlan, ReduceSpec, Reducer,
    Reducible, RowReduceOp, SegmentReduceOp,
};
use rand::Rng;

fn full<T: Reducible>(cuda: &Cuda, op: ReduceOp, x: &[T], y: Option<&[T]>) -> f64 {
    reduce_check::full(cuda, op, x, y).to_f64_lossless()
}

/// Every whole-array operation against an f64 reference computed here.
fn check_full<T: Reducible>(cuda: &Cuda, x: &[T], y: &[T]) {
    let xf: Vec<f64> = x.iter().map(|v| v.widen().to_f64_lossless()).collect();
    let yf: Vec<f64> = y.iter().map(|v| v.widen().to_f64_lossless()).collect();
    let n = x.len();
    let eps = <T::Acc as Real>::UNIT_ROUNDOFF.to_f64_lossless();
    let abs: f64 = xf.iter().map(|v| v.abs()).sum();
    let sum = exact_sum(xf.iter().copied());
    let got = full(cuda, ReduceOp::Sum, x, None);
    assert!(
        (got - sum).abs() <= bound(n, eps, abs),
        "{} sum n={n}: {got} vs {sum}",
        T::DTYPE
    );
    let mean = full(cuda, ReduceOp::Mean, x, None);
    assert!((mean - sum / n as f64).abs() <= bound(n, eps, abs) / n as f64 + eps * mean.abs());
    let dot_ref = exact_sum(xf.iter().zip(&yf).map(|(a, b)| a * b));
    let dot_abs: f64 = xf.iter().zip(&yf).map(|(a, b)| (a * b).abs()).sum();
    let dot = full(cuda, ReduceOp::Dot, x, Some(y));
    assert!((dot - dot_ref).abs() <= bound(n, eps, dot_abs) + 2.0 * eps * dot_abs);
    let max = xf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = xf.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(full(cuda, ReduceOp::Max, x, None), max, "{} max", T::DTYPE);
    assert_eq!(full(cuda, ReduceOp::Min, x, None), min, "{} min", T::DTYPE);
    let maxabs = xf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_eq!(full(cuda, ReduceOp::MaxAbs, x, None), maxabs);
    // |x - y| is rounded once in the accumulation type.
    let diff = xf
        .iter()
        .zip(&yf)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    let got = full(cuda, ReduceOp::MaxAbsDiff, x, Some(y));
    assert!(
        (got - diff).abs() <= eps * diff,
        "{} maxabsdiff {got} vs {diff}",
        T::DTYPE
    );
    let ymax = yf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let rel = full(cuda, ReduceOp::MaxRelDiff, x, Some(y));
    assert!((rel - diff / ymax).abs() <= 3.0 * eps * (diff / ymax));
}

fn random<T: Reducible>(n: usize, seed: u64, from: fn(f64) -> T) -> Vec<T> {
    let mut r = rng(seed);
    (0..n).map(|_| from(r.random_range(-2.0..3.0))).collect()
}

#[test]
fn whole_array_operations_match_references() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &n in &[1usize, 3, 31, 1000, 8191, 8193, 100_003, 3_000_017] {
        check_full::<f64>(&cuda, &random(n, 1, |v| v), &random(n, 2, |v| v));
        check_full::<f32>(
            &cuda,
            &random(n, 3, |v| v as f32),
            &random(n, 4, |v| v as f32),
        );
        check_full::<f16>(
            &cuda,
            &random(n, 5, f16::from_f64),
            &random(n, 6, f16::from_f64),
        );
        check_full::<bf16>(
            &cuda,
            &random(n, 7, bf16::from_f64),
            &random(n, 8, bf16::from_f64),
        );
    }
}

#[test]
fn rows_and_segments_match_references() {
    let Some(cuda) = cuda_or_skip() else { return };
    let mut r = rng(9);
    for &(rows, cols) in &[
        (100_003usize, 7usize),
        (5, 300),
        (3000, 1),
        (1, 1000),
        (70_000, 260),
    ] {
        let x: Vec<f64> = (0..rows * cols)
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let w: Vec<f64> = (0..rows).map(|_| r.random_range(0.0..1.0)).collect();
        for op in RowReduceOp::ALL {
            let y = (op == RowReduceOp::WeightedMean).then_some(&w[..]);
            let out = run(&cuda, &ReduceSpec::Rows { op, rows, cols }, &x, y);
            let reference = rows_reference(op, &x, rows, cols, &w);
            for (c, &want) in reference.iter().enumerate() {
                let tol = bound(rows, f64::EPSILON / 2.0, rows as f64);
                assert!(
                    (out[c] - want).abs() <= tol,
                    "{op:?} {rows}x{cols} col {c}: {} vs {want}",
                    out[c]
                );
            }
        }
    }
    // Short segments (a warp each), long ones (a block each), empty ones.
    for lens in [
        vec![0usize, 5, 1, 0, 33, 100, 0],
        vec![50_000, 0, 3, 70_001],
    ] {
        let mut offsets = vec![0];
        for l in &lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let total = *offsets.last().unwrap();
        let x: Vec<f32> = (0..total).map(|_| r.random_range(-1.0..1.0)).collect();
        let y: Vec<f32> = (0..total).map(|_| r.random_range(-1.0..1.0)).collect();
        let (x64, y64): (Vec<f64>, Vec<f64>) = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (f64::from(a), f64::from(b)))
            .unzip();
        for op in SegmentReduceOp::ALL {
            let yy = (op == SegmentReduceOp::Dot).then_some(&y[..]);
            let out = run(
                &cuda,
                &ReduceSpec::Segments {
                    op,
                    offsets: offsets.clone(),
                },
                &x,
                yy,
            );
            let reference = segments_reference(op, &x64, &y64, &offsets);
            for (s, &want) in reference.iter().enumerate() {
                let got = f64::from(out[s]);
                if want.is_nan() {
                    assert!(got.is_nan(), "{op:?} segment {s}");
                } else if want.is_infinite() {
                    assert_eq!(got, want, "{op:?} segment {s}");
                } else {
                    let tol = bound(lens[s], f64::from(f32::EPSILON) / 2.0, lens[s] as f64) + 1e-30;
                    assert!(
                        (got - want).abs() <= tol,
                        "{op:?} segment {s}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn nan_propagates_and_empty_inputs_give_identities() {
    let Some(cuda) = cuda_or_skip() else { return };
    reduce_check::check_full_nan_propagation(&cuda, &[1, 100, 1_000_000]);
    let e: [f64; 0] = [];
    assert_eq!(full(&cuda, ReduceOp::Sum, &e, None), 0.0);
    assert!(full(&cuda, ReduceOp::Mean, &e, None).is_nan());
    assert_eq!(full(&cuda, ReduceOp::Min, &e, None), f64::INFINITY);
    assert_eq!(full(&cuda, ReduceOp::Max, &e, None), f64::NEG_INFINITY);
    assert_eq!(full(&cuda, ReduceOp::MaxAbsDiff, &e, Some(&e)), 0.0);
    let out = run::<f32>(
        &cuda,
        &ReduceSpec::Rows {
            op: RowReduceOp::Mean,
            rows: 0,
            cols: 2,
        },
        &[],
        None,
    );
    assert!(out.iter().all(|v| v.is_nan()));
}

#[test]
fn results_are_bitwise_repeatable_and_errors_are_typed() {
    let Some(cuda) = cuda_or_skip() else { return };
    let x: Vec<f32> = random(5_000_011, 10, |v| v as f32);
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: x.len(),
    };
    let first = run(&cuda, &spec, &x, None)[0];
    for _ in 0..5 {
        assert_eq!(run(&cuda, &spec, &x, None)[0].to_bits(), first.to_bits());
    }
    let mut plan = cuda.plan_reduce(&spec).unwrap();
    let mut out = vec![0.0f32];
    let err = cuda
        .reduce_host(&mut plan, &x[1..], None, &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { what: "x", .. }), "{err:?}");
    let err = cuda
        .reduce_host(&mut plan, &x, Some(&x), &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let plan: Result<ReducePlan<Cuda, f32>, Error> = cuda.plan_reduce(&ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![0, 5, 3],
    });
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::BadOffsets { index: 2 }), "{err:?}");
}

/// A self-consistent loop kept on the device: eigh of H, the sum of its eigenvalues (the
/// trace) read back as one scalar, H shifted on the host side only through that scalar.
#[test]
fn device_resident_eigh_reduce_eigh_chain() {
    let Some(cuda) = cuda_or_skip() else { return };
    let (n, batch) = (12usize, 1582usize);
    let mut r = rng(11);
    let mut h = vec![0.0f64; n * n * batch];
    for m in 0..batch {
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = r.random_range(-1.0..1.0);
                h[m * n * n + i * n + j] = v;
                h[m * n * n + j * n + i] = v;
            }
        }
    }
    let trace: f64 = exact_sum(
        (0..batch)
            .flat_map(|m| (0..n).map(move |i| (m, i)))
            .map(|(m, i)| h[m * n * n + i * n + i]),
    );
    let mut h_dev = cuda.alloc::<f64>(h.len()).unwrap();
    cuda.upload(&h, &mut h_dev).unwrap();
    let mut w_dev = cuda.alloc::<f64>(n * batch).unwrap();
    let mut v_dev = cuda.alloc::<f64>(h.len()).unwrap();
    let mut w2_dev = cuda.alloc::<f64>(n * batch).unwrap();
    let mut eig = cuda
        .plan_eigh(&EighSpec::uniform(n, batch).with_vectors(true))
        .unwrap();
    let mut eig2 = cuda.plan_eigh(&EighSpec::uniform(n, batch)).unwrap();
    let mut sum = cuda
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: n * batch,
        })
        .unwrap();
    let mut diff = cuda
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::MaxAbsDiff,
            len: n * batch,
        })
        .unwrap();
    for _ in 0..3 {
        cuda.eigh(&mut eig, &h_dev, &mut w_dev, Some(&mut v_dev))
            .unwrap();
        let s = cuda.reduce_scalar(&mut sum, &w_dev, None).unwrap();
        assert!(
            (s - trace).abs() <= 1e-10 * trace.abs().max(1.0) * n as f64,
            "{s} vs {trace}"
        );
        // A second eigh on another plan's stream reads the same H; the eigenvalues agree.
        cuda.eigh(&mut eig2, &h_dev, &mut w2_dev, None).unwrap();
        let d = cuda
            .reduce_scalar(&mut diff, &w_dev, Some(&w2_dev))
            .unwrap();
        assert!(
            d <= 1e-13 * n as f64,
            "values-only and full eigh differ by {d}"
        );
    }
    // The trait's read_scalar on a device output.
    let mut out = cuda.alloc::<f64>(1).unwrap();
    cuda.reduce(&mut sum, &w_dev, None, &mut out).unwrap();
    let s = cuda.read_scalar(&out).unwrap();
    assert!((s - trace).abs() <= 1e-10 * trace.abs().max(1.0) * n as f64);
}
