//! The cost model `Auto` uses to pick a backend, its calibration on this machine, and the
//! versioned file that keeps a calibration between runs.
//!
//! A prediction is `seconds = max(one-call latency, work x seconds per unit) (+ transfers)`
//! per backend, with rates measured per operation, dtype and size (see [`CostModel`]).

pub(crate) mod calibrate;
mod decision;
mod defaults;
mod model;
mod store;

pub use calibrate::CalibrationOptions;
pub(crate) use decision::cheapest;
pub use decision::{Decision, Prediction, Residency};
pub use model::{
    AttentionProfile, AttentionWork, BackendProfile, CostModel, EighMaxOrders, EighProfile,
    ModelSource, ReduceProfile, MODEL_VERSION,
};
pub use store::{default_calibration_path, load_calibration, save_calibration, CALIBRATION_ENV};
