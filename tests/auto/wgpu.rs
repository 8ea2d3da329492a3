//! `Auto` with a wgpu adapter (lavapipe in CI): every operation forced onto wgpu agrees with
//! the CPU, device-resident wgpu buffers work with plans on either backend, a plan the model
//! sends to a backend that cannot run its dtype falls back to the next, and calibration
//! measures a wgpu profile.
#![cfg(feature = "wgpu")]

use crate::common;

use megabatch::backends::cpu::Cpu;
use megabatch::cost::AttentionProfile;
use megabatch::{
    AttentionSpec, Auto, AutoAttentionPlan, Backend, BackendKind, BatchedEigh, BlockMask, EighSpec,
    ReduceOp, ReduceSpec, Reducer, Residency, SparseAttention,
};

fn auto_with_wgpu() -> Option<Auto> {
    let wgpu = common::wgpu_or_skip()?;
    Some(Auto::with_cpu(Cpu::with_threads(2).unwrap()).add_wgpu(wgpu))
}

/// `batch` matrices with entries in [-1, 1] (eigh reads the lower triangle).
fn matrices(n: usize, batch: usize) -> Vec<f32> {
    (0..n * n * batch)
        .map(|i| ((i * 7919 % 1013) as f32 / 506.5) - 1.0)
        .collect()
}

/// Eigenvalues of `a` (f32) on `auto` with its plan forced to `kind`, from host slices.
fn eigenvalues(auto: &Auto, kind: BackendKind, n: usize, a: &[f32]) -> Vec<f32> {
    let batch = a.len() / (n * n);
    let forced = auto.clone().force(kind).unwrap();
    let spec = EighSpec::uniform(n, batch);
    let mut plan = forced.plan_eigh(&spec).unwrap();
    assert_eq!(plan.backend(), kind);
    let mut w = vec![0.0; n * batch];
    forced.eigh_host(&mut plan, a, &mut w, None).unwrap();
    w
}

#[test]
fn auto_holds_wgpu_and_every_operation_forced_there_agrees_with_the_cpu() {
    let Some(auto) = auto_with_wgpu() else { return };
    assert_eq!(auto.backends(), vec![BackendKind::Cpu, BackendKind::Wgpu]);
    assert!(auto.machine_key().contains("|wgpu:"));

    let (n, batch) = (12, 40);
    let a = matrices(n, batch);
    let on_cpu = eigenvalues(&auto, BackendKind::Cpu, n, &a);
    let on_wgpu = eigenvalues(&auto, BackendKind::Wgpu, n, &a);
    for (c, g) in on_cpu.iter().zip(&on_wgpu) {
        assert!((c - g).abs() <= 1e-4 * (1.0 + c.abs()), "{c} vs {g}");
    }

    let wgpu = auto.clone().force(BackendKind::Wgpu).unwrap();
    let x: Vec<f32> = (0..10_000).map(|i| (i % 17) as f32).collect();
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: x.len(),
    };
    let mut plan = wgpu.plan_reduce(&spec).unwrap();
    assert_eq!(plan.backend(), BackendKind::Wgpu);
    let mut out = [0.0f32];
    wgpu.reduce_host(&mut plan, &x, None, &mut out).unwrap();
    let exact: f64 = x.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(f64::from(out[0]), exact);

    let spec = AttentionSpec {
        batch: 1,
        heads_q: 2,
        heads_kv: 1,
        seq_q: 70,
        seq_kv: 90,
        head_dim: 32,
        scale: None,
    };
    let mask = BlockMask::causal(70, 90, (32, 32)).unwrap();
    let (q_len, kv_len, _) = spec.lens().unwrap();
    let values = |len, k: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * k % 97) as f32 / 48.5) - 1.0)
            .collect()
    };
    let (q, kk, v) = (values(q_len, 31), values(kv_len, 37), values(kv_len, 41));
    let mut outs = Vec::new();
    for kind in [BackendKind::Cpu, BackendKind::Wgpu] {
        let forced = auto.clone().force(kind).unwrap();
        let mut plan = forced.plan_attention(&spec, &mask).unwrap();
        assert_eq!(plan.backend(), kind);
        let mut o = vec![0.0f32; q_len];
        forced
            .attention_host(&mut plan, &q, &kk, &v, &mut o, None)
            .unwrap();
        outs.push(o);
    }
    for (c, g) in outs[0].iter().zip(&outs[1]) {
        assert!((c - g).abs() <= 1e-4, "{c} vs {g}");
    }
}

#[test]
fn wgpu_buffers_work_with_plans_on_either_backend_and_mixed_places() {
    let Some(auto) = auto_with_wgpu() else { return };
    let (n, batch) = (6, 50);
    let a_host = matrices(n, batch);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let on_wgpu = Residency::Device(BackendKind::Wgpu);
    let mut a = auto
        .alloc_on::<f32>(BackendKind::Wgpu, a_host.len())
        .unwrap();
    auto.upload(&a_host, &mut a).unwrap();
    let reference = eigenvalues(&auto, BackendKind::Cpu, n, &a_host);
    for kind in [BackendKind::Cpu, BackendKind::Wgpu] {
        let forced = auto.clone().force(kind).unwrap();
        let mut plan = forced.plan_eigh_for::<f32>(&spec, on_wgpu).unwrap();
        assert_eq!(plan.backend(), kind);
        // W on the device, V in host memory: a plan of either backend takes both.
        let mut w = forced
            .alloc_on::<f32>(BackendKind::Wgpu, n * batch)
            .unwrap();
        let mut v = forced.alloc::<f32>(n * n * batch).unwrap();
        if kind == BackendKind::Wgpu {
            // Planned for wgpu buffers: a host buffer needs the staging made first.
            let err = forced
                .eigh(&mut plan, &a, &mut w, Some(&mut v))
                .unwrap_err();
            assert!(matches!(err, megabatch::Error::PlanMismatch(_)), "{err:?}");
            forced.prepare_eigh_staging(&mut plan).unwrap();
        }
        forced.eigh(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
        let mut w_host = vec![0.0; n * batch];
        forced.download(&w, &mut w_host).unwrap();
        for (c, g) in reference.iter().zip(&w_host) {
            assert!(
                (c - g).abs() <= 1e-4 * (1.0 + c.abs()),
                "{kind:?}: {c} vs {g}"
            );
        }
        // Each V column is a unit eigenvector: |A v - w v| small for the first matrix.
        let v = v.as_host().unwrap();
        for j in 0..n {
            for i in 0..n {
                let av: f32 = (0..n)
                    .map(|k| {
                        let (r, c) = if i >= k { (i, k) } else { (k, i) };
                        a_host[r * n + c] * v[k * n + j]
                    })
                    .sum();
                assert!((av - w_host[j] * v[i * n + j]).abs() < 1e-4, "{kind:?}");
            }
        }
    }
}

/// A model that thinks wgpu runs bf16 attention cheaply still gets a plan: wgpu refuses bf16
/// (WGSL has none) and the plan falls back to the CPU; forced, the refusal is the answer.
#[test]
fn a_backend_that_cannot_run_the_dtype_falls_back_to_the_next() {
    let Some(mut auto) = auto_with_wgpu() else {
        return;
    };
    let mut model = auto.model().clone();
    let wgpu = model
        .backends
        .iter_mut()
        .find(|p| p.backend == "wgpu")
        .unwrap();
    wgpu.transfer_bytes_per_s = Some(1e15);
    wgpu.attention.insert(
        "bf16".into(),
        AttentionProfile {
            call_s: 0.0,
            head_dims: vec![64],
            flops_per_s: vec![1e20],
        },
    );
    auto.set_model(model);
    let spec = AttentionSpec {
        batch: 1,
        heads_q: 4,
        heads_kv: 4,
        seq_q: 256,
        seq_kv: 256,
        head_dim: 64,
        scale: None,
    };
    let mask = BlockMask::dense(256, 256, (64, 64)).unwrap();
    let decision = auto
        .explain_attention::<half::bf16>(&spec, &mask, Residency::Host)
        .unwrap();
    assert_eq!(decision.chosen, BackendKind::Wgpu);
    let plan: AutoAttentionPlan<half::bf16> = auto.plan_attention(&spec, &mask).unwrap();
    assert_eq!(plan.backend(), BackendKind::Cpu);
    let forced = auto.force(BackendKind::Wgpu).unwrap();
    let plan: megabatch::Result<AutoAttentionPlan<half::bf16>> =
        forced.plan_attention(&spec, &mask);
    assert!(matches!(plan, Err(megabatch::Error::Unsupported { .. })));
}

#[test]
fn calibration_measures_a_wgpu_profile() {
    let Some(mut auto) = auto_with_wgpu() else {
        return;
    };
    let model = auto
        .calibrate(megabatch::cost::CalibrationOptions { quick: true })
        .unwrap()
        .clone();
    let wgpu = model.profile(BackendKind::Wgpu).expect("wgpu profile");
    assert!(wgpu.transfer_bytes_per_s.is_some_and(|r| r > 1e6));
    assert!(wgpu.eigh.contains_key("f32"));
    assert!(!wgpu.reduce.contains_key("bf16") && !wgpu.attention.contains_key("bf16"));
    let attention = &wgpu.attention["f32"];
    assert!(attention
        .flops_per_s
        .iter()
        .all(|r| *r > 0.0 && r.is_finite()));
    // f16 attention where the adapter has SHADER_F16.
    let f16_ok = auto.wgpu().unwrap().adapter().f16;
    assert_eq!(wgpu.attention.contains_key("f16"), f16_ok);
}

/// `eigh_info` marks the bad matrix whichever path an `Auto` call takes (`auto.rs`).
#[test]
fn eigh_info_reports_the_bad_matrix_on_every_path() {
    let Some(auto) = auto_with_wgpu() else { return };
    crate::info_paths::eigh_info_reports_the_bad_matrix_on_every_path(
        &auto,
        BackendKind::Wgpu,
        f32::NAN,
    );
}
