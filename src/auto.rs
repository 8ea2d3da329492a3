//! `Auto`: the backend that picks, per plan, which of the present backends runs it.

use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::{Cpu, CpuAttentionPlan, CpuEighPlan, CpuReducePlan};
use crate::cost::{cheapest, BackendCost, Decision, Prediction};
use crate::{
    Backend, BackendKind, BatchedEigh, EighSpec, Element, Error, Real, ReduceSpec, Reducer,
    Reducible, Result,
};

/// Environment variable that forces a backend for the whole process:
/// `cpu`, `wgpu`, `cuda` or `auto` (the default: the cost model decides).
pub const BACKEND_ENV: &str = "MEGABATCH_BACKEND";

/// Holds the CPU backend and every GPU backend that initialised, and implements the same
/// traits: each plan is made by the backend the cost model predicts fastest for its spec
/// ([`Auto::explain_eigh`] shows the predictions), and calls on that plan run there.
///
/// Buffers of `Auto` are [`AutoBuffer`]s; the host-slice calls (`eigh_host`) are the usual way
/// in, with GPU plans staging through buffers they own.
#[derive(Debug)]
pub struct Auto {
    cpu: Cpu,
    cpu_cost: BackendCost,
    forced: Option<BackendKind>,
}

/// A buffer of [`Auto`]: today host memory; device variants join as GPU backends land.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoBuffer<T: Element> {
    host: Vec<T>,
}

impl<T: Element> AutoBuffer<T> {
    /// Wraps host data.
    pub fn from_vec(host: Vec<T>) -> Self {
        Self { host }
    }

    /// The data, if it lives in host memory.
    pub fn as_host(&self) -> Option<&[T]> {
        Some(&self.host)
    }

    /// The data, mutably, if it lives in host memory.
    pub fn as_host_mut(&mut self) -> Option<&mut [T]> {
        Some(&mut self.host)
    }
}

/// A plan of [`Auto`]: the chosen backend's own plan.
#[derive(Debug)]
pub struct AutoEighPlan<T> {
    inner: AutoEighInner<T>,
}

#[derive(Debug)]
enum AutoEighInner<T> {
    Cpu(CpuEighPlan<T>),
}

impl<T> AutoEighPlan<T> {
    /// The backend this plan runs on.
    pub fn backend(&self) -> BackendKind {
        match self.inner {
            AutoEighInner::Cpu(_) => BackendKind::Cpu,
        }
    }
}

/// A reduction plan of [`Auto`]: the chosen backend's own plan.
#[derive(Debug)]
pub struct AutoReducePlan<T: Reducible> {
    inner: AutoReduceInner<T>,
}

#[derive(Debug)]
enum AutoReduceInner<T: Reducible> {
    Cpu(CpuReducePlan<T>),
}

impl<T: Reducible> AutoReducePlan<T> {
    /// The backend this plan runs on.
    pub fn backend(&self) -> BackendKind {
        match self.inner {
            AutoReduceInner::Cpu(_) => BackendKind::Cpu,
        }
    }
}

/// An attention plan of [`Auto`]: the chosen backend's own plan.
#[derive(Debug)]
pub struct AutoAttentionPlan<T> {
    inner: AutoAttentionInner<T>,
}

#[derive(Debug)]
enum AutoAttentionInner<T> {
    Cpu(CpuAttentionPlan<T>),
}

impl<T> AutoAttentionPlan<T> {
    /// The backend this plan runs on.
    pub fn backend(&self) -> BackendKind {
        match self.inner {
            AutoAttentionInner::Cpu(_) => BackendKind::Cpu,
        }
    }
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

impl Auto {
    /// Starts every backend this build has (a CPU backend on all cores, plus GPU backends
    /// that find a device) and reads `MEGABATCH_BACKEND`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown `MEGABATCH_BACKEND` value;
    /// [`Error::Unsupported`] if it names a backend this build or machine does not have;
    /// [`Error::Device`] if the CPU threads cannot start.
    pub fn new() -> Result<Self> {
        let auto = Self::with_cpu(Cpu::new()?);
        match std::env::var(BACKEND_ENV) {
            Ok(value) => match parse_backend(&value)? {
                Some(kind) => auto.force(kind),
                None => Ok(auto),
            },
            Err(_) => Ok(auto),
        }
    }

    /// An `Auto` over the given CPU backend only (no GPU backends), ignoring the environment.
    pub fn with_cpu(cpu: Cpu) -> Self {
        let cpu_cost = BackendCost::cpu_default(cpu.threads());
        Self {
            cpu,
            cpu_cost,
            forced: None,
        }
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

    /// The backends present, CPU first.
    pub fn backends(&self) -> Vec<BackendKind> {
        vec![BackendKind::Cpu]
    }

    /// The CPU backend.
    pub fn cpu(&self) -> &Cpu {
        &self.cpu
    }

    /// Predictions for `flops` of work and `bytes` to move, and the pick: the forced backend if
    /// any, else the cheapest.
    fn decide(&self, flops: f64, bytes: f64) -> Decision {
        let predictions = vec![Prediction {
            backend: BackendKind::Cpu,
            seconds: self.cpu_cost.predict(flops, bytes),
        }];
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

    /// Predicted time per backend for an eigh spec, and the pick `plan_eigh` would make.
    pub fn explain_eigh<T: Real>(&self, spec: &EighSpec) -> Decision {
        let flops = spec.flops();
        self.decide(flops, 0.0)
    }
}

impl Auto {
    /// Predicted time per backend for a reduction spec (it moves `x`, `y` and `out` once), and
    /// the pick `plan_reduce` would make.
    ///
    /// # Errors
    /// As [`ReduceSpec::shape`].
    pub fn explain_reduce<T: Reducible>(&self, spec: &ReduceSpec) -> Result<Decision> {
        let shape = spec.shape()?;
        let elements = shape.x_len + shape.y_len.unwrap_or(0);
        let bytes = (elements * std::mem::size_of::<T>()) as f64;
        // One add or compare per element read.
        Ok(self.decide(elements as f64, bytes))
    }
}

impl Auto {
    /// Predicted time per backend for an attention call: `4 BQ BK D` flops per kept block per
    /// (batch, head), Q/K/V/O moved once. The pick `plan_attention` would make.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens`].
    pub fn explain_attention<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<Decision> {
        let (q, kv, _) = spec.lens()?;
        let (bq, bk) = mask.block_size();
        let flops = 4.0
            * (bq * bk * spec.head_dim) as f64
            * mask.kept_blocks(spec.batch, spec.heads_q) as f64;
        let bytes = ((2 * q + 2 * kv) * std::mem::size_of::<T>()) as f64;
        Ok(self.decide(flops, bytes))
    }
}

impl Backend for Auto {
    type Buffer<T: Element> = AutoBuffer<T>;

    fn kind(&self) -> BackendKind {
        self.forced.unwrap_or(BackendKind::Cpu)
    }

    fn alloc<T: Element>(&self, len: usize) -> Result<AutoBuffer<T>> {
        self.cpu.alloc(len).map(AutoBuffer::from_vec)
    }

    fn upload<T: Element>(&self, src: &[T], dst: &mut AutoBuffer<T>) -> Result<()> {
        self.cpu.upload(src, &mut dst.host)
    }

    fn download<T: Element>(&self, src: &AutoBuffer<T>, dst: &mut [T]) -> Result<()> {
        self.cpu.download(&src.host, dst)
    }

    fn synchronize(&self) -> Result<()> {
        self.cpu.synchronize()
    }
}

impl<T: Real> BatchedEigh<T> for Auto {
    type EighPlan = AutoEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<AutoEighPlan<T>> {
        let decision = self.explain_eigh::<T>(spec);
        let inner = match decision.chosen {
            BackendKind::Cpu => AutoEighInner::Cpu(self.cpu.plan_eigh(spec)?),
            other => {
                return Err(Error::Unsupported {
                    backend: other.name(),
                    message: "backend not present".into(),
                })
            }
        };
        Ok(AutoEighPlan { inner })
    }

    fn eigh(
        &self,
        plan: &mut AutoEighPlan<T>,
        a: &AutoBuffer<T>,
        w: &mut AutoBuffer<T>,
        v: Option<&mut AutoBuffer<T>>,
    ) -> Result<()> {
        match &mut plan.inner {
            AutoEighInner::Cpu(p) => self
                .cpu
                .eigh(p, &a.host, &mut w.host, v.map(|v| &mut v.host)),
        }
    }

    fn eigh_host(
        &self,
        plan: &mut AutoEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        match &mut plan.inner {
            AutoEighInner::Cpu(p) => self.cpu.eigh_host(p, a, w, v),
        }
    }
}

impl<T: Reducible> Reducer<T> for Auto {
    type ReducePlan = AutoReducePlan<T>;

    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<AutoReducePlan<T>> {
        let decision = self.explain_reduce::<T>(spec)?;
        let inner = match decision.chosen {
            BackendKind::Cpu => AutoReduceInner::Cpu(self.cpu.plan_reduce(spec)?),
            other => {
                return Err(Error::Unsupported {
                    backend: other.name(),
                    message: "backend not present".into(),
                })
            }
        };
        Ok(AutoReducePlan { inner })
    }

    fn reduce(
        &self,
        plan: &mut AutoReducePlan<T>,
        x: &AutoBuffer<T>,
        y: Option<&AutoBuffer<T>>,
        out: &mut AutoBuffer<T::Acc>,
    ) -> Result<()> {
        match &mut plan.inner {
            AutoReduceInner::Cpu(p) => {
                self.cpu
                    .reduce(p, &x.host, y.map(|y| &y.host), &mut out.host)
            }
        }
    }

    fn reduce_host(
        &self,
        plan: &mut AutoReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        match &mut plan.inner {
            AutoReduceInner::Cpu(p) => self.cpu.reduce_host(p, x, y, out),
        }
    }

    fn read_scalar(&self, out: &AutoBuffer<T::Acc>) -> Result<T::Acc> {
        Reducer::<T>::read_scalar(&self.cpu, &out.host)
    }
}

impl<T: AttentionElement> SparseAttention<T> for Auto {
    type AttentionPlan = AutoAttentionPlan<T>;

    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<AutoAttentionPlan<T>> {
        let decision = self.explain_attention::<T>(spec, mask)?;
        let inner = match decision.chosen {
            BackendKind::Cpu => AutoAttentionInner::Cpu(self.cpu.plan_attention(spec, mask)?),
            other => {
                return Err(Error::Unsupported {
                    backend: other.name(),
                    message: "backend not present".into(),
                })
            }
        };
        Ok(AutoAttentionPlan { inner })
    }

    fn attention_host(
        &self,
        plan: &mut AutoAttentionPlan<T>,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &mut [T],
        lse: Option<&mut [f32]>,
    ) -> Result<()> {
        match &mut plan.inner {
            AutoAttentionInner::Cpu(p) => self.cpu.attention_host(p, q, k, v, o, lse),
        }
    }
}
