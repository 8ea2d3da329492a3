//! `PlanFootprint` on the wgpu backend (lavapipe in CI) and on `Auto` over it: device bytes
//! cover every buffer the spec implies, and the host path's buffers are counted exactly: made
//! with the trait's plans, absent from `plan_*_device`'s until `prepare_*_host`. Skips without
//! an adapter unless `MEGABATCH_REQUIRE_WGPU=1`.

use crate::common;

use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::{Wgpu, WgpuEighAlgorithm};
use megabatch::{
    AttentionPlan, AttentionSpec, Auto, BackendKind, BatchedEigh, BlockMask, EighPlan, EighSpec,
    Error, PlanFootprint, ReduceOp, ReducePlan, ReduceSpec, Reducer, Residency, SparseAttention,
};

/// A wgpu buffer's size for `bytes`: at least 4, rounded up to 4.
fn buffer(bytes: usize) -> usize {
    bytes.max(4).next_multiple_of(4)
}

#[test]
fn eigh_device_bytes_cover_tables_status_and_the_host_path_when_made() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let sizes = vec![3, 0, 17, 5, 17, 1];
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let device = |spec: &EighSpec| {
        gpu.plan_eigh_device::<f32>(spec, WgpuEighAlgorithm::SizeClasses)
            .unwrap()
    };
    let mut plan = device(&spec);
    assert!(!plan.has_host_staging());
    // Tables: (a_start, w_start, n) per matrix and the index of each non-empty one (u32);
    // status: two u32; info: one i32 per matrix.
    let tables = 4 * (3 * sizes.len() + 5);
    let info = buffer(4 * sizes.len());
    let before = plan.device_bytes();
    assert!(before >= buffer(tables) + 8 + info, "{before}");
    // The read-back of eigh_info.
    assert_eq!(plan.scratch_bytes(), info);

    gpu.prepare_eigh_host(&mut plan).unwrap();
    assert!(plan.has_host_staging());
    let a_len: usize = sizes.iter().map(|n| n * n).sum();
    let w_len: usize = sizes.iter().sum();
    // Device copies of A, W and V.
    assert_eq!(
        plan.device_bytes() - before,
        2 * buffer(4 * a_len) + buffer(4 * w_len)
    );
    // Read-back: the status word, W (from byte 8), V (8-byte aligned after W).
    let v_at = (8 + 4 * w_len).next_multiple_of(8);
    assert_eq!(plan.scratch_bytes(), info + buffer(v_at + 4 * a_len));
    // The trait's plan has the same from the start.
    let full: EighPlan<Wgpu, f32> = gpu.plan_eigh(&spec).unwrap();
    assert!(full.has_host_staging());
    assert_eq!(full.device_bytes(), plan.device_bytes());
    assert_eq!(full.scratch_bytes(), plan.scratch_bytes());

    // Without eigenvectors no V is made (the placeholder is not counted twice).
    let mut values = device(&EighSpec::ragged(sizes));
    let before = values.device_bytes();
    gpu.prepare_eigh_host(&mut values).unwrap();
    assert_eq!(
        values.device_bytes() - before,
        buffer(4 * a_len) + buffer(4 * w_len)
    );
    // Read-back: the status word and W, up to where V would start.
    assert_eq!(values.scratch_bytes(), info + buffer(v_at));

    // More matrices, more table bytes.
    let bigger: EighPlan<Wgpu, f32> = gpu.plan_eigh(&EighSpec::ragged(vec![3; 400])).unwrap();
    let smaller: EighPlan<Wgpu, f32> = gpu.plan_eigh(&EighSpec::ragged(vec![3; 4])).unwrap();
    assert!(bigger.device_bytes() >= smaller.device_bytes() + 4 * 4 * 396);
}

#[test]
fn reduce_device_bytes_cover_partials_and_the_host_path_when_made() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let len = 1001;
    let spec = ReduceSpec::Full {
        op: ReduceOp::Dot,
        len,
    };
    let mut plan = gpu.plan_reduce_device::<f32>(&spec).unwrap();
    let before = plan.device_bytes();
    // Partials: two f32 per part, at least one part.
    assert!(before >= 8, "{before}");
    assert_eq!(plan.scratch_bytes(), 0);
    let x = vec![1.0f32; len];
    let mut out = [0.0f32];
    let err = gpu
        .reduce_host(&mut plan, &x, Some(&x), &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    gpu.prepare_reduce_host(&mut plan).unwrap();
    gpu.reduce_host(&mut plan, &x, Some(&x), &mut out).unwrap();
    assert_eq!(out[0], len as f32);
    // x, y and the output on the device, the output read back.
    assert_eq!(
        plan.device_bytes() - before,
        2 * buffer(4 * len) + buffer(4)
    );
    assert_eq!(plan.scratch_bytes(), buffer(4));
    let full: ReducePlan<Wgpu, f32> = gpu.plan_reduce(&spec).unwrap();
    assert_eq!(full.device_bytes(), plan.device_bytes());
    assert_eq!(full.scratch_bytes(), plan.scratch_bytes());

    // One operand: no y is made.
    let sum = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len,
    };
    let mut plan = gpu.plan_reduce_device::<f32>(&sum).unwrap();
    let before = plan.device_bytes();
    gpu.prepare_reduce_host(&mut plan).unwrap();
    gpu.reduce_host(&mut plan, &x, None, &mut out).unwrap();
    assert_eq!(plan.device_bytes() - before, buffer(4 * len) + buffer(4));
}

#[test]
fn attention_device_bytes_cover_the_operands_and_the_mask() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let spec = AttentionSpec::self_attention(2, 64, 32);
    let mask = BlockMask::causal(64, 64, (16, 16)).unwrap();
    let plan: AttentionPlan<Wgpu, f32> = gpu.plan_attention(&spec, &mask).unwrap();
    assert!(plan.has_host_staging());
    let (q, lse) = (4 * 2 * 64 * 32, 4 * 2 * 64);
    // Q, K, V, O and LSE for host calls, plus row starts (one per query block and head).
    assert!(
        plan.device_bytes() >= 4 * q + lse + 4 * 4,
        "{}",
        plan.device_bytes()
    );
    // Read-back: O, then LSE (8-byte aligned).
    assert_eq!(plan.scratch_bytes(), buffer(q.next_multiple_of(8) + lse));
    let longer = AttentionSpec::self_attention(2, 128, 32);
    let mask_128 = BlockMask::causal(128, 128, (16, 16)).unwrap();
    let bigger: AttentionPlan<Wgpu, f32> = gpu.plan_attention(&longer, &mask_128).unwrap();
    assert!(bigger.device_bytes() >= plan.device_bytes() + 4 * q + lse);

    // For device buffers only: no copies of Q, K, V, O and no read-back until prepared.
    let mut device = gpu.plan_attention_device::<f32>(&spec, &mask).unwrap();
    assert!(!device.has_host_staging());
    assert_eq!(device.scratch_bytes(), 0);
    assert_eq!(plan.device_bytes() - device.device_bytes(), 4 * buffer(q));
    let x = vec![0.5f32; q / 4];
    let mut o = vec![0.0f32; q / 4];
    let err = gpu
        .attention_host(&mut device, &x, &x, &x, &mut o, None)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    gpu.prepare_attention_host(&mut device).unwrap();
    assert!(device.has_host_staging());
    assert_eq!(device.device_bytes(), plan.device_bytes());
    assert_eq!(device.scratch_bytes(), plan.scratch_bytes());
    // Equal rows of V: every kept row's output is that row.
    gpu.attention_host(&mut device, &x, &x, &x, &mut o, None)
        .unwrap();
    assert!(o.iter().all(|&y| (y - 0.5).abs() < 1e-6), "{:?}", &o[..4]);
}

#[test]
fn auto_forwards_the_wgpu_plan_and_adds_its_own_staging() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap()).add_wgpu(gpu.clone());
    let on_wgpu = auto.clone().force(BackendKind::Wgpu).unwrap();
    let spec = EighSpec::uniform(6, 10).with_vectors(true);

    let direct = gpu
        .plan_eigh_device::<f32>(&spec, WgpuEighAlgorithm::SizeClasses)
        .unwrap();
    let prepared: EighPlan<Wgpu, f32> = gpu.plan_eigh(&spec).unwrap();
    // For data on wgpu, Auto makes the plan for device buffers only.
    let device = on_wgpu
        .plan_eigh_for::<f32>(&spec, Residency::Device(BackendKind::Wgpu))
        .unwrap();
    assert_eq!(device.backend(), BackendKind::Wgpu);
    assert_eq!(device.device_bytes(), direct.device_bytes());
    assert_eq!(device.scratch_bytes(), direct.scratch_bytes());
    // For host data Auto makes the host path at plan time.
    let host = on_wgpu
        .plan_eigh_for::<f32>(&spec, Residency::Host)
        .unwrap();
    assert_eq!(host.device_bytes(), prepared.device_bytes());
    assert_eq!(host.scratch_bytes(), prepared.scratch_bytes());
    assert!(host.scratch_bytes() > direct.scratch_bytes());

    // A CPU plan fed wgpu buffers stages them on the host: Auto reserves its copies when the
    // plan is made for data on wgpu, or in prepare_eigh_staging, and counts them.
    let on_cpu = auto.clone().force(BackendKind::Cpu).unwrap();
    let mut plan = on_cpu.plan_eigh(&spec).unwrap();
    let cpu_only = plan.scratch_bytes();
    assert_eq!(plan.device_bytes(), 0);
    let (a_len, w_len) = (6 * 6 * 10, 6 * 10);
    let copies = 4 * (2 * a_len + w_len);
    // Zero matrices: the values do not matter here.
    let a = auto.alloc_on::<f32>(BackendKind::Wgpu, a_len).unwrap();
    let mut w = auto.alloc_on::<f32>(BackendKind::Wgpu, w_len).unwrap();
    let mut v = auto.alloc_on::<f32>(BackendKind::Wgpu, a_len).unwrap();
    let err = on_cpu
        .eigh(&mut plan, &a, &mut w, Some(&mut v))
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
    assert_eq!(plan.scratch_bytes(), cpu_only);
    on_cpu.prepare_eigh_staging(&mut plan).unwrap();
    assert_eq!(plan.scratch_bytes(), cpu_only + copies);
    on_cpu.eigh(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    assert_eq!(plan.scratch_bytes(), cpu_only + copies);
    assert_eq!(plan.device_bytes(), 0);
    let planned = on_cpu
        .plan_eigh_for::<f32>(&spec, Residency::Device(BackendKind::Wgpu))
        .unwrap();
    assert_eq!(planned.scratch_bytes(), cpu_only + copies);
}
