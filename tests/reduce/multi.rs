//! Reductions on `Multi` (CPU backends of one thread each as stand-in devices): whole-array
//! results within the summation bound of the exact value and the same on every call
//! (deterministic combine in device order), NaN anywhere -> NaN, segment results bit for bit
//! one device's, row reductions within the summation bound of exact references (weighted
//! means with parts of zero weight included), device buffers split as the plan says.

use crate::common;

use common::reduce_check::{check_full_nan_propagation, rows_reference, segments_reference};
use common::{bound, exact_sum, rng};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::multi::Multi;
use megabatch::{Backend, Error, ReduceOp, ReduceSpec, Reducer, RowReduceOp, SegmentReduceOp};
use rand::Rng;

fn simulated(devices: usize) -> Multi<Cpu> {
    Multi::new(
        (0..devices)
            .map(|_| Cpu::with_threads(1).unwrap())
            .collect(),
    )
    .unwrap()
}

#[test]
fn whole_array_reductions_match_exact_references_and_repeat_exactly() {
    let mut r = rng(3);
    for devices in [1, 2, 3, 5] {
        let multi = simulated(devices);
        for len in [0, 1, 2, 4, 1000, 100_003] {
            let x: Vec<f64> = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();
            let y: Vec<f64> = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();
            for op in ReduceOp::ALL {
                let spec = ReduceSpec::Full { op, len };
                let mut plan = multi.plan_reduce(&spec).unwrap();
                let yy = op.takes_y().then_some(&y[..]);
                let mut out = [0.0f64];
                multi.reduce_host(&mut plan, &x, yy, &mut out).unwrap();
                let mut again = [0.0f64];
                multi.reduce_host(&mut plan, &x, yy, &mut again).unwrap();
                assert_eq!(out[0].to_bits(), again[0].to_bits(), "{op:?} repeats");
                let abs = x.iter().map(|v| v.abs()).sum::<f64>();
                let diff = x.iter().zip(&y).map(|(a, b)| (a - b).abs());
                let want = match op {
                    ReduceOp::Sum => exact_sum(x.iter().copied()),
                    ReduceOp::Mean => exact_sum(x.iter().copied()) / len as f64,
                    ReduceOp::Min => x.iter().copied().fold(f64::INFINITY, f64::min),
                    ReduceOp::Max => x.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    ReduceOp::MaxAbs => x.iter().fold(0.0f64, |m, v| m.max(v.abs())),
                    ReduceOp::Dot => exact_sum(x.iter().zip(&y).map(|(a, b)| a * b)),
                    ReduceOp::MaxAbsDiff => diff.fold(0.0f64, f64::max),
                    ReduceOp::MaxRelDiff => {
                        diff.fold(0.0f64, f64::max)
                            / y.iter()
                                .fold(0.0f64, |m, v| m.max(v.abs()))
                                .max(f64::MIN_POSITIVE)
                    }
                    other => panic!("no reference for {other:?}"),
                };
                let got = out[0];
                let ok = if len == 0 && op == ReduceOp::Mean {
                    got.is_nan()
                } else {
                    (got - want).abs() <= bound(len, f64::EPSILON, abs.max(1.0)) || got == want
                };
                assert!(ok, "{devices} devices, len {len}, {op:?}: {got} vs {want}");
            }
        }
    }
    check_full_nan_propagation(&simulated(3), &[1, 7, 1000]);
}

#[test]
fn device_buffers_split_as_the_plan_and_segments_equal_one_device() {
    let multi = simulated(3);
    let one = Cpu::with_threads(1).unwrap();
    let mut r = rng(4);
    let len = 6000;
    let x: Vec<f64> = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();
    let y: Vec<f64> = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();

    // Whole array on device buffers (alloc's even split is the plan's).
    let spec = ReduceSpec::Full {
        op: ReduceOp::MaxRelDiff,
        len,
    };
    let mut plan = multi.plan_reduce(&spec).unwrap();
    let (mut xd, mut yd) = (
        multi.alloc::<f64>(len).unwrap(),
        multi.alloc::<f64>(len).unwrap(),
    );
    multi.upload(&x, &mut xd).unwrap();
    multi.upload(&y, &mut yd).unwrap();
    let mut out = multi.alloc::<f64>(1).unwrap();
    multi.reduce(&mut plan, &xd, Some(&yd), &mut out).unwrap();
    let mut host = [0.0];
    multi
        .reduce_host(&mut plan, &x, Some(&y), &mut host)
        .unwrap();
    assert_eq!(multi.read_scalar(&out).unwrap(), host[0]);

    // Segments of ragged lengths (some empty): bit for bit one device's, host and device.
    let mut offsets = vec![0usize];
    for s in 0..400 {
        offsets.push(offsets[s] + (s * 7919) % 29);
    }
    let total = *offsets.last().unwrap();
    for op in SegmentReduceOp::ALL {
        let spec = ReduceSpec::Segments {
            op,
            offsets: offsets.clone(),
        };
        let yy = op.takes_y().then_some(&y[..total]);
        let mut one_plan = one.plan_reduce(&spec).unwrap();
        let mut want = vec![0.0f64; 400];
        one.reduce_host(&mut one_plan, &x[..total], yy, &mut want)
            .unwrap();
        let mut plan = multi.plan_reduce(&spec).unwrap();
        let mut got = vec![0.0f64; 400];
        multi
            .reduce_host(&mut plan, &x[..total], yy, &mut got)
            .unwrap();
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{op:?} host"
        );
        let reference = segments_reference(op, &x[..total], &y[..total], &offsets);
        for (g, w) in got.iter().zip(&reference) {
            assert!(
                g == w || (g - w).abs() <= 1e-12 || (g.is_nan() && w.is_nan()),
                "{op:?}: {g} vs {w}"
            );
        }

        let mut xd = multi.alloc_parts::<f64>(plan.x_parts().to_vec()).unwrap();
        multi.upload(&x[..total], &mut xd).unwrap();
        let yd = match yy {
            Some(y) => {
                let mut b = multi.alloc_parts::<f64>(plan.x_parts().to_vec()).unwrap();
                multi.upload(y, &mut b).unwrap();
                Some(b)
            }
            None => None,
        };
        let mut od = multi.alloc_parts::<f64>(plan.out_parts().to_vec()).unwrap();
        multi.reduce(&mut plan, &xd, yd.as_ref(), &mut od).unwrap();
        let mut device = vec![0.0f64; 400];
        multi.download(&od, &mut device).unwrap();
        assert!(
            device
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{op:?} device"
        );

        // An evenly split output is not this plan's split: refused.
        let mut even = multi.alloc::<f64>(400).unwrap();
        if even
            .parts()
            .iter()
            .map(|(r, _)| r.clone())
            .ne(plan.out_parts().iter().cloned())
        {
            let err = multi
                .reduce(&mut plan, &xd, yd.as_ref(), &mut even)
                .unwrap_err();
            assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
        }
    }
}

#[test]
fn row_reductions_combine_column_partials_host_and_device() {
    let mut r = rng(8);
    let (rows, cols) = (1001, 7);
    let x: Vec<f64> = (0..rows * cols)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    // Probability-like weights, with the last 400 rows weighted 0 (a whole part on 5
    // devices), so a part's weight sum can be 0.
    let w: Vec<f64> = (0..rows)
        .map(|i| {
            if i >= 601 {
                0.0
            } else {
                r.random_range(0.0..1.0)
            }
        })
        .collect();
    for devices in [1, 2, 5] {
        let multi = simulated(devices);
        for op in RowReduceOp::ALL {
            let spec = ReduceSpec::Rows { op, rows, cols };
            let yy = op.takes_y().then_some(&w[..]);
            let mut plan = multi.plan_reduce(&spec).unwrap();
            let mut host = vec![0.0f64; cols];
            multi.reduce_host(&mut plan, &x, yy, &mut host).unwrap();
            let want = rows_reference(op, &x, rows, cols, &w);
            for c in 0..cols {
                let abs = (0..rows).map(|i| x[i * cols + c].abs()).sum::<f64>();
                assert!(
                    (host[c] - want[c]).abs() <= bound(rows, f64::EPSILON, abs.max(1.0)),
                    "{devices} devices {op:?} col {c}: {} vs {}",
                    host[c],
                    want[c]
                );
            }
            // The device call: x by the plan's rows, weights by its y parts, out any split.
            let mut xd = multi.alloc_parts::<f64>(plan.x_parts().to_vec()).unwrap();
            multi.upload(&x, &mut xd).unwrap();
            let yd = yy.map(|w| {
                let mut b = multi.alloc_parts::<f64>(plan.y_parts()).unwrap();
                multi.upload(w, &mut b).unwrap();
                b
            });
            let mut od = multi.alloc::<f64>(cols).unwrap();
            multi.reduce(&mut plan, &xd, yd.as_ref(), &mut od).unwrap();
            let mut device = vec![0.0f64; cols];
            multi.download(&od, &mut device).unwrap();
            assert_eq!(device, host, "{devices} devices {op:?}: device call");
        }
    }
    // A NaN in a zero-weight row still makes its column's weighted mean NaN, as on one device.
    let multi = simulated(5);
    let mut x_nan = x.clone();
    x_nan[1000 * cols + 3] = f64::NAN;
    let spec = ReduceSpec::Rows {
        op: RowReduceOp::WeightedMean,
        rows,
        cols,
    };
    let mut plan = multi.plan_reduce(&spec).unwrap();
    let mut out = vec![0.0f64; cols];
    multi
        .reduce_host(&mut plan, &x_nan, Some(&w), &mut out)
        .unwrap();
    assert!(
        out[3].is_nan() && out.iter().filter(|v| v.is_nan()).count() == 1,
        "{out:?}"
    );
}
