//! The divide-and-conquer class (`kernels/eigh/dc.cu`) on a device: LAPACK dsyt21 ratios on
//! every LAPACK matrix type (clustered and graded spectra, where deflation decides) at the
//! class's first orders and at the old limit of 512 (511-513), f32 and f64, vectors and values
//! only; forced from order 33, with the per-order vectors in shared memory and in the slots
//! (`DivideConquerGlobal`); against the CPU backend's eigenvalues; NaN in single matrices of a
//! ragged batch spanning every class with n = 0 and 1. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`. Orders 1024-4096: `dc_large.rs`.

use crate::common;

use common::eigh_check::{check_device_info, check_eigh_accuracy_planned, plan_matches_cpu};
use common::{cuda_or_skip, ALL_TYPES};
use megabatch::backends::cuda::{Cuda, CudaEighAlgorithm, EighClass, DC_MAX_ORDER};

/// The class's limit before issue 26's step 3 (Jacobi above): the orders around it.
const OLD_TOP: usize = 512;
use megabatch::{EighSpec, Real};

const THRESHOLD: f64 = 30.0;

/// Checks every type at `orders` with plans of `algorithm`, after asserting that each order
/// in `dc_orders` runs on the divide-and-conquer class.
fn check<T: Real>(
    cuda: &Cuda,
    algorithm: CudaEighAlgorithm,
    orders: &[usize],
    dc_orders: &[usize],
    seed: u64,
) {
    for &n in dc_orders {
        let spec = EighSpec::uniform(n, 3).with_vectors(true);
        let classes = cuda
            .plan_eigh_with::<T>(&spec, algorithm)
            .unwrap()
            .classes();
        assert_eq!(
            classes,
            [(EighClass::DivideConquer, 3)],
            "{} n {n} {algorithm:?}",
            T::DTYPE
        );
    }
    check_eigh_accuracy_planned::<T, Cuda>(cuda, orders, &ALL_TYPES, seed, THRESHOLD, &|spec| {
        cuda.plan_eigh_with::<T>(spec, algorithm).unwrap()
    });
}

/// The default classes at the boundaries of divide and conquer: below it the block classes'
/// last order (A fits shared memory: f64 165, f32 235 on a 227 KiB device), its first, and the
/// old limit (512, Jacobi above until the class went to [`DC_MAX_ORDER`]).
#[test]
fn dc_boundaries_pass_the_lapack_ratios_on_every_type() {
    let Some(cuda) = cuda_or_skip() else { return };
    assert_eq!(DC_MAX_ORDER, 4096);
    let f64_first = cuda.eigh_fast_max_order::<f64>() + 1;
    let f32_first = cuda.eigh_fast_max_order::<f32>() + 1;
    let top = OLD_TOP;
    check::<f64>(
        &cuda,
        CudaEighAlgorithm::SizeClasses,
        &[
            f64_first - 1,
            f64_first,
            f64_first + 1,
            top - 1,
            top,
            top + 1,
        ],
        &[f64_first, f64_first + 1, top - 1, top, top + 1],
        21,
    );
    check::<f32>(
        &cuda,
        CudaEighAlgorithm::SizeClasses,
        &[
            f32_first - 1,
            f32_first,
            f32_first + 1,
            top - 1,
            top,
            top + 1,
        ],
        &[f32_first, f32_first + 1, top - 1, top, top + 1],
        22,
    );
}

/// Forced from order 33 (`CudaEighAlgorithm::DivideConquer`): its smallest orders (one leaf
/// at 32 runs the warp classes, two leaves from 33), a leaf boundary (64/65) and powers of two.
#[test]
fn dc_forced_from_33_passes_the_lapack_ratios_on_every_type() {
    let Some(cuda) = cuda_or_skip() else { return };
    let orders = [32, 33, 34, 63, 64, 65, 96, 127, 128, 129, 256];
    let dc = &orders[1..];
    check::<f64>(&cuda, CudaEighAlgorithm::DivideConquer, &orders, dc, 23);
    check::<f32>(&cuda, CudaEighAlgorithm::DivideConquer, &orders, dc, 24);
}

/// The layout of the large orders (every per-order vector of the reduce and solve steps in the
/// workspace's slots) forced at small ones (`CudaEighAlgorithm::DivideConquerGlobal`).
#[test]
fn dc_global_layout_passes_the_lapack_ratios_on_every_type() {
    let Some(cuda) = cuda_or_skip() else { return };
    let orders = [33, 65, 128, 200, 300];
    let global = CudaEighAlgorithm::DivideConquerGlobal;
    check::<f64>(&cuda, global, &orders, &orders, 25);
    check::<f32>(&cuda, global, &orders, &orders, 26);
}

/// Uniform batches (several waves of blocks, and full multiprocessors) agree with the CPU
/// backend's eigenvalues.
#[test]
fn dc_uniform_batches_match_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch, algorithm) in &[
        (96, 700, CudaEighAlgorithm::DivideConquer),
        (200, 300, CudaEighAlgorithm::SizeClasses),
        (384, 40, CudaEighAlgorithm::SizeClasses),
        (512, 20, CudaEighAlgorithm::SizeClasses),
    ] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = cuda.plan_eigh_with::<f64>(&spec, algorithm).unwrap();
        plan_matches_cpu(&cuda, plan, n, batch, 30 + n as u64);
        let plan = cuda.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        plan_matches_cpu(&cuda, plan, n, batch, 31 + n as u64);
    }
}

/// NaN or -inf in single matrices of a ragged batch spanning every class (n = 0 and 1, warp,
/// block, divide and conquer to 513): exactly those matrices get `NonFinite` in the info array
/// and NaN outputs, the others pass the LAPACK ratios; the default classes and divide and
/// conquer forced from 33.
#[test]
fn dc_non_finite_matrices_are_marked_alone_in_a_batch_of_every_class() {
    let Some(cuda) = cuda_or_skip() else { return };
    let sizes = [
        0, 1, 2, 12, 32, 33, 64, 100, 166, 170, 236, 240, 300, 1, 512, 0, 513, 200, 170,
    ];
    let bad: Vec<usize> = [4, 6, 9, 11, 12, 14, 17]
        .into_iter()
        .filter(|&i| sizes[i] > 0)
        .collect();
    for (k, algorithm) in [
        CudaEighAlgorithm::SizeClasses,
        CudaEighAlgorithm::DivideConquer,
    ]
    .into_iter()
    .enumerate()
    {
        let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
        let plan = cuda.plan_eigh_with::<f64>(&spec, algorithm).unwrap();
        assert!(plan
            .classes()
            .iter()
            .any(|(c, _)| *c == EighClass::DivideConquer));
        check_device_info::<f64, _>(&cuda, plan, &sizes, &bad, 40 + k as u64, THRESHOLD);
        let plan = cuda.plan_eigh_with::<f32>(&spec, algorithm).unwrap();
        check_device_info::<f32, _>(&cuda, plan, &sizes, &bad, 45 + k as u64, THRESHOLD);
    }
}

/// A ragged batch spanning every class with n = 0 and 1 (each order's class, divide and
/// conquer among them) gives the CPU backend's eigenvalues.
#[test]
fn dc_ragged_batch_of_every_class_matches_the_cpu_backend() {
    let Some(cuda) = cuda_or_skip() else { return };
    let sizes = [
        0, 1, 2, 5, 12, 20, 32, 33, 64, 65, 128, 165, 166, 200, 236, 300, 400, 512, 1, 0, 513,
    ];
    common::eigh_check::ragged_matches_cpu(&cuda, &sizes, 50).unwrap();
}
