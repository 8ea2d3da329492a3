//! The CUDA eigh against the same LAPACK ratios as the CPU backend, against the CPU backend's
//! eigenvalues on random batches, and its errors. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.
#![cfg(feature = "cuda")]

mod chunked;
mod classes;
mod dc;
mod dc_large;
mod large_check;

use crate::common;

use common::eigh_check::{
    check_device_info, check_eigh_accuracy, check_non_finite_in_each, check_non_finite_input,
    check_shape_and_plan_errors, plan_matches_cpu, ragged_matches_cpu, uniform_matches_cpu,
};
use common::{cuda_or_skip, MatrixType, ALL_TYPES};
use megabatch::backends::cuda::{
    split_min_batch, CudaEighAlgorithm, EighClass, CHAINS_MIN_BATCH_F64, SPLIT_MIN_ORDER,
};
use megabatch::EighSpec;
use proptest::prelude::*;

const THRESHOLD: f64 = 30.0;

#[test]
fn lapack_types_orders_1_to_64() {
    let Some(cuda) = cuda_or_skip() else { return };
    let orders: Vec<usize> = (1..=64).collect();
    check_eigh_accuracy::<f64, _>(&cuda, &orders, &ALL_TYPES, 11, THRESHOLD);
    check_eigh_accuracy::<f32, _>(&cuda, &orders, &ALL_TYPES, 12, THRESHOLD);
}

#[test]
fn lapack_types_larger_orders_and_global_workspace() {
    let Some(cuda) = cuda_or_skip() else { return };
    let types = [
        MatrixType::RandomDense,
        MatrixType::Clustered,
        MatrixType::WilkinsonPlus,
        MatrixType::NearOverflow,
        MatrixType::NearUnderflow,
    ];
    // Both sides of every block-class boundary (64/65, where the split classes start, and
    // 128/129) and of the largest order
    // whose A fits shared memory (f64 165/166, f32 235/236 on a 227 KB device), above which
    // divide and conquer runs from the global workspace.
    let orders = [65, 96, 128, 129, 160, 165, 166, 200, 235, 236, 256, 300];
    check_eigh_accuracy::<f64, _>(&cuda, &orders, &types, 13, THRESHOLD);
    check_eigh_accuracy::<f32, _>(&cuda, &orders, &types, 14, THRESHOLD);
}

#[test]
fn uniform_batches_match_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[
        (2, 1000),
        (3, 777),
        (4, 4096),
        (12, 1582),
        (16, 513),
        (32, 300),
        (48, 64),
        // Enough matrices for full chains blocks (32 per block on 132 multiprocessors).
        (24, 20000),
    ] {
        uniform_matches_cpu::<f64, _>(&cuda, n, batch, n as u64);
        uniform_matches_cpu::<f32, _>(&cuda, n, batch, 100 + n as u64);
    }
}

#[test]
fn non_finite_input_names_the_first_bad_matrix_and_writes_nothing() {
    let Some(cuda) = cuda_or_skip() else { return };
    check_non_finite_input(&cuda);
}

/// NaN or Inf in one matrix of any size class (warp classes, block classes, Jacobi) names that
/// matrix and leaves every output untouched, in a batch holding all the classes.
#[test]
fn non_finite_input_in_any_class() {
    let Some(cuda) = cuda_or_skip() else { return };
    check_non_finite_in_each(&cuda, &[1, 2, 4, 7, 12, 16, 20, 32, 33, 64, 100, 150, 300]);
}

/// The Jacobi algorithm the size classes replaced, kept for comparison, still agrees with the
/// CPU backend.
#[test]
fn jacobi_algorithm_matches_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[(4, 300), (12, 200), (33, 40)] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = cuda
            .plan_eigh_with::<f64>(&spec, CudaEighAlgorithm::Jacobi)
            .unwrap();
        assert!(plan.classes().iter().all(|(c, _)| *c == EighClass::Jacobi));
        plan_matches_cpu(&cuda, plan, n, batch, 40 + n as u64);
    }
}

/// The warp classes whose QL chain every lane of a group computes (replaced by the chains
/// classes from n = 9, kept for comparison) still agree with the CPU backend.
#[test]
fn group_chains_algorithm_matches_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[(9, 300), (12, 1582), (16, 513), (32, 300)] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = cuda
            .plan_eigh_with::<f64>(&spec, CudaEighAlgorithm::GroupChains)
            .unwrap();
        assert!(plan
            .classes()
            .iter()
            .all(|(c, _)| matches!(c, EighClass::Warp { .. })));
        plan_matches_cpu(&cuda, plan, n, batch, 50 + n as u64);
    }
}

/// Orders 9-32 take the chains classes by default from `CHAINS_MIN_BATCH_F64` f64 matrices (below,
/// and for orders 1-8, the warp classes); `LaneChains` forces them at any batch.
#[test]
fn chains_classes_take_orders_9_to_32_in_large_batches() {
    let Some(cuda) = cuda_or_skip() else { return };
    let class_of = |n, batch, algorithm| {
        cuda.plan_eigh_with::<f64>(&EighSpec::uniform(n, batch), algorithm)
            .unwrap()
            .classes()[0]
            .0
    };
    for n in 1..=33 {
        let large = class_of(n, CHAINS_MIN_BATCH_F64, CudaEighAlgorithm::SizeClasses);
        let small = class_of(n, CHAINS_MIN_BATCH_F64 - 1, CudaEighAlgorithm::SizeClasses);
        let forced = class_of(n, 64, CudaEighAlgorithm::LaneChains);
        match n {
            1..=8 => assert!(matches!(large, EighClass::Warp { .. }), "n {n}: {large:?}"),
            9..=32 => {
                assert!(
                    matches!(large, EighClass::Chains { .. }),
                    "n {n}: {large:?}"
                );
                assert!(matches!(small, EighClass::Warp { .. }), "n {n}: {small:?}");
                assert!(
                    matches!(forced, EighClass::Chains { .. }),
                    "n {n}: {forced:?}"
                );
            }
            _ => assert!(matches!(large, EighClass::Block { .. }), "n {n}: {large:?}"),
        }
    }
}

/// Orders 65 up to the largest whose A fits shared memory take the split classes from
/// `split_min_batch` matrices (else the block class of the same chunks, which 33-64 always
/// take); `FusedBlocks` and `SplitBlocks` force either.
#[test]
fn split_classes_take_orders_from_65_in_large_batches() {
    let Some(cuda) = cuda_or_skip() else { return };
    let class_of = |n, batch, vectors, algorithm| {
        let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
        let classes = cuda
            .plan_eigh_with::<f64>(&spec, algorithm)
            .unwrap()
            .classes();
        assert_eq!(classes.len(), 1, "n {n}: one class per launch group");
        assert_eq!(classes[0].1, batch);
        classes[0].0
    };
    let values = split_min_batch(8, false);
    for n in [33, 64, 65, 128, 129, 165] {
        let large = class_of(n, values, false, CudaEighAlgorithm::SizeClasses);
        let small = class_of(n, values - 1, false, CudaEighAlgorithm::SizeClasses);
        assert!(matches!(small, EighClass::Block { .. }), "n {n}: {small:?}");
        if n >= SPLIT_MIN_ORDER {
            assert!(matches!(large, EighClass::Split { .. }), "n {n}: {large:?}");
        } else {
            assert!(matches!(large, EighClass::Block { .. }), "n {n}: {large:?}");
        }
        let fused = class_of(n, 3, true, CudaEighAlgorithm::FusedBlocks);
        let split = class_of(n, 3, true, CudaEighAlgorithm::SplitBlocks);
        assert!(matches!(fused, EighClass::Block { .. }), "n {n}: {fused:?}");
        assert!(matches!(split, EighClass::Split { .. }), "n {n}: {split:?}");
    }
    let vectors = split_min_batch(8, true);
    let large = class_of(96, vectors, true, CudaEighAlgorithm::SizeClasses);
    let small = class_of(96, vectors - 1, true, CudaEighAlgorithm::SizeClasses);
    assert!(matches!(large, EighClass::Split { .. }), "{large:?}");
    assert!(matches!(small, EighClass::Block { .. }), "{small:?}");
}

/// The split classes and the block classes, each forced, agree with the CPU backend, in
/// batches of several chains warps and partial ones.
#[test]
fn split_and_fused_block_classes_match_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch, algorithm) in &[
        (33, 70, CudaEighAlgorithm::SplitBlocks),
        (64, 33, CudaEighAlgorithm::SplitBlocks),
        (65, 100, CudaEighAlgorithm::SplitBlocks),
        (128, 300, CudaEighAlgorithm::SplitBlocks),
        (160, 65, CudaEighAlgorithm::SplitBlocks),
        (100, 40, CudaEighAlgorithm::FusedBlocks),
        (160, 20, CudaEighAlgorithm::FusedBlocks),
    ] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = cuda.plan_eigh_with::<f64>(&spec, algorithm).unwrap();
        plan_matches_cpu(&cuda, plan, n, batch, 70 + n as u64);
        let plan = cuda.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        plan_matches_cpu(&cuda, plan, n, batch, 80 + n as u64);
    }
}

/// The chains classes forced at small batches (partial blocks of 4-8 matrices) agree with the
/// CPU backend, as the default's full blocks do (`uniform_batches_match_the_cpu_backend`).
#[test]
fn lane_chains_at_small_batches_match_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[(9, 37), (12, 1582), (20, 300), (32, 129)] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = cuda
            .plan_eigh_with::<f32>(&spec, CudaEighAlgorithm::LaneChains)
            .unwrap();
        plan_matches_cpu(&cuda, plan, n, batch, 60 + n as u64);
    }
}

/// Device-buffer eigh reports non-finite input per matrix on the device: in a ragged batch
/// holding every size class, with NaN and -inf matrices among good ones in each, the info
/// array marks exactly the bad matrices, their eigenvalues and eigenvectors are NaN, and the
/// others pass the LAPACK ratios (`tests/common/eigh_check.rs`); for the default classes (warp,
/// block, divide and conquer above 165), and forced: the chains classes, the split classes, Jacobi
/// everywhere. `CudaEighPlan::info` holds the same codes on the device.
#[test]
fn device_info_marks_exactly_the_non_finite_matrices_in_every_class() {
    let Some(cuda) = cuda_or_skip() else { return };
    use megabatch::{Backend, BatchedEigh as _};
    let sizes = [
        3, 3, 8, 12, 20, 20, 32, 40, 64, 70, 100, 130, 170, 200, 5, 0, 1, 24,
    ];
    let bad: Vec<usize> = (0..sizes.len())
        .filter(|i| i % 2 == 0 && sizes[*i] > 0)
        .collect();
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    for (k, algorithm) in [
        CudaEighAlgorithm::SizeClasses,
        CudaEighAlgorithm::LaneChains,
        CudaEighAlgorithm::SplitBlocks,
        CudaEighAlgorithm::Jacobi,
    ]
    .into_iter()
    .enumerate()
    {
        let plan = cuda.plan_eigh_with::<f64>(&spec, algorithm).unwrap();
        check_device_info::<f64, _>(&cuda, plan, &sizes, &bad, 90 + k as u64, THRESHOLD);
        let plan = cuda.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        check_device_info::<f32, _>(&cuda, plan, &sizes, &bad, 95 + k as u64, THRESHOLD);
    }
    // The device array itself, read as any buffer, after a device-buffer call on a plan made
    // for device buffers only.
    let spec = EighSpec::uniform(6, 5);
    let mut plan = cuda
        .plan_eigh_device::<f64>(&spec, CudaEighAlgorithm::SizeClasses)
        .unwrap();
    let mut a = vec![0.5; 6 * 6 * 5];
    a[2 * 36 + 6 * 5] = f64::NAN;
    let mut a_dev = cuda.alloc::<f64>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<f64>(30).unwrap();
    cuda.eigh(&mut plan, &a_dev, &mut w_dev, None).unwrap();
    let mut info = vec![-1i32; 5];
    cuda.download(plan.info(), &mut info).unwrap();
    assert_eq!(info, [0, 0, megabatch::EIGH_NON_FINITE, 0, 0]);
}

#[test]
fn shape_and_plan_errors() {
    let Some(cuda) = cuda_or_skip() else { return };
    check_shape_and_plan_errors(&cuda, &cuda_or_skip().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Ragged batches of mixed orders (several buckets, shared and global memory) give the
    /// CPU backend's eigenvalues.
    #[test]
    fn ragged_batches_match_the_cpu_backend(sizes in prop::collection::vec(0usize..140, 1..40), seed in 0u64..1000) {
        let Some(cuda) = cuda_or_skip() else { return Ok(()) };
        ragged_matches_cpu(&cuda, &sizes, seed).map_err(TestCaseError::fail)?;
    }
}
