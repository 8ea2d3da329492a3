//! The cost model behind `Auto`: predictions grow with size, data resident on a device is free
//! there and costs a copy elsewhere, overrides win, and calibration files survive a round trip
//! while stale or corrupt ones are refused with a reason.

use megabatch::backends::cpu::Cpu;
use megabatch::cost::{
    load_calibration, save_calibration, AttentionProfile, AttentionWork, CalibrationOptions,
    CostModel, EighMaxOrders, ModelSource, MODEL_VERSION,
};
use megabatch::{Auto, BackendKind, EighSpec, Error, Residency};

const CUDA: BackendKind = BackendKind::Cuda;
const WGPU: BackendKind = BackendKind::Wgpu;
const CPU: BackendKind = BackendKind::Cpu;

/// The same eigh order limit for both dtypes.
fn up_to(n: usize) -> EighMaxOrders {
    EighMaxOrders { f32: n, f64: n }
}

/// The default model of a 16-thread machine with a CUDA device: two profiles to compare.
fn two_backend_model() -> CostModel {
    CostModel::defaults("test-machine", 16, &[(CUDA, up_to(4096))])
}

fn eigh_seconds(model: &CostModel, kind: BackendKind, spec: &EighSpec, at: Residency) -> f64 {
    model
        .predict_eigh(kind, "f64", spec, at, 1e6)
        .expect("backend in model")
}

#[test]
fn eigh_predictions_grow_with_order_and_batch() {
    let model = two_backend_model();
    for kind in [CPU, CUDA] {
        for at in [Residency::Host, Residency::Device(CUDA)] {
            let mut last = 0.0;
            for n in 1..=300 {
                let t = eigh_seconds(&model, kind, &EighSpec::uniform(n, 64), at);
                assert!(t.is_finite() && t >= last, "{kind:?} n={n}: {t} < {last}");
                last = t;
            }
            let mut last = 0.0;
            for batch in [1, 2, 10, 100, 1000, 100_000] {
                let t = eigh_seconds(&model, kind, &EighSpec::uniform(12, batch), at);
                assert!(t >= last, "{kind:?} batch={batch}");
                last = t;
            }
        }
    }
}

#[test]
fn ragged_batches_cost_their_largest_and_their_sum() {
    let model = two_backend_model();
    let uniform = eigh_seconds(&model, CPU, &EighSpec::uniform(20, 1000), Residency::Host);
    let mixed = EighSpec::ragged([vec![20; 1000], vec![4; 1000]].concat());
    let ragged = eigh_seconds(&model, CPU, &mixed, Residency::Host);
    assert!(
        ragged > uniform,
        "adding matrices must not make a call cheaper"
    );
}

#[test]
fn reduce_and_attention_predictions_grow_with_size() {
    let model = two_backend_model();
    for kind in [CPU, CUDA] {
        let mut last = 0.0;
        for bytes in [0.0, 1e3, 1e6, 1e9] {
            let t = model
                .predict_reduce(kind, "f32", bytes, Residency::Host)
                .unwrap();
            assert!(t > last || (last == 0.0 && t > 0.0));
            last = t;
        }
    }
    let work = |flops: f64, head_dim| AttentionWork {
        flops,
        head_dim,
        bytes: flops / 1e3,
    };
    for kind in [CPU, CUDA] {
        let small = model
            .predict_attention(kind, "f16", &work(1e6, 64), Residency::Host)
            .unwrap();
        let large = model
            .predict_attention(kind, "f16", &work(1e9, 64), Residency::Host)
            .unwrap();
        assert!(large > small, "{kind:?}");
    }
}

/// A GPU given host tensors pays their transfer; resident ones do not; and a dtype missing
/// from a profile (bf16 on wgpu) is never predicted.
#[test]
fn attention_predictions_count_transfers_and_missing_dtypes() {
    let model = CostModel::defaults("m", 16, &[(CUDA, up_to(165)), (WGPU, up_to(64))]);
    let work = AttentionWork {
        flops: 1e9,
        head_dim: 64,
        bytes: 1e8,
    };
    let host = model
        .predict_attention(CUDA, "f16", &work, Residency::Host)
        .unwrap();
    let resident = model
        .predict_attention(CUDA, "f16", &work, Residency::Device(CUDA))
        .unwrap();
    let cuda = model.profile(CUDA).unwrap();
    let expected = 2.0 * cuda.transfer_latency_s + 1e8 / cuda.transfer_bytes_per_s.unwrap();
    assert!(((host - resident) - expected).abs() <= 1e-9 * expected);
    let cpu_host = model
        .predict_attention(CPU, "f16", &work, Residency::Host)
        .unwrap();
    let cpu_from_gpu = model
        .predict_attention(CPU, "f16", &work, Residency::Device(CUDA))
        .unwrap();
    assert!(
        cpu_from_gpu > cpu_host,
        "tensors on the GPU cost a copy to the CPU"
    );
    assert!(model
        .predict_attention(WGPU, "bf16", &work, Residency::Host)
        .is_none());
    assert!(model
        .predict_attention(WGPU, "f16", &work, Residency::Host)
        .is_some());
}

/// Rates between measured head dimensions are interpolated, outside them the nearest is used.
#[test]
fn attention_rate_follows_the_head_dimension() {
    let profile = AttentionProfile {
        call_s: 0.0,
        head_dims: vec![64, 128],
        flops_per_s: vec![1e12, 2e12],
    };
    assert_eq!(profile.rate(32), Some(1e12));
    assert_eq!(profile.rate(96), Some(1.5e12));
    assert_eq!(profile.rate(256), Some(2e12));
    let broken = AttentionProfile {
        head_dims: vec![64],
        flops_per_s: vec![],
        ..profile
    };
    assert_eq!(broken.rate(64), None);
}

#[test]
fn resident_data_is_free_where_it_lives_and_costs_a_copy_elsewhere() {
    let model = two_backend_model();
    let spec = EighSpec::uniform(16, 100_000).with_vectors(true);
    let on_gpu = Residency::Device(CUDA);
    assert!(
        eigh_seconds(&model, CUDA, &spec, on_gpu)
            < eigh_seconds(&model, CUDA, &spec, Residency::Host)
    );
    let cpu_host = eigh_seconds(&model, CPU, &spec, Residency::Host);
    let cpu_from_gpu = model.predict_eigh(CPU, "f64", &spec, on_gpu, 1e9).unwrap();
    let gpu = model.profile(CUDA).unwrap();
    let expected = 2.0 * gpu.transfer_latency_s + 1e9 / gpu.transfer_bytes_per_s.unwrap();
    let copy = cpu_from_gpu - cpu_host;
    assert!(
        (copy - expected).abs() <= 1e-9 * copy,
        "{copy} vs {expected}: one copy off the device and one back"
    );
    for bytes in [0.0, 1e3, 1e6, 1e9] {
        let host = model
            .predict_reduce(CUDA, "f64", bytes, Residency::Host)
            .unwrap();
        let resident = model.predict_reduce(CUDA, "f64", bytes, on_gpu).unwrap();
        assert!(resident <= host);
    }
}

#[test]
fn orders_beyond_a_backend_limit_are_unsupported_there() {
    let model = CostModel::defaults("m", 4, &[(CUDA, up_to(32))]);
    let spec = EighSpec::uniform(33, 10);
    assert!(model
        .predict_eigh(CUDA, "f64", &spec, Residency::Host, 0.0)
        .is_none());
    assert!(model
        .predict_eigh(CPU, "f64", &spec, Residency::Host, 0.0)
        .is_some());
    assert!(model
        .predict_eigh(CUDA, "f16", &EighSpec::uniform(4, 1), Residency::Host, 0.0)
        .is_none());
}

/// A GPU's limit is per dtype (CUDA's size classes hold f64 A to 165, f32 to 235 on a
/// 227 KB device; above, divide and conquer is not yet measured).
#[test]
fn gpu_eigh_limits_are_per_dtype() {
    let limits = EighMaxOrders { f32: 235, f64: 165 };
    let model = CostModel::defaults("m", 4, &[(CUDA, limits)]);
    let at = Residency::Host;
    for (n, f32_ok, f64_ok) in [(165, true, true), (166, true, false), (236, false, false)] {
        let spec = EighSpec::uniform(n, 1024);
        let ok = |dtype| model.predict_eigh(CUDA, dtype, &spec, at, 0.0).is_some();
        assert_eq!((ok("f32"), ok("f64")), (f32_ok, f64_ok), "n {n}");
        assert!(model.predict_eigh(CPU, "f64", &spec, at, 0.0).is_some());
    }
    assert_eq!(limits.of("f64"), 165);
    assert_eq!(limits.of("f32"), 235);
}

#[test]
fn the_default_gpu_model_wins_big_small_batches_and_loses_single_matrices() {
    let model = two_backend_model();
    let at = Residency::Host;
    let big = EighSpec::uniform(8, 100_000).with_vectors(true);
    assert!(eigh_seconds(&model, CUDA, &big, at) < eigh_seconds(&model, CPU, &big, at));
    let one = EighSpec::uniform(8, 1).with_vectors(true);
    assert!(eigh_seconds(&model, CUDA, &one, at) > eigh_seconds(&model, CPU, &one, at));
}

#[test]
fn force_overrides_the_model_and_rejects_absent_backends() {
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap());
    assert_eq!(auto.backends(), vec![CPU]);
    let forced = Auto::with_cpu(Cpu::with_threads(2).unwrap())
        .force(CPU)
        .unwrap();
    let decision = forced.explain_eigh::<f32>(&EighSpec::uniform(4, 4), Residency::Host);
    assert!(decision.forced);
    assert_eq!(decision.chosen, CPU);
    assert!(
        !auto
            .explain_eigh::<f32>(&EighSpec::uniform(4, 4), Residency::Host)
            .forced
    );
    match auto.force(CUDA) {
        Err(Error::Unsupported { backend, .. }) => assert_eq!(backend, BackendKind::Cuda),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("megabatch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn calibration_file_round_trips_and_refuses_stale_files() {
    let model = CostModel::defaults("machine-a", 8, &[(CUDA, up_to(4096))]);
    let path = temp_path("round-trip/calibration.json");
    save_calibration(&model, &path).unwrap();
    assert_eq!(
        load_calibration(&path, "machine-a").unwrap(),
        Some(model.clone())
    );

    let missing = temp_path("none.json");
    assert_eq!(load_calibration(&missing, "machine-a").unwrap(), None);

    let expect_refusal =
        |path: &std::path::Path, needle: &str| match load_calibration(path, "machine-a") {
            Err(Error::Calibration { reason, .. }) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
        };

    let other = temp_path("other.json");
    save_calibration(&model, &other).unwrap();
    match load_calibration(&other, "machine-b") {
        Err(Error::Calibration { reason, .. }) => assert!(reason.contains("machine-a")),
        other => panic!("a file for another machine must be refused, got {other:?}"),
    }

    let old = temp_path("old.json");
    let mut stale = model.clone();
    stale.version = MODEL_VERSION + 1;
    save_calibration(&stale, &old).unwrap();
    expect_refusal(&old, "version");

    let corrupt = temp_path("corrupt.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&corrupt, &text[..text.len() / 2]).unwrap();
    expect_refusal(&corrupt, "JSON");
    let wrong_shape = format!("{{\"version\": {MODEL_VERSION}, \"machine\": 3}}");
    std::fs::write(&corrupt, wrong_shape).unwrap();
    expect_refusal(&corrupt, "not a calibration");
    std::fs::write(&corrupt, [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(
        load_calibration(&corrupt, "machine-a"),
        Err(Error::Calibration { .. })
    ));
}

#[test]
fn calibration_measures_positive_rates_on_this_machine() {
    let mut auto = Auto::with_cpu(Cpu::with_threads(2).unwrap());
    assert_eq!(auto.model().source, ModelSource::Defaults);
    let model = auto
        .calibrate(CalibrationOptions { quick: true })
        .unwrap()
        .clone();
    assert_eq!(model.source, ModelSource::Calibrated);
    assert_eq!(model.machine, auto.machine_key());
    let cpu = model.profile(CPU).unwrap();
    for dtype in ["f32", "f64"] {
        let eigh = &cpu.eigh[dtype];
        assert!(eigh.orders.windows(2).all(|w| w[0] < w[1]));
        for t in eigh
            .single_s
            .iter()
            .chain(&eigh.per_matrix_host_s)
            .chain(&eigh.per_matrix_resident_s)
        {
            assert!(t.is_finite() && *t > 0.0, "{dtype}: {t}");
        }
    }
    for r in cpu.reduce.values() {
        assert!(r.call_s > 0.0 && r.host_bytes_per_s > 0.0 && r.host_bytes_per_s.is_finite());
    }
    assert_eq!(cpu.attention.len(), 3, "f32, f16 and bf16 attention");
    for a in cpu.attention.values() {
        assert!(!a.head_dims.is_empty() && a.head_dims.len() == a.flops_per_s.len());
        assert!(a.flops_per_s.iter().all(|r| *r > 0.0 && r.is_finite()));
        assert!(a.call_s > 0.0 && a.call_s.is_finite());
    }
    let decision = auto.explain_eigh::<f64>(&EighSpec::uniform(12, 1582), Residency::Host);
    assert_eq!(decision.chosen, CPU);
}

#[test]
fn one_matrix_latency_does_not_shrink_below_the_smallest_sampled_order() {
    let model = two_backend_model();
    let one = |n| eigh_seconds(&model, CUDA, &EighSpec::uniform(n, 1), Residency::Host);
    assert_eq!(one(1), one(4), "a launch costs the same for a 1 x 1 matrix");
    assert!(one(2) > 0.0 && one(5) > one(4));
}
