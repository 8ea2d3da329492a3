//! What `Auto::explain_*` returns: every backend's prediction and the pick.

use crate::BackendKind;

/// Where a call's operands live when it runs, which decides what a backend must transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Residency {
    /// In host memory (`*_host` calls, or [`crate::AutoBuffer`]s allocated by `alloc`): a GPU
    /// backend pays host-to-device and device-to-host copies.
    #[default]
    Host,
    /// Already in buffers of this backend: free to use there, copied for any other backend.
    Device(BackendKind),
}

/// One backend's predicted time for a spec, as reported by `Auto::explain_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The backend.
    pub backend: BackendKind,
    /// Predicted seconds per call, or `None` when the backend cannot run the spec (for example
    /// an operation or size it does not implement).
    pub seconds: Option<f64>,
}

/// Why `Auto` picked a backend for a spec: every candidate's prediction and the choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The backend that will run the plan.
    pub chosen: BackendKind,
    /// Predictions for every backend present, CPU first.
    pub predictions: Vec<Prediction>,
    /// `true` when `MEGABATCH_BACKEND` (or [`crate::Auto::force`]) made the choice instead of
    /// the cost model.
    pub forced: bool,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.predictions {
            match p.seconds {
                Some(s) => write!(f, "{}: {:.3e} s; ", p.backend.name(), s)?,
                None => write!(f, "{}: unsupported; ", p.backend.name())?,
            }
        }
        let why = if self.forced { "forced" } else { "cheapest" };
        write!(f, "chosen: {} ({why})", self.chosen.name())
    }
}

/// The backend with the smallest predicted time among those that can run the spec (the first
/// one on ties, so the CPU wins a draw).
pub(crate) fn cheapest(predictions: &[Prediction]) -> Option<BackendKind> {
    predictions
        .iter()
        .filter_map(|p| p.seconds.map(|s| (p.backend, s)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(backend, _)| backend)
}
