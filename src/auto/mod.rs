//! `Auto`: the backend that picks, per plan, which of the present backends runs it.

mod attention;
mod buffer;
mod eigh;
mod reduce;

pub use attention::AutoAttentionPlan;
pub use buffer::AutoBuffer;
pub use eigh::AutoEighPlan;
pub use reduce::AutoReducePlan;

use crate::backends::cpu::Cpu;
#[cfg(feature = "cuda")]
use crate::backends::cuda::Cuda;
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
    /// find a device: a GPU that fails to start is left out and noted in [`Auto::notes`]),
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
        let mut auto = Self::assemble(
            Cpu::new()?,
            #[cfg(feature = "cuda")]
            cuda,
        );
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
        Self::assemble(
            cpu,
            #[cfg(feature = "cuda")]
            None,
        )
    }

    /// An `Auto` over the given CPU and CUDA backends, with the default model, ignoring the
    /// environment and the calibration file.
    #[cfg(feature = "cuda")]
    pub fn with_cuda(cpu: Cpu, cuda: Cuda) -> Self {
        Self::assemble(cpu, Some(cuda))
    }

    fn assemble(cpu: Cpu, #[cfg(feature = "cuda")] cuda: Option<Cuda>) -> Self {
        let mut auto = Self {
            cpu,
            #[cfg(feature = "cuda")]
            cuda,
            model: CostModel::defaults("", 1, &[]),
            forced: None,
            notes: Vec::new(),
        };
        auto.model = CostModel::defaults(&auto.machine_key(), auto.cpu.threads(), &auto.gpus());
        auto
    }

    /// The GPU backends present with the largest eigh order (f32, f64) Auto gives each: the
    /// orders of CUDA's size classes, not its Jacobi fallback (slower than the CPU there).
    fn gpus(&self) -> Vec<(BackendKind, EighMaxOrders)> {
        #[allow(unused_mut)]
        let mut gpus = Vec::new();
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            gpus.push((BackendKind::Cuda, cuda_max_orders(cuda)));
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
        key
    }

    /// Makes every later plan run on `kind`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `kind` is not present in this `Auto`.
    pub fn force(mut self, kind: BackendKind) -> Result<Self> {
        if !self.backends().contains(&kind) {
            return Err(Error::Unsupported {
                backend: kind.name(),
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

    #[cfg(feature = "cuda")]
    fn cuda_or_err(&self) -> Result<&Cuda> {
        self.cuda.as_ref().ok_or_else(|| Error::Unsupported {
            backend: "cuda",
            message: "no CUDA device in this Auto".into(),
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
    /// write the file: pass [`Auto::model`] to [`crate::save_calibration`] for that.
    ///
    /// # Errors
    /// Any error a measured call returns (for example [`Error::Device`] from a GPU).
    pub fn calibrate(&mut self, options: CalibrationOptions) -> Result<&CostModel> {
        let threads = self.cpu.threads();
        let unlimited = EighMaxOrders {
            f32: usize::MAX,
            f64: usize::MAX,
        };
        let mut cpu = calibrate::backend_profile(&self.cpu, &options, threads, unlimited)?;
        for (dtype, profile) in [
            (
                "f32",
                calibrate::attention_profile::<_, f32>(&self.cpu, &options)?,
            ),
            (
                "f16",
                calibrate::attention_profile::<_, half::f16>(&self.cpu, &options)?,
            ),
            (
                "bf16",
                calibrate::attention_profile::<_, half::bf16>(&self.cpu, &options)?,
            ),
        ] {
            cpu.attention.insert(dtype.into(), profile);
        }
        #[allow(unused_mut)]
        let mut backends = vec![cpu];
        #[cfg(feature = "cuda")]
        if let Some(cuda) = &self.cuda {
            backends.push(calibrate::backend_profile(
                cuda,
                &options,
                threads,
                cuda_max_orders(cuda),
            )?);
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

/// The error for a forced or chosen backend that has no plan for this operation.
fn not_present(kind: BackendKind, what: &str) -> Error {
    Error::Unsupported {
        backend: kind.name(),
        message: format!("{what} is not implemented on this backend or the backend is absent"),
    }
}

/// The largest eigh orders (f32, f64) Auto plans on CUDA.
#[cfg(feature = "cuda")]
fn cuda_max_orders(cuda: &Cuda) -> EighMaxOrders {
    EighMaxOrders {
        f32: cuda.eigh_fast_max_order::<f32>(),
        f64: cuda.eigh_fast_max_order::<f64>(),
    }
}
