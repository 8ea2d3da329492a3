//! The cost model `Auto` uses to pick a backend: predicted seconds per call,
//! `t = launch_overhead + bytes_moved / bandwidth + flops / rate`.

use crate::BackendKind;

/// Calibration constants of one backend on this machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackendCost {
    /// Fixed cost of one call: thread wake-up on the CPU, launch + synchronisation on a GPU.
    /// Seconds.
    pub launch_s: f64,
    /// Host-to-device plus device-to-host bandwidth for data not already resident, bytes per
    /// second (`f64::INFINITY` for the CPU, whose buffers are host memory).
    pub transfer_bytes_per_s: f64,
    /// Sustained arithmetic rate on this operation class, flop per second.
    pub flops_per_s: f64,
}

impl BackendCost {
    /// Conservative defaults for the CPU backend with `threads` threads: 10 us per parallel
    /// call, 1 GFLOP/s per thread (the small-matrix kernels run well above this).
    pub fn cpu_default(threads: usize) -> Self {
        Self {
            launch_s: 10e-6,
            transfer_bytes_per_s: f64::INFINITY,
            flops_per_s: 1e9 * threads as f64,
        }
    }

    /// Predicted seconds for `flops` of work with `bytes` to move on and off the device.
    pub fn predict(&self, flops: f64, bytes: f64) -> f64 {
        let transfer = if self.transfer_bytes_per_s.is_infinite() {
            0.0
        } else {
            bytes / self.transfer_bytes_per_s
        };
        self.launch_s + transfer + flops / self.flops_per_s
    }
}

/// One backend's predicted time for a spec, as reported by `Auto::explain_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The backend.
    pub backend: BackendKind,
    /// Predicted seconds per call.
    pub seconds: f64,
}

/// Why `Auto` picked a backend for a spec: every candidate's prediction and the choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The backend that will run the plan.
    pub chosen: BackendKind,
    /// Predictions for every backend present, in the order they were considered.
    pub predictions: Vec<Prediction>,
    /// `true` when `MEGABATCH_BACKEND` (or [`crate::Auto::force`]) made the choice instead of
    /// the cost model.
    pub forced: bool,
}

/// Picks the backend with the smallest predicted time (the first one on ties).
pub(crate) fn cheapest(predictions: &[Prediction]) -> Option<BackendKind> {
    predictions
        .iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .map(|p| p.backend)
}
