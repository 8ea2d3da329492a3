//! The wgpu eigh against the same LAPACK ratios as the CPU backend, against the CPU backend's
//! eigenvalues on uniform and ragged batches, and its errors. Skips without an adapter unless
//! `MEGABATCH_REQUIRE_WGPU=1` (CI sets it and runs this on Mesa's lavapipe).
#![cfg(feature = "wgpu")]

mod classes;
mod global;
mod subgroup;

use crate::common;

use common::eigh_check::{
    check_device_info, check_eigh_accuracy, check_eigh_accuracy_planned, check_non_finite_in_each,
    check_non_finite_input, check_shape_and_plan_errors, plan_matches_cpu, ragged_matches_cpu,
    uniform_matches_cpu,
};
use common::{wgpu_or_skip, MatrixType, ALL_TYPES};
use megabatch::backends::wgpu::{
    EighGlobalShader, EighSubgroupShader, EighTridiagShader, WgslFloat,
};
use megabatch::backends::wgpu::{
    Wgpu, WgpuEighAlgorithm, LAVAPIPE_EIGH_MAX_ORDER, SUBGROUP_ORDERS, TRIDIAG_MIN_ORDER,
    TRIDIAG_ROWS_ORDERS,
};
use megabatch::{BatchedEigh, EighPlan, EighSpec, Error};
use proptest::prelude::*;

const THRESHOLD: f64 = 30.0;

#[test]
fn lapack_types_orders_1_to_40() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let orders: Vec<usize> = (1..=40).collect();
    check_eigh_accuracy::<f32, _>(&gpu, &orders, &ALL_TYPES, 12, THRESHOLD);
    if gpu.adapter().f64 {
        check_eigh_accuracy::<f64, _>(&gpu, &orders, &ALL_TYPES, 11, THRESHOLD);
    }
}

#[test]
fn lapack_types_larger_orders_and_storage_workspace() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let types = [
        MatrixType::RandomDense,
        MatrixType::Clustered,
        MatrixType::NearOverflow,
        MatrixType::NearUnderflow,
    ];
    // Past the workgroup layouts the size classes run the global layout, with A in the
    // storage workspace; Jacobi forced there keeps its own storage workspace tested (f64 with
    // vectors from order ~40 up no longer fits 32-48 KiB of workgroup memory).
    // lavapipe refuses orders above LAVAPIPE_EIGH_MAX_ORDER (its loop limit).
    let orders: &[usize] = if gpu.adapter().is_llvmpipe() {
        &[64, 96]
    } else {
        &[64, 96, 130, 256]
    };
    check_eigh_accuracy::<f32, _>(&gpu, orders, &types, 14, THRESHOLD);
    let jacobi = |spec: &EighSpec| {
        gpu.plan_eigh_with::<f32>(spec, WgpuEighAlgorithm::Jacobi)
            .unwrap()
    };
    check_eigh_accuracy_planned::<f32, Wgpu>(&gpu, orders, &types, 15, THRESHOLD, &jacobi);
    if gpu.adapter().f64 {
        check_eigh_accuracy::<f64, _>(&gpu, orders, &types, 13, THRESHOLD);
        let jacobi = |spec: &EighSpec| {
            gpu.plan_eigh_with::<f64>(spec, WgpuEighAlgorithm::Jacobi)
                .unwrap()
        };
        check_eigh_accuracy_planned::<f64, Wgpu>(&gpu, orders, &types, 16, THRESHOLD, &jacobi);
    }
    if gpu.adapter().is_llvmpipe() {
        let spec = EighSpec::uniform(LAVAPIPE_EIGH_MAX_ORDER + 1, 1);
        let plan: Result<EighPlan<Wgpu, f32>, Error> = gpu.plan_eigh(&spec);
        let err = plan.unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    }
}

/// The largest order the tridiagonal shader takes on this adapter (with vectors).
fn tridiag_limit(gpu: &Wgpu, dtype: WgslFloat) -> usize {
    let ad = gpu.adapter();
    let fits = |n| {
        EighTridiagShader::for_order(
            dtype,
            n,
            true,
            false,
            ad.max_workgroup_storage as usize,
            ad.max_invocations as usize,
        )
        .is_some()
    };
    (2..=1024).take_while(|&n| fits(n)).last().unwrap_or(1)
}

#[test]
fn class_boundaries_and_the_jacobi_fallback() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let types = [
        MatrixType::RandomDense,
        MatrixType::Clustered,
        MatrixType::NearUnderflow,
    ];
    let cap = if gpu.adapter().is_llvmpipe() {
        LAVAPIPE_EIGH_MAX_ORDER
    } else {
        usize::MAX
    };
    for (dtype, f64_only) in [(WgslFloat::F32, false), (WgslFloat::F64, true)] {
        if f64_only && !gpu.adapter().f64 {
            continue;
        }
        let limit = tridiag_limit(&gpu, dtype);
        let orders: Vec<usize> = [
            TRIDIAG_MIN_ORDER - 1,
            TRIDIAG_MIN_ORDER,
            TRIDIAG_ROWS_ORDERS.start() - 1,
            *TRIDIAG_ROWS_ORDERS.start(),
            *TRIDIAG_ROWS_ORDERS.end(),
            TRIDIAG_ROWS_ORDERS.end() + 1,
            limit,
            limit + 1,
        ]
        .into_iter()
        .filter(|&n| (1..=cap).contains(&n))
        .collect();
        for &n in &orders {
            let spec = EighSpec::uniform(n, 2).with_vectors(true);
            let shaders = if f64_only {
                let plan: EighPlan<Wgpu, f64> = gpu.plan_eigh(&spec).unwrap();
                plan.shaders().to_vec()
            } else {
                let plan: EighPlan<Wgpu, f32> = gpu.plan_eigh(&spec).unwrap();
                plan.shaders().to_vec()
            };
            // On an adapter with subgroups (lavapipe has them) orders 5-64 take that layout
            // wherever its rows per invocation fit the adapter's smallest subgroup.
            let on_subgroups = gpu.adapter().subgroup_range().is_some_and(|s| {
                SUBGROUP_ORDERS.contains(&n)
                    && EighSubgroupShader::for_order(dtype, n, true, s, 1024).is_some()
            });
            // Past the workgroup layouts, the global one while its vectors fit.
            let ad = gpu.adapter();
            let global = EighGlobalShader::for_order(
                dtype,
                n,
                true,
                ad.max_workgroup_storage as usize,
                ad.max_invocations as usize,
            )
            .is_some();
            let want = if on_subgroups {
                "eigh_subgroup/"
            } else if TRIDIAG_ROWS_ORDERS.contains(&n) {
                "eigh_tridiag_rows/"
            } else if (TRIDIAG_MIN_ORDER..=limit).contains(&n) {
                "eigh_tridiag/"
            } else if n >= TRIDIAG_MIN_ORDER && global {
                "eigh_global/"
            } else {
                "eigh_jacobi/"
            };
            assert!(shaders[0].starts_with(want), "{dtype:?} n {n}: {shaders:?}");
        }
        if f64_only {
            check_eigh_accuracy::<f64, _>(&gpu, &orders, &types, 21, THRESHOLD);
        } else {
            check_eigh_accuracy::<f32, _>(&gpu, &orders, &types, 22, THRESHOLD);
        }
    }
    // Each shader at orders the size classes give to another, so every one stays tested.
    for (algorithm, name, n, batch) in [
        (WgpuEighAlgorithm::Jacobi, "eigh_jacobi/", 12, 100),
        (WgpuEighAlgorithm::Jacobi, "eigh_jacobi/", 33, 20),
        (WgpuEighAlgorithm::TridiagWorkgroup, "eigh_tridiag/", 3, 300),
        (
            WgpuEighAlgorithm::TridiagWorkgroup,
            "eigh_tridiag/",
            12,
            100,
        ),
        (WgpuEighAlgorithm::TridiagRows, "eigh_tridiag_rows/", 1, 50),
        (WgpuEighAlgorithm::TridiagRows, "eigh_tridiag_rows/", 2, 300),
        (WgpuEighAlgorithm::TridiagRows, "eigh_tridiag_rows/", 5, 300),
        (
            WgpuEighAlgorithm::TridiagRows,
            "eigh_tridiag_rows/",
            16,
            100,
        ),
        (WgpuEighAlgorithm::TridiagRows, "eigh_tridiag_rows/", 32, 50),
        (WgpuEighAlgorithm::TridiagRows, "eigh_tridiag_rows/", 40, 20),
    ] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = gpu.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        assert!(plan.shaders()[0].starts_with(name), "{:?}", plan.shaders());
        plan_matches_cpu(&gpu, plan, n, batch, 50 + n as u64);
    }
}

#[test]
fn non_finite_input_in_a_matrix_of_each_class() {
    let Some(gpu) = wgpu_or_skip() else { return };
    if gpu.adapter().f64 {
        let limit = tridiag_limit(&gpu, WgslFloat::F64);
        check_non_finite_in_each(
            &gpu,
            &[1, 2, 4, 7, 12, 16, 20, 32, 33, limit, limit + 1, 90],
        );
    }
}

/// Device-buffer eigh reports non-finite input per matrix on the device: in a ragged batch
/// over every shader (Jacobi below order 5, workgroup and private-row tridiagonal, the global
/// layout above the workgroup layout's limit; Jacobi there when forced), NaN and -inf matrices among good ones are marked in the info
/// array, get NaN eigenvalues and eigenvectors, and the others pass the LAPACK ratios
/// (`tests/common/eigh_check.rs`); also with Jacobi and the workgroup layout forced.
/// `WgpuEighPlan::info` holds the same codes on the device.
#[test]
fn device_info_marks_exactly_the_non_finite_matrices_in_every_shader() {
    let Some(gpu) = wgpu_or_skip() else { return };
    use megabatch::Backend;
    let above = (tridiag_limit(&gpu, WgslFloat::F32) + 1).min(LAVAPIPE_EIGH_MAX_ORDER);
    let sizes = [2, 3, 4, 6, 8, 12, 20, 40, 64, 70, above, 1, 0, 16, 5];
    let bad: Vec<usize> = (0..sizes.len())
        .filter(|i| i % 2 == 0 && sizes[*i] > 0)
        .collect();
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    for (k, algorithm) in [
        WgpuEighAlgorithm::SizeClasses,
        WgpuEighAlgorithm::Jacobi,
        WgpuEighAlgorithm::TridiagWorkgroup,
    ]
    .into_iter()
    .enumerate()
    {
        let plan = gpu.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        check_device_info::<f32, _>(&gpu, plan, &sizes, &bad, 60 + k as u64, THRESHOLD);
        if gpu.adapter().f64 {
            let plan = gpu.plan_eigh_with::<f64>(&spec, algorithm).unwrap();
            check_device_info::<f64, _>(&gpu, plan, &sizes, &bad, 65 + k as u64, THRESHOLD);
        }
    }
    let spec = EighSpec::uniform(6, 5);
    let mut plan = gpu
        .plan_eigh_device::<f32>(&spec, WgpuEighAlgorithm::SizeClasses)
        .unwrap();
    let mut a = vec![0.5f32; 6 * 6 * 5];
    a[2 * 36 + 6 * 5] = f32::INFINITY;
    let mut a_dev = gpu.alloc::<f32>(a.len()).unwrap();
    gpu.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = gpu.alloc::<f32>(30).unwrap();
    gpu.eigh(&mut plan, &a_dev, &mut w_dev, None).unwrap();
    let mut info = vec![-1i32; 5];
    gpu.download(plan.info(), &mut info).unwrap();
    assert_eq!(info, [0, 0, megabatch::EIGH_NON_FINITE, 0, 0]);
}

#[test]
fn uniform_batches_match_the_cpu_backend() {
    let Some(gpu) = wgpu_or_skip() else { return };
    for &(n, batch) in &[
        (2, 1000),
        (3, 777),
        (4, 4096),
        (12, 1582),
        (16, 513),
        (32, 100),
    ] {
        uniform_matches_cpu::<f32, _>(&gpu, n, batch, 100 + n as u64);
        if gpu.adapter().f64 {
            uniform_matches_cpu::<f64, _>(&gpu, n, batch, n as u64);
        }
    }
}

#[test]
fn non_finite_input_names_the_first_bad_matrix_and_writes_nothing() {
    let Some(gpu) = wgpu_or_skip() else { return };
    if gpu.adapter().f64 {
        check_non_finite_input(&gpu);
    }
}

#[test]
fn shape_plan_and_unsupported_errors() {
    let Some(gpu) = wgpu_or_skip() else { return };
    check_shape_and_plan_errors(&gpu, &wgpu_or_skip().unwrap());
    if !gpu.adapter().f64 {
        let plan: Result<EighPlan<Wgpu, f64>, Error> = gpu.plan_eigh(&EighSpec::uniform(4, 1));
        let err = plan.unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Ragged batches of mixed orders (several buckets, workgroup and storage memory) give
    /// the CPU backend's eigenvalues.
    #[test]
    fn ragged_batches_match_the_cpu_backend(sizes in prop::collection::vec(0usize..72, 1..24), seed in 0u64..1000) {
        let Some(gpu) = wgpu_or_skip() else { return Ok(()) };
        if gpu.adapter().f64 {
            ragged_matches_cpu(&gpu, &sizes, seed).map_err(TestCaseError::fail)?;
        }
    }
}

/// A ragged batch's bucket runs the fast shader its real orders fit, not Jacobi because its
/// padded order does not: with 48 KiB of workgroup memory f64 A fits the workgroup layout to
/// order 72, which `Auto` is told, while order 70's bucket pads to 80; this lavapipe's 32 KiB
/// fit f32 to 84, whose bucket pads to 96. At each dtype's largest fast order and the one
/// below, beside orders of other shaders, only order 3 runs Jacobi, and accurately.
#[test]
fn ragged_buckets_take_the_fast_shader_their_orders_fit() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let cap = if gpu.adapter().is_llvmpipe() {
        LAVAPIPE_EIGH_MAX_ORDER
    } else {
        200
    };
    let check = |fast: usize, shaders: &[String]| {
        let jacobi = shaders
            .iter()
            .filter(|s| s.starts_with("eigh_jacobi"))
            .count();
        assert_eq!(
            jacobi, 1,
            "only order 3 takes Jacobi (fast max {fast}): {shaders:?}"
        );
    };
    let fast = gpu.eigh_fast_max_order::<f32>().min(cap);
    let sizes = vec![fast, 3, fast - 1, 40];
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let plan: EighPlan<Wgpu, f32> = gpu.plan_eigh(&spec).unwrap();
    check(fast, plan.shaders());
    check_eigh_accuracy::<f32, _>(&gpu, &[fast - 1, fast], &ALL_TYPES, 32, THRESHOLD);
    if !gpu.adapter().f64 {
        return;
    }
    let fast = gpu.eigh_fast_max_order::<f64>().min(cap);
    let sizes = vec![fast, 3, fast - 1, 40];
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let plan: EighPlan<Wgpu, f64> = gpu.plan_eigh(&spec).unwrap();
    check(fast, plan.shaders());
    ragged_matches_cpu(&gpu, &sizes, 7).unwrap();
    check_eigh_accuracy::<f64, _>(&gpu, &[fast - 1, fast], &ALL_TYPES, 31, THRESHOLD);
    if fast >= 70 {
        let spec = EighSpec::ragged(vec![70]).with_vectors(true);
        let plan: EighPlan<Wgpu, f64> = gpu.plan_eigh(&spec).unwrap();
        assert!(
            plan.shaders()[0].starts_with("eigh_tridiag/f64/n70/"),
            "{:?}",
            plan.shaders()
        );
    }
}
