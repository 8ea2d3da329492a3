//! Eigh on `Multi`: one batch over several devices, here CPU backends of one thread each
//! standing in for GPUs (no second GPU is lent; the same code drives `Multi<Cuda>`). The
//! split must not change any result: every matrix is solved by the same code as on one
//! device, so outputs are compared bit for bit with a one-device run, besides LAPACK's dsyt21
//! ratios on its matrix types.

use crate::common;

use common::eigh_check::check_eigh_accuracy;
use common::{make, rng, MatrixType, ALL_TYPES};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::multi::Multi;
use megabatch::{Backend, BatchedEigh, EighSpec, Error, EIGH_NON_FINITE, EIGH_SOLVED};

/// `devices` simulated devices: CPU backends of one thread each.
fn simulated(devices: usize) -> Multi<Cpu> {
    Multi::new(
        (0..devices)
            .map(|_| Cpu::with_threads(1).unwrap())
            .collect(),
    )
    .unwrap()
}

/// A ragged batch of random-spectrum matrices, orders 0-40 scrambled (n = 0 and 1 included).
fn batch(count: usize, seed: u64) -> (Vec<usize>, Vec<f64>) {
    let sizes: Vec<usize> = (0..count).map(|i| (i * 37 + 11) % 41).collect();
    let mut r = rng(seed);
    let mut a = Vec::new();
    for &n in &sizes {
        a.extend(make::<f64>(MatrixType::RandomSpectrum, n, &mut r));
    }
    (sizes, a)
}

#[test]
fn accuracy_on_lapack_types_across_three_devices() {
    let multi = simulated(3);
    let orders: Vec<usize> = (1..=24).collect();
    check_eigh_accuracy::<f64, _>(&multi, &orders, &ALL_TYPES, 11, 30.0);
    check_eigh_accuracy::<f32, _>(&multi, &orders, &ALL_TYPES, 12, 30.0);
}

#[test]
fn host_and_device_calls_equal_one_device_bit_for_bit() {
    let (sizes, a) = batch(300, 5);
    let spec = EighSpec::ragged(sizes).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let one = Cpu::with_threads(1).unwrap();
    let mut plan = one.plan_eigh(&spec).unwrap();
    let (mut w1, mut v1) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
    one.eigh_host(&mut plan, &a, &mut w1, Some(&mut v1))
        .unwrap();

    for devices in [2, 3, 7] {
        let multi = simulated(devices);
        let mut plan = multi.plan_eigh(&spec).unwrap();
        assert_eq!(plan.parts().len(), devices);
        let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
        multi
            .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
            .unwrap();
        assert!(w == w1 && v == v1, "{devices} devices: host call differs");

        // Device buffers split as the plan splits the batch.
        let by_a = || plan.parts().iter().map(|p| p.a.clone()).collect::<Vec<_>>();
        let by_w = plan.parts().iter().map(|p| p.w.clone()).collect::<Vec<_>>();
        let mut a_dev = multi.alloc_parts::<f64>(by_a()).unwrap();
        let mut w_dev = multi.alloc_parts::<f64>(by_w).unwrap();
        let mut v_dev = multi.alloc_parts::<f64>(by_a()).unwrap();
        multi.upload(&a, &mut a_dev).unwrap();
        multi
            .eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
            .unwrap();
        let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
        multi.download(&w_dev, &mut w).unwrap();
        multi.download(&v_dev, &mut v).unwrap();
        assert!(w == w1 && v == v1, "{devices} devices: device call differs");

        // Buffers split another way (here evenly by element count) are refused, not misread.
        let mut even = multi.alloc::<f64>(offsets.w_len()).unwrap();
        assert!(even
            .parts()
            .iter()
            .map(|(r, _)| r.clone())
            .ne(plan.parts().iter().map(|p| p.w.clone())));
        let err = multi
            .eigh(&mut plan, &a_dev, &mut even, Some(&mut v_dev))
            .unwrap_err();
        assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    }
}

#[test]
fn a_bad_matrix_is_named_by_its_index_in_the_whole_batch() {
    let (sizes, mut a) = batch(120, 6);
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let multi = simulated(3);
    let mut plan = multi.plan_eigh(&spec).unwrap();
    // A matrix of the last part, order >= 2, NaN in its lower triangle.
    let last = plan.parts()[2].matrices.clone();
    let bad = last.clone().find(|&i| sizes[i] >= 2).unwrap();
    let s = offsets.slot(bad);
    a[s.a_start + s.n] = f64::NAN; // row 1, column 0
    let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
    let err = multi
        .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { matrix } if matrix == bad),
        "{err:?}"
    );
    let mut info = vec![-1; sizes.len()];
    multi.eigh_info(&mut plan, &mut info).unwrap();
    assert_eq!(info[bad], EIGH_NON_FINITE);
    // The other parts ran and report solved.
    assert!(plan.parts()[0]
        .matrices
        .clone()
        .all(|i| info[i] == EIGH_SOLVED));
}

#[test]
fn plans_of_another_multi_and_empty_device_lists_are_errors() {
    assert!(matches!(
        Multi::<Cpu>::new(Vec::new()).unwrap_err(),
        Error::InvalidArgument(_)
    ));
    let (m1, m2) = (simulated(2), simulated(2));
    let spec = EighSpec::uniform(4, 3);
    let mut plan = m1.plan_eigh(&spec).unwrap();
    let mut w = vec![0.0f64; 12];
    let err = m2
        .eigh_host(&mut plan, &[0.0; 48], &mut w, None)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    // More devices than matrices: the extra parts are empty and the call still runs.
    let many = simulated(5);
    let mut plan = many.plan_eigh(&spec).unwrap();
    let mut a = vec![0.0f64; 48];
    for m in 0..3 {
        for d in 0..4 {
            a[m * 16 + d * 5] = (d + m) as f64;
        }
    }
    many.eigh_host(&mut plan, &a, &mut w, None).unwrap();
    let want: Vec<f64> = (0..3)
        .flat_map(|m| (0..4).map(move |d| (d + m) as f64))
        .collect();
    assert_eq!(w, want);
}
