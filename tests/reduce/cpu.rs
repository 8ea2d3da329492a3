//! The CPU Reducer against independent references: exact sums (Shewchuk's expansion, as in
//! Python's `math.fsum`) for f64, f64 accumulation for f32/f16/bf16; adversarial inputs;
//! determinism across thread counts; NaN propagation; shapes and empty inputs.

use crate::common;

use common::reduce_check::{check_full_nan_propagation, full, rows_reference, segments_reference};
use common::{bound, exact_sum};

use half::{bf16, f16};
use megabatch::backends::cpu::Cpu;
use megabatch::{
    Backend, Error, ReduceOp, ReducePlan, ReduceSpec, Reducer, RowReduceOp, SegmentReduceOp,
};
use proptest::prelude::*;
use rand::Rng;

#[test]
fn f64_sums_of_adversarial_inputs_are_within_the_pairwise_bound() {
    let cpu = Cpu::with_threads(2).unwrap();
    let mut rng = common::rng(1);
    let n = 10_000_000;
    // Cancellation: +-large pairs with a small residue; 1e8 dynamic range; plain random.
    let cancel: Vec<f64> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                1e8 + rng.random::<f64>()
            } else {
                -1e8 + 1e-3 * rng.random::<f64>()
            }
        })
        .collect();
    let range: Vec<f64> = (0..n)
        .map(|i| if i % 3 == 0 { 1e4 } else { 1e-4 } * (rng.random::<f64>() - 0.5))
        .collect();
    let plain: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    for (name, x) in [
        ("cancellation", &cancel),
        ("dynamic range", &range),
        ("uniform", &plain),
    ] {
        let exact = exact_sum(x.iter().copied());
        let abs_sum = exact_sum(x.iter().map(|v| v.abs()));
        let got = full::<f64>(&cpu, ReduceOp::Sum, x, None);
        let err = (got - exact).abs();
        assert!(
            err <= bound(n, f64::EPSILON, abs_sum),
            "{name}: error {err:e}, bound {:e}",
            bound(n, f64::EPSILON, abs_sum)
        );
        let dot = full::<f64>(&cpu, ReduceOp::Dot, x, Some(&plain));
        let dot_exact = exact_sum(x.iter().zip(&plain).map(|(a, b)| a * b));
        let dot_abs = exact_sum(x.iter().zip(&plain).map(|(a, b)| (a * b).abs()));
        // Products are rounded once each: one more eps * sum |x y|.
        assert!(
            (dot - dot_exact).abs() <= bound(n, f64::EPSILON, dot_abs) + f64::EPSILON * dot_abs,
            "{name} dot"
        );
    }
}

#[test]
fn f32_and_half_sums_are_within_the_pairwise_bound() {
    let cpu = Cpu::with_threads(3).unwrap();
    let mut rng = common::rng(2);
    let n = 10_000_000;
    let x: Vec<f32> = (0..n)
        .map(|i| if i % 5 == 0 { 1e4 } else { 1e-4 } * (rng.random::<f32>() - 0.3))
        .collect();
    let exact = exact_sum(x.iter().map(|&v| f64::from(v)));
    let abs_sum = exact_sum(x.iter().map(|&v| f64::from(v).abs()));
    let got = f64::from(full::<f32>(&cpu, ReduceOp::Sum, &x, None));
    assert!(
        (got - exact).abs() <= bound(n, f64::from(f32::EPSILON), abs_sum),
        "f32: {got} vs {exact}"
    );

    let h: Vec<f16> = (0..1_000_000)
        .map(|_| f16::from_f32(rng.random::<f32>() * 2.0 - 0.5))
        .collect();
    let exact = exact_sum(h.iter().map(|v| f64::from(v.to_f32())));
    let abs_sum = exact_sum(h.iter().map(|v| f64::from(v.to_f32()).abs()));
    let got = f64::from(full::<f16>(&cpu, ReduceOp::Sum, &h, None));
    assert!(
        (got - exact).abs() <= bound(h.len(), f64::from(f32::EPSILON), abs_sum),
        "f16: {got} vs {exact}"
    );

    let b: Vec<bf16> = h
        .iter()
        .map(|v| bf16::from_f32(v.to_f32() * 1e20))
        .collect();
    let exact = exact_sum(b.iter().map(|v| f64::from(v.to_f32())));
    let abs_sum = exact_sum(b.iter().map(|v| f64::from(v.to_f32()).abs()));
    let got = f64::from(full::<bf16>(&cpu, ReduceOp::Sum, &b, None));
    assert!(
        (got - exact).abs() <= bound(b.len(), f64::from(f32::EPSILON), abs_sum),
        "bf16: {got} vs {exact}"
    );
}

#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    let mut rng = common::rng(3);
    let n = 1_234_567;
    let x: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
    let y: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
    let offsets: Vec<usize> = (0..=100).map(|i| i * i * 123).collect();
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Dot,
        ReduceOp::Max,
        ReduceOp::MaxRelDiff,
    ];
    let run = |threads: usize| {
        let cpu = Cpu::with_threads(threads).unwrap();
        let mut bits: Vec<u32> = ops
            .iter()
            .map(|&op| {
                let two = matches!(op, ReduceOp::Dot | ReduceOp::MaxRelDiff);
                full::<f32>(&cpu, op, &x, two.then_some(&y[..])).to_bits()
            })
            .collect();
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Rows {
                op: RowReduceOp::WeightedMean,
                rows: n / 7,
                cols: 7,
            })
            .unwrap();
        let mut out = vec![0.0f32; 7];
        cpu.reduce_host(&mut plan, &x[..n / 7 * 7], Some(&y[..n / 7]), &mut out)
            .unwrap();
        bits.extend(out.iter().map(|v| v.to_bits()));
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Segments {
                op: SegmentReduceOp::Sum,
                offsets: offsets.clone(),
            })
            .unwrap();
        let mut out = vec![0.0f32; 100];
        cpu.reduce_host(&mut plan, &x[..offsets[100]], None, &mut out)
            .unwrap();
        bits.extend(out.iter().map(|v| v.to_bits()));
        bits
    };
    let one = run(1);
    for threads in [2, 3, 5] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

#[test]
fn nan_propagates_through_every_reduction() {
    let cpu = Cpu::with_threads(2).unwrap();
    check_full_nan_propagation(&cpu, &[1, 7, 100_000]);
    // Rows: only the column holding the NaN; segments: only the segment holding it.
    let mut x = vec![1.0f32; 300 * 3];
    x[250 * 3 + 1] = f32::NAN;
    for op in RowReduceOp::ALL {
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Rows {
                op,
                rows: 300,
                cols: 3,
            })
            .unwrap();
        let w = vec![0.5f32; 300];
        let mut out = vec![0.0f32; 3];
        let y = (op == RowReduceOp::WeightedMean).then_some(&w[..]);
        cpu.reduce_host(&mut plan, &x, y, &mut out).unwrap();
        assert!(
            !out[0].is_nan() && out[1].is_nan() && !out[2].is_nan(),
            "{op:?}: {out:?}"
        );
    }
    for op in SegmentReduceOp::ALL {
        let offsets = vec![0, 400, 800, 900]; // the NaN (index 751) is in segment 1
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Segments { op, offsets })
            .unwrap();
        let mut out = vec![0.0f32; 3];
        let y = (op == SegmentReduceOp::Dot).then_some(&x[..]);
        cpu.reduce_host(&mut plan, &x, y, &mut out).unwrap();
        assert!(
            !out[0].is_nan() && out[1].is_nan() && !out[2].is_nan(),
            "{op:?}: {out:?}"
        );
    }
}

#[test]
fn rows_and_segments_match_naive_f64_references() {
    let cpu = Cpu::with_threads(2).unwrap();
    let mut rng = common::rng(4);
    let (rows, cols) = (100_003, 7);
    let x: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let w: Vec<f64> = (0..rows).map(|_| rng.random::<f64>()).collect();
    for op in RowReduceOp::ALL {
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Rows { op, rows, cols })
            .unwrap();
        let mut out = vec![0.0; cols];
        cpu.reduce_host(
            &mut plan,
            &x,
            (op == RowReduceOp::WeightedMean).then_some(&w[..]),
            &mut out,
        )
        .unwrap();
        let reference = rows_reference(op, &x, rows, cols, &w);
        for (j, &expected) in reference.iter().enumerate() {
            assert!(
                (out[j] - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{op:?} column {j}: {} vs {expected}",
                out[j]
            );
        }
    }
    let offsets = vec![0, 0, 5, 5, 1000, 250_000, 250_001, 400_000];
    for op in SegmentReduceOp::ALL {
        let mut plan = cpu
            .plan_reduce(&ReduceSpec::Segments {
                op,
                offsets: offsets.clone(),
            })
            .unwrap();
        let mut out = vec![0.0; offsets.len() - 1];
        let xs = &x[..400_000];
        cpu.reduce_host(
            &mut plan,
            xs,
            (op == SegmentReduceOp::Dot).then_some(xs),
            &mut out,
        )
        .unwrap();
        let reference = segments_reference(op, xs, xs, &offsets);
        for (s, &expected) in reference.iter().enumerate() {
            let same = (out[s] - expected).abs() <= 1e-9 * expected.abs().max(1.0)
                || (out[s].is_nan() && expected.is_nan())
                || out[s] == expected;
            assert!(same, "{op:?} segment {s}: {} vs {expected}", out[s]);
        }
    }
}

#[test]
fn empty_inputs_give_the_identities() {
    let cpu = Cpu::with_threads(2).unwrap();
    let e: [f64; 0] = [];
    assert_eq!(full::<f64>(&cpu, ReduceOp::Sum, &e, None), 0.0);
    assert!(full::<f64>(&cpu, ReduceOp::Mean, &e, None).is_nan());
    assert_eq!(
        full::<f64>(&cpu, ReduceOp::Max, &e, None),
        f64::NEG_INFINITY
    );
    assert_eq!(full::<f64>(&cpu, ReduceOp::Min, &e, None), f64::INFINITY);
    assert_eq!(full::<f64>(&cpu, ReduceOp::MaxAbs, &e, None), 0.0);
    assert_eq!(full::<f64>(&cpu, ReduceOp::MaxAbsDiff, &e, Some(&e)), 0.0);
    assert_eq!(full::<f64>(&cpu, ReduceOp::MaxRelDiff, &e, Some(&e)), 0.0);
    let mut plan: ReducePlan<Cpu, f64> = cpu
        .plan_reduce(&ReduceSpec::Rows {
            op: RowReduceOp::Sum,
            rows: 0,
            cols: 3,
        })
        .unwrap();
    let mut out = vec![9.0; 3];
    cpu.reduce_host(&mut plan, &[], None, &mut out).unwrap();
    assert_eq!(out, [0.0; 3]);
}

#[test]
fn relative_difference_is_normwise() {
    let cpu = Cpu::with_threads(1).unwrap();
    let x = [1.0f64, 2.0, 3.5];
    let y = [1.0f64, 4.0, 3.0];
    // max |x - y| = 2, max |y| = 4.
    assert_eq!(full::<f64>(&cpu, ReduceOp::MaxRelDiff, &x, Some(&y)), 0.5);
    assert_eq!(full::<f64>(&cpu, ReduceOp::MaxAbsDiff, &x, Some(&y)), 2.0);
}

#[test]
fn bad_shapes_and_offsets_are_typed_errors() {
    let cpu = Cpu::with_threads(1).unwrap();
    let mut plan = cpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Dot,
            len: 4,
        })
        .unwrap();
    let (x, mut out) = ([1.0f32; 4], [0.0f32; 1]);
    assert_eq!(
        cpu.reduce_host(&mut plan, &x[..3], Some(&x), &mut out),
        Err(Error::Shape {
            what: "x",
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        cpu.reduce_host(&mut plan, &x, Some(&x[..2]), &mut out),
        Err(Error::Shape {
            what: "y",
            expected: 4,
            got: 2
        })
    );
    assert!(matches!(
        cpu.reduce_host(&mut plan, &x, None, &mut out),
        Err(Error::PlanMismatch(_))
    ));
    assert_eq!(
        cpu.reduce_host(&mut plan, &x, Some(&x), &mut []),
        Err(Error::Shape {
            what: "out",
            expected: 1,
            got: 0
        })
    );
    assert_eq!(cpu.reduce_host(&mut plan, &x, Some(&x), &mut out), Ok(()));
    assert_eq!(out[0], 4.0);
    let mut sum = cpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: 4,
        })
        .unwrap();
    assert!(matches!(
        cpu.reduce_host(&mut sum, &x, Some(&x), &mut out),
        Err(Error::PlanMismatch(_))
    ));
    let other = Cpu::with_threads(1).unwrap();
    assert!(matches!(
        other.reduce_host(&mut sum, &x, None, &mut out),
        Err(Error::PlanMismatch(_))
    ));

    let bad = ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![0, 5, 3, 9],
    };
    let plan: Result<ReducePlan<Cpu, f32>, Error> = cpu.plan_reduce(&bad);
    assert_eq!(plan.unwrap_err(), Error::BadOffsets { index: 2 });
    let empty = ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![],
    };
    let plan: Result<ReducePlan<Cpu, f32>, Error> = cpu.plan_reduce(&empty);
    assert!(matches!(plan, Err(Error::InvalidArgument(_))));
    let huge = ReduceSpec::Rows {
        op: RowReduceOp::Sum,
        rows: usize::MAX,
        cols: 2,
    };
    let plan: Result<ReducePlan<Cpu, f32>, Error> = cpu.plan_reduce(&huge);
    assert!(matches!(plan, Err(Error::TooLarge(_))));
    let empty: Vec<f32> = Vec::new();
    assert_eq!(
        cpu.read_scalar(&empty),
        Err(Error::Shape {
            what: "out",
            expected: 1,
            got: 0
        })
    );
    assert_eq!(cpu.read_scalar(&vec![2.5f32]), Ok(2.5));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_arrays_sum_within_the_bound(x in prop::collection::vec(-1e6f64..1e6, 0..20_000), threads in 1usize..4) {
        let cpu = Cpu::with_threads(threads).unwrap();
        let got = full::<f64>(&cpu, ReduceOp::Sum, &x, None);
        let exact = exact_sum(x.iter().copied());
        let abs_sum = exact_sum(x.iter().map(|v| v.abs()));
        prop_assert!((got - exact).abs() <= bound(x.len(), f64::EPSILON, abs_sum));
        let max = full::<f64>(&cpu, ReduceOp::Max, &x, None);
        prop_assert_eq!(max, x.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        let min = full::<f64>(&cpu, ReduceOp::Min, &x, None);
        prop_assert_eq!(min, x.iter().copied().fold(f64::INFINITY, f64::min));
    }
}

#[test]
fn auto_runs_reductions_on_its_chosen_backend() {
    use megabatch::{Auto, BackendKind};
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap());
    let spec = ReduceSpec::Full {
        op: ReduceOp::MaxAbsDiff,
        len: 3,
    };
    let decision = auto
        .explain_reduce::<f64>(&spec, megabatch::Residency::Host)
        .unwrap();
    assert_eq!(decision.chosen, BackendKind::Cpu);
    let mut plan = auto.plan_reduce(&spec).unwrap();
    assert_eq!(plan.backend(), decision.chosen);
    let mut out = vec![0.0];
    auto.reduce_host(
        &mut plan,
        &[1.0, 2.0, 3.0],
        Some(&[1.0, 2.5, 3.0]),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], 0.5);
    let bad = ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![3, 1],
    };
    assert_eq!(
        auto.explain_reduce::<f64>(&bad, megabatch::Residency::Host)
            .unwrap_err(),
        Error::BadOffsets { index: 1 }
    );
}
