//! The wgpu Reducer against the CPU backend (the parity reference, itself tested against exact
//! sums) for every operation, shape and dtype, NaN propagation, identities of empty inputs,
//! bitwise determinism, typed errors, and a device-resident eigh -> reduce -> eigh chain that
//! reads back one scalar per iteration. Skips without an adapter unless
//! `MEGABATCH_REQUIRE_WGPU=1`.
#![cfg(feature = "wgpu")]

use crate::common;

use common::reduce_check::{self, run};
use common::{bound, exact_sum, rng, wgpu_or_skip};
use half::{bf16, f16};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::Wgpu;
use megabatch::{
    Backend, BatchedEigh, EighSpec, Error, Real, ReduceOp, ReducePlan, ReduceSpec, Reducer,
    Reducible, RowReduceOp, SegmentReduceOp,
};
use rand::Rng;

fn random<T: Reducible>(n: usize, seed: u64, from: fn(f64) -> T) -> Vec<T> {
    let mut r = rng(seed);
    (0..n).map(|_| from(r.random_range(-2.0..2.0))).collect()
}

/// Every spec over `x` (and `y`): whole arrays, rows of a `rows x (len / rows)` matrix (rows
/// weights from `y`), and uneven segments including empty ones.
fn specs(len: usize, rows: usize) -> Vec<ReduceSpec> {
    let mut s: Vec<ReduceSpec> = ReduceOp::ALL
        .iter()
        .map(|&op| ReduceSpec::Full { op, len })
        .collect();
    for op in RowReduceOp::ALL {
        s.push(ReduceSpec::Rows {
            op,
            rows,
            cols: len / rows,
        });
    }
    let mut offsets = vec![0];
    let mut at = 0;
    let mut k = 0;
    while at < len {
        at = (at + [0, 1, 7, 300, 5000][k % 5]).min(len);
        offsets.push(at);
        k += 1;
    }
    for op in SegmentReduceOp::ALL {
        s.push(ReduceSpec::Segments {
            op,
            offsets: offsets.clone(),
        });
    }
    s
}

fn y_for<T: Copy>(spec: &ReduceSpec, y: &[T]) -> Option<Vec<T>> {
    spec.shape().unwrap().y_len.map(|n| y[..n].to_vec())
}

/// wgpu against the CPU backend on every spec, within the pairwise-summation bound of the
/// accumulator type for sums (both backends sum in different fixed orders), exactly for
/// maxima and minima.
fn check_against_cpu<T: Reducible>(gpu: &Wgpu, len: usize, rows: usize, from: fn(f64) -> T)
where
    Cpu: Reducer<T>,
{
    let cpu = Cpu::with_threads(2).unwrap();
    let x = random::<T>(len, len as u64, from);
    // Positive weights for the weighted mean.
    let y: Vec<T> = random::<T>(len, 7 + len as u64, from)
        .into_iter()
        .map(|v| from(v.widen().to_f64_lossless().abs() + 0.25))
        .collect();
    let eps = <T::Acc as Real>::UNIT_ROUNDOFF.to_f64_lossless();
    for spec in specs(len, rows) {
        let ys = y_for(&spec, &y);
        let xs = &x[..spec.shape().unwrap().x_len];
        let g = run(gpu, &spec, xs, ys.as_deref());
        let c = run(&cpu, &spec, xs, ys.as_deref());
        let scale: f64 = x
            .iter()
            .map(|v| v.widen().to_f64_lossless().abs() * 2.5)
            .sum::<f64>()
            .max(1.0);
        for (i, (g, c)) in g.iter().zip(&c).enumerate() {
            let (g, c) = (g.to_f64_lossless(), c.to_f64_lossless());
            let same_special = (g.is_nan() && c.is_nan()) || g == c;
            assert!(
                same_special || (g - c).abs() <= 2.0 * bound(len, eps, scale),
                "{} {spec:?} out[{i}]: wgpu {g} cpu {c}",
                T::DTYPE
            );
        }
    }
}

#[test]
fn every_operation_and_shape_matches_the_cpu_backend() {
    let Some(gpu) = wgpu_or_skip() else { return };
    // One workgroup, several, and the largest stage-1 grid.
    for &(len, rows) in &[(1, 1), (255, 5), (4096, 64), (100_003, 7), (1 << 20, 1024)] {
        check_against_cpu::<f32>(&gpu, len, rows, |v| v as f32);
        if gpu.adapter().f64 {
            check_against_cpu::<f64>(&gpu, len, rows, |v| v);
        }
        if gpu.adapter().f16 {
            check_against_cpu::<f16>(&gpu, len, rows, f16::from_f64);
        }
    }
}

#[test]
fn whole_array_sum_is_within_the_bound_of_the_exact_sum() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let x = random::<f32>(1 << 22, 3, |v| v as f32);
    let exact = exact_sum(x.iter().map(|&v| f64::from(v)));
    let abs: f64 = x.iter().map(|v| f64::from(v.abs())).sum();
    let got = f64::from(reduce_check::full(&gpu, ReduceOp::Sum, &x, None));
    assert!(
        (got - exact).abs() <= bound(x.len(), f64::from(f32::EPSILON) / 2.0, abs),
        "{got} vs {exact}"
    );
}

#[test]
fn nan_propagates_and_empty_inputs_give_identities() {
    let Some(gpu) = wgpu_or_skip() else { return };
    if gpu.adapter().f64 {
        reduce_check::check_full_nan_propagation(&gpu, &[1, 300, 70_001]);
    }
    let empty: [f32; 0] = [];
    assert_eq!(reduce_check::full(&gpu, ReduceOp::Sum, &empty, None), 0.0);
    assert!(reduce_check::full(&gpu, ReduceOp::Mean, &empty, None).is_nan());
    assert_eq!(
        reduce_check::full(&gpu, ReduceOp::Min, &empty, None),
        f32::INFINITY
    );
    assert_eq!(
        reduce_check::full(&gpu, ReduceOp::Max, &empty, None),
        f32::NEG_INFINITY
    );
    let seg = ReduceSpec::Segments {
        op: SegmentReduceOp::Max,
        offsets: vec![0, 0, 2, 2],
    };
    let out = run(&gpu, &seg, &[1.0f32, f32::NAN], None);
    assert_eq!(out[0], f32::NEG_INFINITY);
    assert!(out[1].is_nan());
    assert_eq!(out[2], f32::NEG_INFINITY);
}

#[test]
fn results_are_bitwise_repeatable_and_errors_are_typed() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let x = random::<f32>(300_001, 5, |v| v as f32);
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: x.len(),
    };
    let first = run(&gpu, &spec, &x, None)[0];
    for _ in 0..3 {
        assert_eq!(run(&gpu, &spec, &x, None)[0].to_bits(), first.to_bits());
    }
    let mut plan = gpu.plan_reduce(&spec).unwrap();
    let mut out = [0.0f32];
    let err = gpu
        .reduce_host(&mut plan, &x[1..], None, &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { what: "x", .. }), "{err:?}");
    let err = gpu
        .reduce_host(&mut plan, &x, Some(&x), &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    let plan: Result<ReducePlan<Wgpu, bf16>, Error> = gpu.plan_reduce(&spec);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let bad = ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![0, 5, 3],
    };
    let plan: Result<ReducePlan<Wgpu, f32>, Error> = gpu.plan_reduce(&bad);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::BadOffsets { index: 2 }), "{err:?}");
    let empty = gpu.alloc::<f32>(0).unwrap();
    assert!(gpu.read_scalar(&empty).is_err());
}

/// eigh -> sum of eigenvalues (= trace) -> a second eigh compared by MaxAbsDiff, all on device
/// buffers, one scalar read back per reduction: the device-resident loop the backend exists for.
#[test]
fn device_resident_eigh_reduce_eigh_chain() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let (n, batch) = (12usize, 1582usize);
    let mut r = rng(11);
    let mut h = vec![0.0f32; n * n * batch];
    for m in 0..batch {
        for i in 0..n {
            for j in 0..=i {
                let v: f32 = r.random_range(-1.0..1.0);
                h[m * n * n + i * n + j] = v;
                h[m * n * n + j * n + i] = v;
            }
        }
    }
    let trace = exact_sum(
        (0..batch)
            .flat_map(|m| (0..n).map(move |i| (m, i)))
            .map(|(m, i)| f64::from(h[m * n * n + i * n + i])),
    );
    let mut h_dev = gpu.alloc::<f32>(h.len()).unwrap();
    gpu.upload(&h, &mut h_dev).unwrap();
    let mut w_dev = gpu.alloc::<f32>(n * batch).unwrap();
    let mut v_dev = gpu.alloc::<f32>(h.len()).unwrap();
    let mut w2_dev = gpu.alloc::<f32>(n * batch).unwrap();
    let mut out = gpu.alloc::<f32>(1).unwrap();
    let mut eig = gpu
        .plan_eigh(&EighSpec::uniform(n, batch).with_vectors(true))
        .unwrap();
    let mut eig2 = gpu.plan_eigh(&EighSpec::uniform(n, batch)).unwrap();
    let len = n * batch;
    let mut sum = gpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len,
        })
        .unwrap();
    let mut diff = gpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::MaxAbsDiff,
            len,
        })
        .unwrap();
    for _ in 0..3 {
        gpu.eigh(&mut eig, &h_dev, &mut w_dev, Some(&mut v_dev))
            .unwrap();
        gpu.reduce(&mut sum, &w_dev, None, &mut out).unwrap();
        let s = f64::from(gpu.read_scalar(&out).unwrap());
        assert!(
            (s - trace).abs() <= 1e-5 * (len as f64).sqrt() * trace.abs().max(1.0),
            "{s} vs {trace}"
        );
        gpu.eigh(&mut eig2, &h_dev, &mut w2_dev, None).unwrap();
        gpu.reduce(&mut diff, &w_dev, Some(&w2_dev), &mut out)
            .unwrap();
        let d = gpu.read_scalar(&out).unwrap();
        assert!(
            d <= 1e-5 * n as f32,
            "values-only and full eigh differ by {d}"
        );
    }
}
