//! The model used when no calibration exists: CPU rates scaled from the 16-core Xeon table in
//! `docs/benchmarks/cpu-eigh.md`, GPU rates set at half of what the H100 measured in
//! `docs/benchmarks/cuda-h100.md` and with long latencies, so an uncalibrated `Auto` keeps work
//! on the CPU unless a GPU wins by a wide margin.

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
        flops_per_s: 2e9 * t,
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

fn cuda_profile(eigh_max_order: EighMaxOrders) -> BackendProfile {
    // Values and vectors: (n^2 + n + n^2) elements of 8 bytes cross the bus per matrix.
    let host: Vec<f64> = ORDERS
        .iter()
        .zip(CUDA_PER_MATRIX_S)
        .map(|(&n, s)| s + (8 * (2 * n * n + n)) as f64 / CUDA_TRANSFER_BYTES_PER_S)
        .collect();
    let eigh = |dtype: &str| EighProfile {
        orders: ORDERS.to_vec(),
        single_s: CUDA_SINGLE_S.to_vec(),
        per_matrix_host_s: host.clone(),
        per_matrix_resident_s: CUDA_PER_MATRIX_S.to_vec(),
        max_order: eigh_max_order.of(dtype),
        batch_overhead_s: 0.0,
    };
    let reduce = ReduceProfile {
        call_s: 40e-6,
        host_bytes_per_s: CUDA_TRANSFER_BYTES_PER_S,
        resident_bytes_per_s: 1e12,
    };
    BackendProfile {
        backend: BackendKind::Cuda.name().into(),
        transfer_bytes_per_s: Some(CUDA_TRANSFER_BYTES_PER_S),
        transfer_latency_s: 20e-6,
        eigh: ["f32", "f64"].map(|d| (d.to_string(), eigh(d))).into(),
        reduce: by_dtype(&["f32", "f64", "f16", "bf16"], reduce),
        attention: BTreeMap::new(),
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
            if kind == BackendKind::Cuda {
                backends.push(cuda_profile(eigh_max_order));
            }
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
