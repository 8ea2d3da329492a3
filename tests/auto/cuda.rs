//! `Auto` with a CUDA device: device-resident buffers, plans on either backend reading them,
//! the residency-aware choice, and results equal to the CPU's.
#![cfg(feature = "cuda")]

use crate::common;

use megabatch::backends::cpu::Cpu;
use megabatch::{
    Auto, Backend, BackendKind, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer, Residency,
};

fn auto_with_cuda() -> Option<Auto> {
    let cuda = common::cuda_or_skip()?;
    Some(Auto::with_cuda(Cpu::with_threads(2).unwrap(), cuda))
}

/// `batch` symmetric matrices with entries in [-1, 1].
fn matrices(n: usize, batch: usize) -> Vec<f64> {
    (0..n * n * batch)
        .map(|i| ((i * 7919 % 1013) as f64 / 506.5) - 1.0)
        .collect()
}

#[test]
fn large_batches_on_device_data_go_to_the_gpu_and_single_host_matrices_stay_on_the_cpu() {
    let Some(auto) = auto_with_cuda() else { return };
    assert_eq!(auto.backends(), vec![BackendKind::Cpu, BackendKind::Cuda]);
    let big = EighSpec::uniform(8, 100_000).with_vectors(true);
    let on_gpu = Residency::Device(BackendKind::Cuda);
    assert_eq!(
        auto.explain_eigh::<f64>(&big, on_gpu).chosen,
        BackendKind::Cuda
    );
    let one = EighSpec::uniform(8, 1).with_vectors(true);
    assert_eq!(
        auto.explain_eigh::<f64>(&one, Residency::Host).chosen,
        BackendKind::Cpu
    );
    // Orders past the CUDA kernel's limit are never sent there.
    let huge = EighSpec::uniform(megabatch::backends::cuda::CUDA_EIGH_MAX_ORDER + 1, 1);
    let d = auto.explain_eigh::<f64>(&huge, on_gpu);
    assert_eq!(d.chosen, BackendKind::Cpu);
    assert!(d.predictions[1].seconds.is_none());
}

/// Orders above CUDA's measured size classes (divide and conquer, not yet measured; before it
/// the Jacobi fallback, 0.11-0.13x the CPU on the H200 at n = 256) stay on the CPU, per dtype;
/// the largest measured class order still goes to the GPU.
#[test]
fn orders_above_the_cuda_size_classes_stay_on_the_cpu() {
    let Some(auto) = auto_with_cuda() else { return };
    let cuda = common::cuda_or_skip().unwrap();
    let on_gpu = Residency::Device(BackendKind::Cuda);
    let f64_max = cuda.eigh_fast_max_order::<f64>();
    let f32_max = cuda.eigh_fast_max_order::<f32>();
    assert!(f64_max >= 64 && f32_max >= f64_max, "{f64_max} {f32_max}");
    let spec = |n| EighSpec::uniform(n, 16_384).with_vectors(true);
    assert_eq!(
        auto.explain_eigh::<f64>(&spec(f64_max), on_gpu).chosen,
        BackendKind::Cuda
    );
    let above = auto.explain_eigh::<f64>(&spec(f64_max + 1), on_gpu);
    assert_eq!(above.chosen, BackendKind::Cpu);
    assert!(above.predictions[1].seconds.is_none());
    assert_eq!(
        auto.explain_eigh::<f32>(&spec(f32_max + 1), on_gpu).chosen,
        BackendKind::Cpu
    );
}

#[test]
fn device_buffers_work_with_plans_on_either_backend() {
    let Some(auto) = auto_with_cuda() else { return };
    let (n, batch) = (6, 50);
    let a_host = matrices(n, batch);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut a = auto
        .alloc_on::<f64>(BackendKind::Cuda, a_host.len())
        .unwrap();
    auto.upload(&a_host, &mut a).unwrap();

    let mut results = Vec::new();
    for kind in [BackendKind::Cpu, BackendKind::Cuda] {
        let forced = Auto::with_cuda(
            Cpu::with_threads(2).unwrap(),
            megabatch::backends::cuda::Cuda::new().unwrap(),
        )
        .force(kind)
        .unwrap();
        let mut plan = forced
            .plan_eigh_for::<f64>(&spec, Residency::Device(BackendKind::Cuda))
            .unwrap();
        assert_eq!(plan.backend(), kind);
        let mut w = forced
            .alloc_on::<f64>(BackendKind::Cuda, n * batch)
            .unwrap();
        let mut v = forced
            .alloc_on::<f64>(BackendKind::Cuda, n * n * batch)
            .unwrap();
        forced.eigh(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
        let mut w_host = vec![0.0; n * batch];
        forced.download(&w, &mut w_host).unwrap();
        results.push(w_host);
    }
    // The CPU plan read the device data through its staging; both agree to rounding.
    for (c, g) in results[0].iter().zip(&results[1]) {
        assert!((c - g).abs() <= 1e-12 * (1.0 + c.abs()), "{c} vs {g}");
    }
    let cpu = Cpu::with_threads(1).unwrap();
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let (mut w_ref, mut v_ref) = (vec![0.0; n * batch], vec![0.0; n * n * batch]);
    cpu.eigh_host(&mut plan, &a_host, &mut w_ref, Some(&mut v_ref))
        .unwrap();
    assert_eq!(
        results[0], w_ref,
        "the CPU plan must see exactly the uploaded data"
    );
}

#[test]
fn device_resident_loop_reads_one_scalar_per_iteration() {
    let Some(auto) = auto_with_cuda() else { return };
    let auto = auto.force(BackendKind::Cuda).unwrap();
    let (n, batch) = (4, 1000);
    let on_gpu = Residency::Device(BackendKind::Cuda);
    let spec = EighSpec::uniform(n, batch);
    let mut eigh = auto.plan_eigh_for::<f64>(&spec, on_gpu).unwrap();
    let sum = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: n * batch,
    };
    let mut reduce = auto.plan_reduce_for::<f64>(&sum, on_gpu).unwrap();
    let a_host = matrices(n, batch);
    let mut a = auto
        .alloc_on::<f64>(BackendKind::Cuda, a_host.len())
        .unwrap();
    auto.upload(&a_host, &mut a).unwrap();
    let mut w = auto.alloc_on::<f64>(BackendKind::Cuda, n * batch).unwrap();
    let mut out = auto.alloc_on::<f64>(BackendKind::Cuda, 1).unwrap();
    auto.eigh(&mut eigh, &a, &mut w, None).unwrap();
    auto.reduce(&mut reduce, &w, None, &mut out).unwrap();
    let total = auto.read_scalar(&out).unwrap();
    // The eigenvalues of each matrix sum to its trace.
    let trace: f64 = a_host
        .chunks(n * n)
        .map(|m| (0..n).map(|i| m[i * n + i]).sum::<f64>())
        .sum();
    assert!(
        (total - trace).abs() < 1e-9 * (1.0 + trace.abs()),
        "{total} vs {trace}"
    );
    // Buffers of two places in one GPU call go through host staging, with the same values;
    // the plan was made for CUDA buffers, so that staging is made first.
    let mut w_host = auto.alloc::<f64>(n * batch).unwrap();
    let err = auto.eigh(&mut eigh, &a, &mut w_host, None).unwrap_err();
    assert!(matches!(err, megabatch::Error::PlanMismatch(_)), "{err:?}");
    auto.prepare_eigh_staging(&mut eigh).unwrap();
    auto.eigh(&mut eigh, &a, &mut w_host, None).unwrap();
    let mut w_device = vec![0.0; n * batch];
    auto.download(&w, &mut w_device).unwrap();
    assert_eq!(w_host.as_host().unwrap(), &w_device[..]);
}

#[test]
fn calibration_with_cuda_measures_both_backends() {
    let Some(mut auto) = auto_with_cuda() else {
        return;
    };
    let model = auto
        .calibrate(megabatch::cost::CalibrationOptions { quick: true })
        .unwrap()
        .clone();
    let cuda = model.profile(BackendKind::Cuda).expect("cuda profile");
    assert!(cuda.transfer_bytes_per_s.is_some_and(|r| r > 1e8));
    for profile in cuda.eigh.values() {
        assert!(profile
            .per_matrix_resident_s
            .iter()
            .zip(&profile.single_s)
            .all(|(p, s)| *p > 0.0 && *s > 0.0));
    }
}

/// `eigh_info` marks the bad matrix whichever path an `Auto` call takes (`auto.rs`).
#[test]
fn eigh_info_reports_the_bad_matrix_on_every_path() {
    let Some(auto) = auto_with_cuda() else { return };
    crate::info_paths::eigh_info_reports_the_bad_matrix_on_every_path(
        &auto,
        BackendKind::Cuda,
        f64::INFINITY,
    );
}
