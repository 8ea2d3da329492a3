//! `Auto`: the backend that picks, per plan, which of the present backends runs it.

mod attention;
mod buffer;
mod eigh;
mod member;
mod queue;
mod reduce;

pub use attention::AutoAttentionPlan;
pub use buffer::AutoBuffer;
pub use eigh::AutoEighPlan;
pub use queue::AutoQueue;
pub use reduce::AutoReducePlan;

use crate::backends::cpu::Cpu;
#[cfg(feature = "cuda")]
use crate::backends::cuda::Cuda;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::Wgpu;
use crate::cost::{
    calibrate, cheapest, default_calibration_path, load_calibration, CalibrationOptions, CostModel,
    Decision, EighMaxOrders, ModelSource, Prediction,
};
use crate::{BackendKind, Error, Result};

/// Environment variable that forces a backend for the whole process:
/// `cpu`, `wgpu`, `cuda` or `auto` (the default: the cost model decides).
pub const BACKEND_ENV: &str = "MEGABATCH_BACKEND";

/// Holds the CPU backend and every GPU backend that initialised, and implements the same
/// traits: each plan is made by the backend the cost model predicts fastest for its spec,
/// and calls on that plan run there.
///
/// The model ([`CostModel`]) predicts seconds per call per backend from rates measured on
/// this machine ([`Auto::calibrate`]), kept in a calibration file that [`Auto::new`] reloads,
/// or conservative defaults when there is none. `Auto::explain_*` return every prediction and
/// the pick; `MEGABATCH_BACKEND` or [`Auto::force`] override it. Data already on a device
/// counts as free there: plan with `plan_*_for(spec, residency)` (see [`crate::Residency`]).
///
/// Clones share the backends (threads, CUDA context) and copy the model and override, so
/// `auto.clone().force(kind)` is a cheap second view of the same machine.
#[derive(Debug, Clone)]
pub struct Auto {
    cpu: Cpu,
    #[cfg(feature = "cuda")]
    cuda: Option<Cuda>,
    #[cfg(feature = "wgpu")]
    wgpu: Option<Wgpu>,
    model: CostModel,
    forced: Option<BackendKind>,
    notes: Vec<String>,
}

fn parse_backend(value: &str) -> Result<Option<BackendKind>> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "cpu" => Ok(Some(BackendKind::Cpu)),
        "wgpu" => Ok(Some(BackendKind::Wgpu)),
        "cuda" => Ok(Some(BackendKind::Cuda)),
        _ => Err(Error::InvalidArgument(
            "MEGABATCH_BACKEND must be one of cpu, wgpu, cuda, auto",
        )),
    }
}

/// The CPU's model name from `/proc/cpuinfo` where there is one.
fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Auto {
    /// Starts every backend this build has (a CPU backend on all cores, plus GPU backends that
    /// find a device: a GPU that fails to start is left out and noted in [`Auto::notes`]; so is
    /// a wgpu adapter that is a CPU rasteriser such as lavapipe, slower than the CPU backend
    /// at everything, unless `MEGABATCH_WGPU_ADAPTER` names it),
    /// loads this machine's calibration file if there is a valid one (a stale or corrupt file
    /// is ignored with a warning on stderr and in the notes) and reads `MEGABATCH_BACKEND`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown `MEGABATCH_BACKEND` value;
    /// [`Error::Unsupported`] if it names a backend this build or machine does not have;
    /// [`Error::Device`] if the CPU threads cannot start.
    pub fn new() -> Result<Self> {
        let mut notes = Vec::new();
        #[cfg(feature = "cuda")]
        let cuda = match Cuda::new() {
            Ok(cuda) => Some(cuda),
            Err(e) => {
                notes.push(format!("cuda not used: {e}"));
                None
            }
        };
        #[allow(unused_mut)]
        let mut auto = Self::with_cpu(Cpu::new()?);
        #[cfg(feature = "cuda")]
        if let Some(cuda) = cuda {
            auto = auto.add_cuda(cuda);
        }
        #[cfg(feature = "wgpu")]
        match wgpu_for_auto() {
            Ok(wgpu) => auto = auto.add_wgpu(wgpu),
            Err(why) => notes.push(format!("wgpu not used: {why}")),
        }
        auto.notes.append(&mut notes);
        auto.load_calibration_file();
        match std::env::var(BACKEND_ENV) {
            Ok(value) => match parse_backend(&value)? {
                Some(kind) => auto.force(kind),
                None => Ok(auto),
            },
            Err(_) => Ok(auto),
        }
    }

    /// An `Auto` over the given CPU backend only, with the default model, ignoring the
    /// environment and the calibration file.
    pub fn with_cpu(cpu: Cpu) -> Self {
        let mut auto = Self {
            cpu,
            #[cfg(feature = "cuda")]
            cuda: None,
            #[cfg(feature = "wgpu")]
            wgpu: None,
            model: CostModel::defaults("", 1, &[]),
            forced: None,
            notes: Vec::new(),
        };
        auto.reset_model();
        auto
    }

    /// An `Auto` over the given CPU and CUDA backends, with the default model, ignoring the
    /// environment and the calibration file.
    #[cfg(feature = "cuda")]
    pub fn with_cuda(cpu: Cpu, cuda: Cuda) -> Self {
        Self::with_cpu(cpu).add_cuda(cuda)
    }

    /// This `Auto` with `cuda` added (replacing any CUDA backend it had) and the default
    /// model for the new set of backends; a forced backend stays forced.
    #[cfg(feature = "cuda")]
    pub fn add_cuda(mut self, cuda: Cuda) -> Self {
        self.cuda = Some(cuda);
        self.reset_model();
        self
    }

    /// This `Auto` with `wgpu` added (replacing any wgpu backend it had; any adapter,
    /// lavapipe included) and the default model for the new set of backends.
    #[cfg(feature = "wgpu")]
    pub fn add_wgpu(mut self, wgpu: Wgpu) -> Self {
        self.wgpu = Some(wgpu);
        self.reset_model();
        self
    }

    fn reset_model(&mut self) {
        self.model = CostModel::defaults(&self.machine_key(), self.cpu.threads(), &self.gpus());
    }

    /// The GPU backends present with the largest eigh order (f32, f64) Auto gives each: the
    /// orders of their measured size classes, not their fallbacks or classes not yet timed
    /// against the CPU (CUDA's divide and conquer, wgpu's Jacobi).
    fn gpus(&self) -> Vec<(BackendKind, EighMaxOrders)> {
        #[allow(unused_mut)]
        let mut gpus = Vec::new();
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            gpus.push((
                BackendKind::Cuda,
                EighMaxOrders {
                    f32: cuda.eigh_fast_max_order::<f32>(),
                    f64: cuda.eigh_fast_max_order::<f64>(),
                },
            ));
        }
        #[cfg(feature = "wgpu")]
        if let Some(wgpu) = &self.wgpu {
            gpus.push((
                BackendKind::Wgpu,
                EighMaxOrders {
                    f32: wgpu.eigh_fast_max_order::<f32>(),
                    f64: wgpu.eigh_fast_max_order::<f64>(),
                },
            ));
        }
        gpus
    }

    /// Reads the calibration file of this machine into the model; a bad file becomes a note.
    fn load_calibration_file(&mut self) {
        let key = self.machine_key();
        let Some(path) = default_calibration_path(&key) else {
            return;
        };
        match load_calibration(&path, &key) {
            Ok(Some(model)) => self.model = model,
            Ok(None) => {}
            Err(e) => {
                eprintln!("megabatch: warning: {e}; using default costs");
                self.notes.push(format!("{e}; using default costs"));
            }
        }
    }

    /// What identifies this machine's calibration: CPU model and thread count, and each GPU's
    /// name and driver version. A calibration file with another key is not used.
    pub fn machine_key(&self) -> String {
        #[allow(unused_mut)]
        let mut key = format!(
            "cpu:{}:{}:{}t",
            std::env::consts::ARCH,
            cpu_model_name(),
            self.cpu.threads()
        );
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            let info = cuda.info();
            key.push_str(&format!(
                "|cuda:{}:sm{}{}:driver{}",
                info.name,
                info.compute_capability.0,
                info.compute_capability.1,
                info.driver_version
            ));
        }
        #[cfg(feature = "wgpu")]
        if let Some(wgpu) = &self.wgpu {
            let adapter = wgpu.adapter();
            key.push_str(&format!(
                "|wgpu:{}:{}:{}",
                adapter.name, adapter.backend, adapter.driver
            ));
        }
        key
    }

    /// Makes every later plan run on `kind`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `kind` is not present in this `Auto`.
    pub fn force(mut self, kind: BackendKind) -> Result<Self> {
        if !self.backends().contains(&kind) {
            return Err(Error::Unsupported {
                backend: kind,
                message: "backend not built or no device found".into(),
            });
        }
        self.forced = Some(kind);
        Ok(self)
    }

    /// The backend forced by [`Auto::force`] or `MEGABATCH_BACKEND`, if any.
    pub fn forced(&self) -> Option<BackendKind> {
        self.forced
    }

    /// The backends present, CPU first.
    pub fn backends(&self) -> Vec<BackendKind> {
        #[allow(unused_mut)]
        let mut kinds = vec![BackendKind::Cpu];
        kinds.extend(self.gpus().into_iter().map(|(kind, _)| kind));
        kinds
    }

    /// The CPU backend.
    pub fn cpu(&self) -> &Cpu {
        &self.cpu
    }

    /// The CUDA backend, if it started.
    #[cfg(feature = "cuda")]
    pub fn cuda(&self) -> Option<&Cuda> {
        self.cuda.as_ref()
    }

    /// The wgpu backend, if it started.
    #[cfg(feature = "wgpu")]
    pub fn wgpu(&self) -> Option<&Wgpu> {
        self.wgpu.as_ref()
    }

    #[cfg(feature = "cuda")]
    fn cuda_or_err(&self) -> Result<&Cuda> {
        self.cuda.as_ref().ok_or_else(|| Error::Unsupported {
            backend: BackendKind::Cuda,
            message: "no CUDA device in this Auto".into(),
        })
    }

    #[cfg(feature = "wgpu")]
    fn wgpu_or_err(&self) -> Result<&Wgpu> {
        self.wgpu.as_ref().ok_or_else(|| Error::Unsupported {
            backend: BackendKind::Wgpu,
            message: "no wgpu adapter in this Auto".into(),
        })
    }

    /// Why a backend is missing or lost, which calibration file was ignored and why: one
    /// line each.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.notes.clone();
        for kind in self.backends() {
            if self.is_lost(kind) {
                notes.push(format!(
                    "{} device lost: later plans run on the CPU",
                    kind.name()
                ));
            }
        }
        notes
    }

    /// Whether backend `kind` has lost its device (after which it is never chosen).
    pub fn is_lost(&self, kind: BackendKind) -> bool {
        match kind {
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => self.cuda.as_ref().is_some_and(Cuda::is_lost),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => self.wgpu.as_ref().is_some_and(Wgpu::is_lost),
            _ => false,
        }
    }

    /// The cost model in use.
    pub fn model(&self) -> &CostModel {
        &self.model
    }

    /// Replaces the cost model, for example with one the caller measured or stored elsewhere.
    /// Profiles of backends not present are ignored; a backend without a profile is never
    /// picked (except when forced).
    pub fn set_model(&mut self, model: CostModel) {
        self.model = model;
    }

    /// Measures every present backend on this machine (well under two seconds on the H100
    /// host; see `docs/benchmarks/auto-h100.md`) and makes the result the model. Does not
    /// write the file: pass [`Auto::model`] to [`crate::cost::save_calibration`] for that.
    ///
    /// # Errors
    /// Any error a measured call returns (for example [`Error::Device`] from a GPU).
    #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_variables))]
    pub fn calibrate(&mut self, options: CalibrationOptions) -> Result<&CostModel> {
        let threads = self.cpu.threads();
        let unlimited = EighMaxOrders {
            f32: usize::MAX,
            f64: usize::MAX,
        };
        let mut backends = vec![calibrate::backend_profile(
            &self.cpu, &options, threads, unlimited,
        )?];
        for (kind, max_orders) in self.gpus() {
            let profile = match kind {
                #[cfg(feature = "cuda")]
                BackendKind::Cuda => {
                    calibrate::backend_profile(self.cuda_or_err()?, &options, threads, max_orders)
                }
                #[cfg(feature = "wgpu")]
                BackendKind::Wgpu => {
                    calibrate::backend_profile(self.wgpu_or_err()?, &options, threads, max_orders)
                }
                other => Err(not_present(other, "calibration")),
            };
            backends.push(profile?);
        }
        self.model = CostModel {
            version: crate::cost::MODEL_VERSION,
            machine: self.machine_key(),
            source: ModelSource::Calibrated,
            created_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            backends,
        };
        Ok(&self.model)
    }

    /// Predictions from `predict` for every present backend, and the pick: the forced backend
    /// if any, else the cheapest that can run the spec, else the CPU.
    fn decide(&self, predict: impl Fn(BackendKind) -> Option<f64>) -> Decision {
        let predictions: Vec<Prediction> = self
            .backends()
            .into_iter()
            .map(|backend| Prediction {
                backend,
                seconds: if self.is_lost(backend) {
                    None
                } else {
                    predict(backend)
                },
            })
            .collect();
        if self.forced.is_none() && self.backends().iter().any(|&k| self.is_lost(k)) {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                eprintln!("megabatch: warning: a GPU device was lost; Auto plans on the CPU now")
            });
        }
        let chosen = self
            .forced
            .or_else(|| cheapest(&predictions))
            .unwrap_or(BackendKind::Cpu);
        Decision {
            chosen,
            predictions,
            forced: self.forced.is_some(),
        }
    }
}

impl Auto {
    /// Makes a plan with `make` on the backend `decision` chose; if that backend answers
    /// [`Error::Unsupported`] (a dtype or size its device lacks, which the model cannot
    /// always know: f16 on a wgpu adapter without `SHADER_F16`, say) and the choice was not
    /// forced, on the next cheapest backend, and so on, the CPU last. The returned decision
    /// names the backend that made the plan.
    pub(crate) fn plan_first<P>(
        &self,
        mut decision: Decision,
        mut make: impl FnMut(BackendKind) -> Result<P>,
    ) -> Result<(P, Decision)> {
        let mut order = vec![decision.chosen];
        if !decision.forced {
            let mut rest: Vec<(f64, BackendKind)> = decision
                .predictions
                .iter()
                .filter(|p| p.backend != decision.chosen)
                .filter_map(|p| p.seconds.map(|s| (s, p.backend)))
                .collect();
            rest.sort_by(|a, b| a.0.total_cmp(&b.0));
            order.extend(rest.into_iter().map(|(_, kind)| kind));
            if !order.contains(&BackendKind::Cpu) {
                order.push(BackendKind::Cpu);
            }
        }
        let mut refused = None;
        for kind in order {
            match make(kind) {
                Ok(plan) => {
                    decision.chosen = kind;
                    return Ok((plan, decision));
                }
                Err(e @ Error::Unsupported { .. }) if !decision.forced => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(refused.expect("the CPU is always tried"))
    }
}

/// The error for a forced or chosen backend that has no plan for this operation.
fn not_present(kind: BackendKind, what: &str) -> Error {
    Error::Unsupported {
        backend: kind,
        message: format!("{what} is not implemented on this backend or the backend is absent"),
    }
}

/// The wgpu backend for [`Auto::new`]: the preferred adapter, unless it is a CPU rasteriser
/// (lavapipe) that `MEGABATCH_WGPU_ADAPTER` did not ask for.
#[cfg(feature = "wgpu")]
fn wgpu_for_auto() -> std::result::Result<Wgpu, String> {
    let wgpu = Wgpu::new().map_err(|e| e.to_string())?;
    let adapter = wgpu.adapter();
    let asked = std::env::var(crate::backends::wgpu::ADAPTER_ENV).is_ok();
    if adapter.device_type == "Cpu" && !asked {
        return Err(format!(
            "the adapter is a CPU rasteriser ({}), slower than the CPU backend; set {} to use it",
            adapter.name,
            crate::backends::wgpu::ADAPTER_ENV
        ));
    }
    Ok(wgpu)
}
