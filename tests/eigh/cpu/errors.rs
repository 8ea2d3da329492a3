//! Bad input to the CPU eigh: typed errors, untouched outputs, no panics.

use megabatch::backends::cpu::Cpu;
use megabatch::{Auto, BatchedEigh, EighPlan, EighSpec, Error};

fn spd_batch(n: usize, batch: usize) -> Vec<f64> {
    let mut a = vec![0.0; n * n * batch];
    for b in 0..batch {
        for i in 0..n {
            a[b * n * n + i * n + i] = 2.0 + i as f64;
            if i > 0 {
                a[b * n * n + i * n + i - 1] = -1.0;
            }
        }
    }
    a
}

#[test]
fn non_finite_in_lower_triangle_names_the_matrix_and_writes_nothing() {
    let cpu = Cpu::with_threads(2).unwrap();
    let (n, batch) = (5, 40);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    for (bad, value) in [(0, f64::NAN), (17, f64::INFINITY), (39, f64::NEG_INFINITY)] {
        let mut a = spd_batch(n, batch);
        a[bad * n * n + 4 * n + 2] = value; // row 4, column 2: lower triangle
        let mut w = vec![-7.0; n * batch];
        let mut v = vec![-7.0; n * n * batch];
        let err = cpu
            .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
            .unwrap_err();
        assert_eq!(err, Error::NonFinite { matrix: bad });
        assert!(
            w.iter().chain(&v).all(|&x| x == -7.0),
            "outputs must stay unwritten"
        );
    }
    // Several bad matrices: the first one is named.
    let mut a = spd_batch(n, batch);
    a[30 * n * n] = f64::NAN;
    a[8 * n * n + n + 1] = f64::NAN;
    let mut w = vec![0.0; n * batch];
    let mut v = vec![0.0; n * n * batch];
    assert_eq!(
        cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)),
        Err(Error::NonFinite { matrix: 8 })
    );
}

#[test]
fn non_finite_in_upper_triangle_is_ignored() {
    let cpu = Cpu::with_threads(1).unwrap();
    let spec = EighSpec::uniform(3, 1);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let a = [
        1.0f32,
        f32::NAN,
        f32::INFINITY,
        0.0,
        2.0,
        f32::NAN,
        0.0,
        0.0,
        3.0,
    ];
    let mut w = [0.0f32; 3];
    cpu.eigh_host(&mut plan, &a, &mut w, None).unwrap();
    assert_eq!(w, [1.0, 2.0, 3.0]);
}

#[test]
fn wrong_lengths_are_shape_errors() {
    let cpu = Cpu::with_threads(2).unwrap();
    let spec = EighSpec::ragged(vec![2, 3]).with_vectors(true);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let a = vec![1.0; 13];
    let (mut w, mut v) = (vec![0.0; 5], vec![0.0; 13]);
    assert_eq!(
        cpu.eigh_host(&mut plan, &a[..12], &mut w, Some(&mut v)),
        Err(Error::Shape {
            what: "a",
            expected: 13,
            got: 12
        })
    );
    assert_eq!(
        cpu.eigh_host(&mut plan, &a, &mut w[..4], Some(&mut v)),
        Err(Error::Shape {
            what: "w",
            expected: 5,
            got: 4
        })
    );
    let mut v_long = vec![0.0; 14];
    assert_eq!(
        cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v_long)),
        Err(Error::Shape {
            what: "v",
            expected: 13,
            got: 14
        })
    );
    assert!(cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).is_ok());
}

#[test]
fn calls_that_do_not_fit_the_plan_are_plan_mismatches() {
    let cpu = Cpu::with_threads(1).unwrap();
    let other = Cpu::with_threads(1).unwrap();
    let a = vec![1.0, 0.0, 0.0, 1.0];
    let (mut w, mut v) = (vec![0.0; 2], vec![0.0; 4]);

    let mut with_vectors = cpu
        .plan_eigh(&EighSpec::uniform(2, 1).with_vectors(true))
        .unwrap();
    assert!(matches!(
        cpu.eigh_host(&mut with_vectors, &a, &mut w, None),
        Err(Error::PlanMismatch(_))
    ));
    let mut values_only = cpu.plan_eigh(&EighSpec::uniform(2, 1)).unwrap();
    assert!(matches!(
        cpu.eigh_host(&mut values_only, &a, &mut w, Some(&mut v)),
        Err(Error::PlanMismatch(_))
    ));
    assert!(matches!(
        other.eigh_host(&mut values_only, &a, &mut w, None),
        Err(Error::PlanMismatch(_))
    ));
}

#[test]
fn empty_batches_and_order_zero_succeed() {
    let cpu = Cpu::with_threads(2).unwrap();
    for spec in [
        EighSpec::uniform(0, 10),
        EighSpec::uniform(7, 0),
        EighSpec::ragged(vec![]),
        EighSpec::ragged(vec![0, 0]),
    ] {
        let spec = spec.with_vectors(true);
        let mut plan = cpu.plan_eigh(&spec).unwrap();
        let (mut w, mut v) = (Vec::<f32>::new(), Vec::<f32>::new());
        cpu.eigh_host(&mut plan, &[], &mut w, Some(&mut v)).unwrap();
    }
    // Zero-order matrices mixed into a ragged batch are skipped, the others solved.
    let spec = EighSpec::ragged(vec![0, 1, 0, 2]);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let a = [5.0, 0.0, 0.0, 0.0, -1.0];
    let mut w = [0.0; 3];
    cpu.eigh_host(&mut plan, &a, &mut w, None).unwrap();
    assert_eq!(w, [5.0, -1.0, 0.0]);
}

#[test]
fn overflowing_sizes_are_too_large_not_panics() {
    let cpu = Cpu::with_threads(1).unwrap();
    for spec in [
        EighSpec::uniform(usize::MAX, 1),
        EighSpec::uniform(1 << 33, 1 << 33),
        EighSpec::uniform(1 << 20, 1 << 30),
        EighSpec::ragged(vec![1 << 31, 1 << 31, 1 << 31, 1 << 31]),
    ] {
        let r: Result<EighPlan<Cpu, f64>, Error> = cpu.plan_eigh(&spec);
        assert!(matches!(r, Err(Error::TooLarge(_))), "{spec:?}: {r:?}");
    }
    assert!(matches!(
        Cpu::with_threads(0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn auto_reports_its_choice_and_runs_it() {
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap());
    let spec = EighSpec::ragged(vec![3, 1, 4]).with_vectors(true);
    let decision = auto.explain_eigh::<f64>(&spec, megabatch::Residency::Host);
    assert_eq!(decision.chosen, megabatch::BackendKind::Cpu);
    assert!(
        !decision.predictions.is_empty()
            && decision
                .predictions
                .iter()
                .all(|p| p.seconds.is_some_and(|s| s > 0.0))
    );
    let mut plan = auto.plan_eigh(&spec).unwrap();
    assert_eq!(plan.backend(), decision.chosen);
    let mut a = vec![0.0; 26];
    a[0] = 1.0;
    a[9] = 2.0;
    let (mut w, mut v) = (vec![0.0; 8], vec![0.0; 26]);
    auto.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    assert_eq!(w[..4], [0.0, 0.0, 1.0, 2.0]);
    assert!(matches!(
        auto.eigh_host(&mut plan, &a[1..], &mut w, Some(&mut v)),
        Err(Error::Shape { .. })
    ));
}

/// The per-matrix status: NaN and -inf matrices among good ones (lane groups, single
/// matrices, faer from order 48) are marked EIGH_NON_FINITE in `eigh_info` by the "device"
/// call (host memory on the CPU: it returns `NonFinite`, writes nothing) and the host call
/// alike; the others EIGH_SOLVED; a clean call clears it (`tests/common/eigh_check.rs`).
#[test]
fn eigh_info_marks_exactly_the_non_finite_matrices() {
    let cpu = Cpu::with_threads(2).unwrap();
    let sizes = [4, 4, 4, 4, 5, 1, 12, 12, 12, 12, 3, 50, 7, 0, 33, 2];
    let bad = [1, 5, 8, 11, 15];
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    let plan: EighPlan<Cpu, f64> = cpu.plan_eigh(&spec).unwrap();
    crate::common::eigh_check::check_device_info(&cpu, plan, &sizes, &bad, 3, 30.0);
    let plan: EighPlan<Cpu, f32> = cpu.plan_eigh(&spec).unwrap();
    crate::common::eigh_check::check_device_info(&cpu, plan, &sizes, &bad, 4, 30.0);
    // Before any call, and for another backend instance's plan.
    let mut plan: EighPlan<Cpu, f64> = cpu.plan_eigh(&spec).unwrap();
    let mut info = vec![-1; sizes.len()];
    cpu.eigh_info(&mut plan, &mut info).unwrap();
    assert!(info.iter().all(|&c| c == megabatch::EIGH_SOLVED));
    let other = Cpu::with_threads(1).unwrap();
    let err = other.eigh_info(&mut plan, &mut info).unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
}
