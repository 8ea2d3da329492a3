//! Per-backend rates and the predictions made from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Residency;
use crate::attention::{AttentionElement, AttentionSpec, BlockMask};
use crate::{BackendKind, EighLayout, EighSpec, Result};

/// Version of the calibration file format and of the model's meaning. A file with another
/// version is ignored (with a warning) and the defaults apply until `calibrate` runs again.
/// Version 2: a GPU's eigh profile ends at the largest order of its size classes (CUDA: f64
/// 165, f32 235 on a 227 KB device), not at the largest order it accepts. Version 3: attention
/// profiles per head dimension, measured on device-resident data, for every backend (GPUs
/// included), and wgpu profiles.
pub const MODEL_VERSION: u32 = 3;

/// The largest eigh order a GPU profile covers, per dtype (the model predicts nothing above,
/// so Auto keeps such orders off that GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EighMaxOrders {
    /// For f32.
    pub f32: usize,
    /// For f64.
    pub f64: usize,
}

impl EighMaxOrders {
    /// The limit for `dtype` (`"f32"` or `"f64"`).
    pub fn of(&self, dtype: &str) -> usize {
        if dtype == "f64" {
            self.f64
        } else {
            self.f32
        }
    }
}

/// Where a [`CostModel`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ModelSource {
    /// Built-in conservative constants (no calibration found): GPU rates are set well below what
    /// an H100 measured, so the CPU is kept unless a GPU wins by a wide margin.
    Defaults,
    /// Measured on this machine by [`Auto::calibrate`](crate::Auto::calibrate).
    Calibrated,
}

/// Eigh timings of one backend and dtype at a few orders `n`, eigenvectors included. Between
/// sampled orders, times are interpolated linearly in `log n`-`log t`; beyond the largest order
/// they grow like `n^3` (the Jacobi and QL operation counts); below the smallest, times per
/// matrix fall like `n^2` and one-matrix latencies stay flat (launch and synchronisation
/// do not shrink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EighProfile {
    /// Sampled orders, ascending.
    pub orders: Vec<usize>,
    /// Seconds for a call with one matrix of each order, host slices in and out: launch,
    /// synchronisation and the single-matrix latency.
    pub single_s: Vec<f64>,
    /// Seconds per matrix in a large batch from host slices (transfers included).
    pub per_matrix_host_s: Vec<f64>,
    /// Seconds per matrix in a large batch with the data already in this backend's buffers.
    pub per_matrix_resident_s: Vec<f64>,
    /// Largest order the backend runs; larger specs are predicted `None` (unsupported).
    pub max_order: usize,
    /// Fixed seconds of a call that spreads a batch over workers (the CPU's thread wake-up
    /// and join), added to the batch's work; 0 for GPUs, whose launch cost is in `single_s`.
    #[serde(default)]
    pub batch_overhead_s: f64,
}

/// Reduction timings of one backend and dtype: `seconds = call_s + bytes read / rate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReduceProfile {
    /// Fixed seconds per call (thread wake-up; launch + synchronisation + scalar readback).
    pub call_s: f64,
    /// Bytes of input per second from host slices (transfers included).
    pub host_bytes_per_s: f64,
    /// Bytes of input per second with the data already in this backend's buffers.
    pub resident_bytes_per_s: f64,
}

/// Attention timings of one backend and dtype: `seconds = call_s + kept-block flops / rate(D)`,
/// counting `4 BQ BK D` flops per kept block per (batch, query head), with the rate measured
/// at a few head dimensions `D` (linear in `D` between them, the nearest outside). Measured on
/// data in this backend's buffers; a GPU given host tensors also pays their transfer at the
/// backend's [`BackendProfile::transfer_bytes_per_s`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionProfile {
    /// Fixed seconds per call (launch, synchronisation, the CPU's thread wake-up).
    pub call_s: f64,
    /// Head dimensions measured, ascending.
    pub head_dims: Vec<usize>,
    /// Kept-block flops per second at each of `head_dims`.
    pub flops_per_s: Vec<f64>,
}

/// What an attention call costs the model: its kept-block flops, head dimension and the bytes
/// of Q, K, V, O and LSE (what a GPU moves when the tensors are in host memory).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionWork {
    /// `4 BQ BK D` per kept block per (batch, query head).
    pub flops: f64,
    /// The head dimension `D`.
    pub head_dim: usize,
    /// Bytes of Q, K, V, O (elements of `T`) and LSE (f32).
    pub bytes: f64,
}

impl AttentionWork {
    /// The work of an attention call of dtype `T` with `spec` and `mask`.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens_for`].
    pub fn of<T: AttentionElement>(spec: &AttentionSpec, mask: &BlockMask) -> Result<Self> {
        let (q_len, kv_len, lse_len) = spec.lens_for(mask)?;
        let (bq, bk) = mask.block_size();
        let flops = 4.0
            * (bq * bk * spec.head_dim) as f64
            * mask.kept_blocks(spec.batch, spec.heads_q) as f64;
        let elem = std::mem::size_of::<T>() as f64;
        Ok(Self {
            flops,
            head_dim: spec.head_dim,
            bytes: (2 * q_len + 2 * kv_len) as f64 * elem + lse_len as f64 * 4.0,
        })
    }
}

/// Everything the model knows about one backend. Missing entries (an operation or dtype the
/// backend does not implement) predict `None`, so that backend is never picked for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendProfile {
    /// `"cpu"`, `"wgpu"` or `"cuda"`.
    pub backend: String,
    /// Host <-> device bytes per second for moving data that lives in this backend's buffers
    /// to another backend; `None` for the CPU, whose buffers are host memory.
    pub transfer_bytes_per_s: Option<f64>,
    /// Seconds of one host <-> device copy however small (driver call and synchronisation).
    #[serde(default)]
    pub transfer_latency_s: f64,
    /// Eigh profiles by dtype name (`"f32"`, `"f64"`).
    pub eigh: BTreeMap<String, EighProfile>,
    /// Reduction profiles by input dtype name.
    pub reduce: BTreeMap<String, ReduceProfile>,
    /// Attention profiles by dtype name.
    pub attention: BTreeMap<String, AttentionProfile>,
}

/// The calibrated (or default) cost model of one machine: a profile per backend.
///
/// Serialised as JSON to the calibration file (see [`super::save_calibration`]); `machine`
/// names the CPU thread count and every GPU with its driver version, so a file made on
/// another machine or driver is not used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// [`MODEL_VERSION`] when written.
    pub version: u32,
    /// Key of the machine the numbers belong to.
    pub machine: String,
    /// Defaults or measurements.
    pub source: ModelSource,
    /// Seconds since the Unix epoch when measured (0 for defaults).
    pub created_unix_s: u64,
    /// One profile per backend present when it was made.
    pub backends: Vec<BackendProfile>,
}

/// `t(x)` from samples `(xs, ts)` by log-log interpolation; outside, `x^below` below the
/// first sample and `x^3` above the last.
fn interpolate(xs: &[usize], ts: &[f64], x: usize, below: i32) -> Option<f64> {
    let (&x_first, &x_last) = (xs.first()?, xs.last()?);
    if ts.len() != xs.len() {
        return None;
    }
    let x = x.max(1) as f64;
    let (first, last) = (x_first as f64, x_last as f64);
    if x <= first {
        return Some(ts[0] * (x / first).powi(below));
    }
    if x >= last {
        return Some(ts[ts.len() - 1] * (x / last).powi(3));
    }
    let i = xs.iter().position(|&s| s as f64 >= x)?;
    let (x0, x1) = ((xs[i - 1] as f64).ln(), (xs[i] as f64).ln());
    let (t0, t1) = (ts[i - 1].ln(), ts[i].ln());
    Some((t0 + (x.ln() - x0) * (t1 - t0) / (x1 - x0)).exp())
}

impl EighProfile {
    /// Predicted seconds for `spec` with data in host memory (`resident == false`) or in this
    /// backend's buffers. `None` above `max_order`.
    pub fn predict(&self, spec: &EighSpec, resident: bool) -> Option<f64> {
        if spec.max_order() > self.max_order {
            return None;
        }
        let per = if resident {
            &self.per_matrix_resident_s
        } else {
            &self.per_matrix_host_s
        };
        let per_matrix = |n: usize| interpolate(&self.orders, per, n, 2);
        let work = match spec.layout() {
            EighLayout::Uniform { n, batch } => per_matrix(*n)? * *batch as f64,
            EighLayout::Ragged { sizes } => {
                let mut sum = 0.0;
                for &n in sizes {
                    sum += per_matrix(n)?;
                }
                sum
            }
        };
        let single = interpolate(&self.orders, &self.single_s, spec.max_order(), 0)?;
        let batched = if spec.batch() > 1 {
            self.batch_overhead_s + work
        } else {
            work
        };
        Some(single.max(batched))
    }
}

impl ReduceProfile {
    /// Predicted seconds to read `bytes` of input.
    pub fn predict(&self, bytes: f64, resident: bool) -> f64 {
        let rate = if resident {
            self.resident_bytes_per_s
        } else {
            self.host_bytes_per_s
        };
        self.call_s + bytes / rate
    }
}

impl AttentionProfile {
    /// Kept-block flops per second at head dimension `head_dim`; `None` for an empty or
    /// malformed profile.
    pub fn rate(&self, head_dim: usize) -> Option<f64> {
        let (dims, rates) = (&self.head_dims, &self.flops_per_s);
        if dims.is_empty() || dims.len() != rates.len() {
            return None;
        }
        let d = head_dim as f64;
        let i = dims.iter().position(|&x| x >= head_dim);
        Some(match i {
            Some(0) => rates[0],
            None => rates[rates.len() - 1],
            Some(i) => {
                let (d0, d1) = (dims[i - 1] as f64, dims[i] as f64);
                rates[i - 1] + (d - d0) * (rates[i] - rates[i - 1]) / (d1 - d0)
            }
        })
    }

    /// Predicted seconds for `work` on data in this backend's buffers.
    pub fn predict(&self, work: &AttentionWork) -> Option<f64> {
        Some(self.call_s + work.flops / self.rate(work.head_dim)?)
    }
}

impl BackendProfile {
    /// Whether this profile belongs to `kind`.
    pub fn is(&self, kind: BackendKind) -> bool {
        self.backend == kind.name()
    }
}

impl CostModel {
    /// The profile of `kind`, if the model has one.
    pub fn profile(&self, kind: BackendKind) -> Option<&BackendProfile> {
        self.backends.iter().find(|p| p.is(kind))
    }

    /// Seconds to bring data that lives on `residency` to `backend` and back: zero when they
    /// are the same place or the data is on the host (GPU host-path rates include that copy).
    fn relocation_s(&self, backend: BackendKind, residency: Residency, bytes: f64) -> Option<f64> {
        match residency {
            Residency::Device(home) if home != backend => {
                let profile = self.profile(home)?;
                // One copy off the device and one back.
                Some(2.0 * profile.transfer_latency_s + bytes / profile.transfer_bytes_per_s?)
            }
            _ => Some(0.0),
        }
    }

    /// Whether `backend` works on the data in place: its own buffers, or host memory for the
    /// CPU.
    fn is_local(backend: BackendKind, residency: Residency) -> bool {
        match residency {
            Residency::Host => backend == BackendKind::Cpu,
            Residency::Device(home) => home == backend,
        }
    }

    /// Predicted seconds for an eigh call of `dtype` on `backend`; `None` if the backend or
    /// dtype is not in the model or the orders exceed what it runs. `bytes` is what the call
    /// reads and writes (used when the data must first leave another device).
    pub fn predict_eigh(
        &self,
        backend: BackendKind,
        dtype: &str,
        spec: &EighSpec,
        residency: Residency,
        bytes: f64,
    ) -> Option<f64> {
        let profile = self.profile(backend)?.eigh.get(dtype)?;
        let local = Self::is_local(backend, residency);
        let compute = profile.predict(spec, local)?;
        Some(compute + self.relocation_s(backend, residency, bytes)?)
    }

    /// Predicted seconds for a reduction reading `bytes` of `dtype` on `backend`.
    pub fn predict_reduce(
        &self,
        backend: BackendKind,
        dtype: &str,
        bytes: f64,
        residency: Residency,
    ) -> Option<f64> {
        let profile = self.profile(backend)?.reduce.get(dtype)?;
        let local = Self::is_local(backend, residency);
        Some(profile.predict(bytes, local) + self.relocation_s(backend, residency, bytes)?)
    }

    /// Predicted seconds for an attention call of `dtype` doing `work` on `backend` with its
    /// tensors on `residency`: the resident rate, plus the host transfers of a GPU given host
    /// tensors, plus the copies off another device.
    pub fn predict_attention(
        &self,
        backend: BackendKind,
        dtype: &str,
        work: &AttentionWork,
        residency: Residency,
    ) -> Option<f64> {
        let profile = self.profile(backend)?;
        let compute = profile.attention.get(dtype)?.predict(work)?;
        let staging = match (
            Self::is_local(backend, residency),
            profile.transfer_bytes_per_s,
        ) {
            (false, Some(rate)) => 2.0 * profile.transfer_latency_s + work.bytes / rate,
            _ => 0.0,
        };
        Some(compute + staging + self.relocation_s(backend, residency, work.bytes)?)
    }
}
