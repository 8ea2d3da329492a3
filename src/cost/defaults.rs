//! The model used when no calibration exists: CPU rates scaled from the 16-core Xeon table in
//! `docs/benchmarks/cpu-eigh.md`, GPU rates set at half of what the H100 measured in
//! `docs/benchmarks/cuda-h100.md` (CUDA), `docs/benchmarks/wgpu-h100.md` and
//! `docs/benchmarks/eigh-wgpu-h200.md` (wgpu), `docs/benchmarks/attention-h100.md` (CUDA
//! attention) and with long latencies, so an uncalibrated `Auto` keeps work on the CPU unless
//! a GPU wins by a wide margin, and prefers CUDA to wgpu on the same GPU.

use std::collections::BTreeMap;

use super::model::{
    AttentionProfile, BackendProfile, CostModel, EighMaxOrders, EighProfile, ModelSource,
    ReduceProfile, MODEL_VERSION,
};
use crate::BackendKind;

/// Orders the default tables are given at.
const ORDERS: [usize; 6] = [4, 8, 16, 32, 64, 128];
/// Seconds per matrix for one CPU thread, eigenvectors included (16 / matrices per second of
/// the 16-thread f64 row).
const CPU_THREAD_PER_MATRIX_S: [f64; 6] = [1.07e-6, 3.9e-6, 2.04e-5, 1.12e-4, 7.2e-4, 3.35e-3];
/// Twice the H100's device-resident seconds per matrix (f64, values and vectors).
const CUDA_PER_MATRIX_S: [f64; 6] = [4.4e-9, 4.5e-8, 2.0e-7, 2.1e-6, 1.2e-5, 1.2e-3];
/// Twice the H100's batch-1 host-to-host latency.
const CUDA_SINGLE_S: [f64; 6] = [4.2e-5, 1.1e-4, 4.6e-4, 2.9e-3, 3.6e-3, 1.0e-2];
/// Pessimistic host <-> device bandwidth (pinned PCIe 5 reaches about 50 GB/s).
const CUDA_TRANSFER_BYTES_PER_S: f64 = 8e9;
/// What differs between the GPU backends' default profiles.
struct GpuDefaults {
    /// Times slower than [`CUDA_PER_MATRIX_S`] at eigh.
    eigh_slowdown: f64,
    /// Fixed seconds of a reduction (launch, synchronisation, scalar readback).
    call_s: f64,
    /// Reduction bytes per second on device-resident data.
    resident_bytes_per_s: f64,
    /// Input dtypes the backend reduces.
    reduce_dtypes: &'static [&'static str],
    /// Attention kept-block flops per second by dtype.
    attention_flops: &'static [(&'static str, f64)],
}

/// CUDA: attention at half the measured tensor-core rate (f16/bf16, 201-233 TFLOP/s dense)
/// and a guess at half its FMA f32 path.
const CUDA_DEFAULTS: GpuDefaults = GpuDefaults {
    eigh_slowdown: 1.0,
    call_s: 40e-6,
    resident_bytes_per_s: 1e12,
    reduce_dtypes: &["f32", "f64", "f16", "bf16"],
    attention_flops: &[("f32", 5e12), ("f16", 1e14), ("bf16", 1e14)],
};

/// wgpu: eigh 2.3-3.6x slower than CUDA on an H200 to n = 64 (docs/benchmarks/
/// eigh-wgpu-h200.md), taken as 8x; reductions half of 1.4 TB/s; attention half of 0.5 TFLOP/s
/// (docs/benchmarks/wgpu-h100.md); no bf16 in WGSL.
const WGPU_DEFAULTS: GpuDefaults = GpuDefaults {
    eigh_slowdown: 8.0,
    call_s: 100e-6,
    resident_bytes_per_s: 7e11,
    reduce_dtypes: &["f32", "f64", "f16"],
    attention_flops: &[("f32", 2.5e11), ("f16", 2.5e11)],
};

fn by_dtype<P: Clone>(dtypes: &[&str], profile: P) -> BTreeMap<String, P> {
    dtypes
        .iter()
        .map(|d| ((*d).to_string(), profile.clone()))
        .collect()
}

fn cpu_profile(threads: usize) -> BackendProfile {
    let t = threads.max(1) as f64;
    let eigh = EighProfile {
        orders: ORDERS.to_vec(),
        single_s: CPU_THREAD_PER_MATRIX_S.iter().map(|s| 10e-6 + s).collect(),
        per_matrix_host_s: CPU_THREAD_PER_MATRIX_S.iter().map(|s| s / t).collect(),
        per_matrix_resident_s: CPU_THREAD_PER_MATRIX_S.iter().map(|s| s / t).collect(),
        max_order: usize::MAX,
        batch_overhead_s: 20e-6,
    };
    let bandwidth = (4e9 * t).min(40e9);
    let reduce = ReduceProfile {
        call_s: 5e-6,
        host_bytes_per_s: bandwidth,
        resident_bytes_per_s: bandwidth,
    };
    let attention = AttentionProfile {
        call_s: 10e-6,
        head_dims: vec![64],
        flops_per_s: vec![2e9 * t],
    };
    BackendProfile {
        backend: BackendKind::Cpu.name().into(),
        transfer_bytes_per_s: None,
        transfer_latency_s: 0.0,
        eigh: by_dtype(&["f32", "f64"], eigh),
        reduce: by_dtype(&["f32", "f64", "f16", "bf16"], reduce),
        attention: by_dtype(&["f32", "f16", "bf16"], attention),
    }
}

/// A GPU's default profile: eigh `d.eigh_slowdown` times CUDA's default table (orders up to
/// `eigh_max_order` per dtype; no entry for a dtype whose limit is below the table), the
/// rest from `d`.
fn gpu_profile(
    kind: BackendKind,
    eigh_max_order: EighMaxOrders,
    d: &GpuDefaults,
) -> BackendProfile {
    let resident: Vec<f64> = CUDA_PER_MATRIX_S
        .iter()
        .map(|s| s * d.eigh_slowdown)
        .collect();
    // Values and vectors: (n^2 + n + n^2) elements of 8 bytes cross the bus per matrix.
    let host: Vec<f64> = ORDERS
        .iter()
        .zip(&resident)
        .map(|(&n, s)| s + (8 * (2 * n * n + n)) as f64 / CUDA_TRANSFER_BYTES_PER_S)
        .collect();
    let eigh = |max_order| EighProfile {
        orders: ORDERS.to_vec(),
        single_s: CUDA_SINGLE_S
            .iter()
            .map(|s| s * d.eigh_slowdown.sqrt())
            .collect(),
        per_matrix_host_s: host.clone(),
        per_matrix_resident_s: resident.clone(),
        max_order,
        batch_overhead_s: 0.0,
    };
    let reduce = ReduceProfile {
        call_s: d.call_s,
        host_bytes_per_s: CUDA_TRANSFER_BYTES_PER_S,
        resident_bytes_per_s: d.resident_bytes_per_s,
    };
    let attention = |rate| AttentionProfile {
        call_s: 2.0 * d.call_s,
        head_dims: vec![64],
        flops_per_s: vec![rate],
    };
    BackendProfile {
        backend: kind.name().into(),
        transfer_bytes_per_s: Some(CUDA_TRANSFER_BYTES_PER_S),
        transfer_latency_s: 20e-6,
        eigh: [("f32", eigh_max_order.f32), ("f64", eigh_max_order.f64)]
            .into_iter()
            .filter(|&(_, max)| max >= ORDERS[0])
            .map(|(dtype, max)| (dtype.to_string(), eigh(max)))
            .collect(),
        reduce: by_dtype(d.reduce_dtypes, reduce),
        attention: d
            .attention_flops
            .iter()
            .map(|&(dtype, rate)| (dtype.to_string(), attention(rate)))
            .collect(),
    }
}

impl CostModel {
    /// The conservative built-in model for a machine with `cpu_threads` CPU threads and the
    /// GPU backends in `gpus` (each with the largest eigh orders Auto gives it).
    pub fn defaults(
        machine: &str,
        cpu_threads: usize,
        gpus: &[(BackendKind, EighMaxOrders)],
    ) -> Self {
        let mut backends = vec![cpu_profile(cpu_threads)];
        for &(kind, eigh_max_order) in gpus {
            let defaults = match kind {
                BackendKind::Wgpu => &WGPU_DEFAULTS,
                _ => &CUDA_DEFAULTS,
            };
            backends.push(gpu_profile(kind, eigh_max_order, defaults));
        }
        Self {
            version: MODEL_VERSION,
            machine: machine.to_string(),
            source: ModelSource::Defaults,
            created_unix_s: 0,
            backends,
        }
    }
}
