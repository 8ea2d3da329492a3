//! Eigh through `Auto`: the decision and the chosen backend's plan.

use super::member::{inner_plan, on_plan, plan_on, Member, PrepareEighHost};
use super::queue::{not_in_place, AutoQueue, QueueMember};
use super::{Auto, AutoBuffer};
use crate::backends::cpu::CpuEighPlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaEighPlan;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::WgpuEighPlan;
use crate::cost::{Decision, Residency};
use crate::{BackendKind, BatchedEigh, EighSpec, PlanFootprint, Real, Result};

/// A plan of [`Auto`]: the chosen backend's own plan, and host staging for buffers that live
/// on another backend (allocated on the first call that needs it).
#[derive(Debug)]
pub struct AutoEighPlan<T: Real> {
    inner: Inner<T>,
    stage: [Vec<T>; 3],
    decision: Decision,
}

// A plan is made once and lives as long as its user keeps it: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner<T: Real> {
    Cpu(CpuEighPlan<T>),
    #[cfg(feature = "cuda")]
    Cuda(CudaEighPlan<T>),
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuEighPlan<T>),
}

impl<T: Real> AutoEighPlan<T> {
    /// The backend this plan runs on.
    pub fn backend(&self) -> BackendKind {
        self.decision.chosen
    }

    /// The predictions and the pick that made this plan.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// Bytes an eigh call reads and writes: A, W and (if asked) V. A spec whose lengths overflow
/// counts 0 here; its plan fails with `TooLarge` anyway.
fn eigh_bytes<T: Real>(spec: &EighSpec) -> f64 {
    let size = std::mem::size_of::<T>();
    spec.offsets(size).map_or(0.0, |o| {
        let v = if spec.vectors() { o.a_len() } else { 0 };
        (o.a_len() + o.w_len() + v) as f64 * size as f64
    })
}

/// `backend`'s plan for `spec`, with its host staging made now when the data is on the host.
fn plan<B: PrepareEighHost<T>, T: Real>(
    backend: &B,
    spec: &EighSpec,
    residency: Residency,
) -> Result<B::EighPlan> {
    let mut plan = backend.plan_eigh(spec)?;
    if residency == Residency::Host {
        backend.prepare_eigh_host(&mut plan)?;
    }
    Ok(plan)
}

/// Runs `plan` of `backend` in place when every buffer is the backend's own, else through
/// host memory (host buffers directly, other devices' buffers copied via `stage`).
fn run<B: Member + BatchedEigh<T>, T: Real>(
    auto: &Auto,
    backend: &B,
    plan: &mut B::EighPlan,
    stage: &mut [Vec<T>; 3],
    a: &AutoBuffer<T>,
    w: &mut AutoBuffer<T>,
    v: Option<&mut AutoBuffer<T>>,
) -> Result<()> {
    if Auto::all_own::<B, T>(&[Some(a), Some(w), v.as_deref()]) {
        let a = B::own(a).expect("checked by all_own");
        let w = B::own_mut(w).expect("checked by all_own");
        let v = v.map(|v| B::own_mut(v).expect("checked by all_own"));
        return backend.eigh(plan, a, w, v);
    }
    let [sa, sw, sv] = stage;
    let a_host = auto.read_host(a, sa)?;
    let w_host = Auto::write_host(w, sw);
    match v {
        None => {
            backend.eigh_host(plan, a_host, w_host, None)?;
            auto.finish_write(w, sw)
        }
        Some(v) => {
            let v_host = Auto::write_host(v, sv);
            backend.eigh_host(plan, a_host, w_host, Some(v_host))?;
            auto.finish_write(w, sw)?;
            auto.finish_write(v, sv)
        }
    }
}

/// Runs `plan` of `backend` on `queue`, every buffer being the backend's own.
fn run_on<B: QueueMember + BatchedEigh<T>, T: Real>(
    backend: &B,
    queue: &AutoQueue,
    plan: &mut B::EighPlan,
    a: &AutoBuffer<T>,
    w: &mut AutoBuffer<T>,
    v: Option<&mut AutoBuffer<T>>,
) -> Result<()> {
    let queue = B::own_queue(queue)?;
    let (Some(a), Some(w)) = (B::own(a), B::own_mut(w)) else {
        return Err(not_in_place());
    };
    let v = match v {
        Some(v) => Some(B::own_mut(v).ok_or_else(not_in_place)?),
        None => None,
    };
    backend.eigh_on(queue, plan, a, w, v)
}

impl Auto {
    /// Predicted time per backend for an eigh spec of dtype `T` with its data on `residency`,
    /// and the pick [`Auto::plan_eigh_for`] would make.
    pub fn explain_eigh<T: Real>(&self, spec: &EighSpec, residency: Residency) -> Decision {
        let bytes = eigh_bytes::<T>(spec);
        self.decide(|backend| {
            self.model
                .predict_eigh(backend, T::DTYPE, spec, residency, bytes)
        })
    }

    /// Makes an eigh plan on the backend the cost model picks for data on `residency`
    /// ([`BatchedEigh::plan_eigh`] assumes host data). A GPU plan for host data allocates its
    /// staging here, so calls do not.
    ///
    /// # Errors
    /// As the chosen backend's `plan_eigh`; [`crate::Error::Unsupported`] if a forced backend
    /// cannot run the spec.
    pub fn plan_eigh_for<T: Real>(
        &self,
        spec: &EighSpec,
        residency: Residency,
    ) -> Result<AutoEighPlan<T>> {
        let decision = self.explain_eigh::<T>(spec, residency);
        let (inner, decision) = self.plan_first(decision, |kind| {
            Ok(plan_on!(self, kind, "eigh", |b| plan::<_, T>(
                b, spec, residency
            )?))
        })?;
        Ok(AutoEighPlan {
            inner,
            stage: Default::default(),
            decision,
        })
    }
}

impl<T: Real> BatchedEigh<T> for Auto {
    type EighPlan = AutoEighPlan<T>;

    fn plan_eigh(&self, spec: &EighSpec) -> Result<AutoEighPlan<T>> {
        self.plan_eigh_for(spec, Residency::Host)
    }

    fn eigh(
        &self,
        plan: &mut AutoEighPlan<T>,
        a: &AutoBuffer<T>,
        w: &mut AutoBuffer<T>,
        v: Option<&mut AutoBuffer<T>>,
    ) -> Result<()> {
        let stage = &mut plan.stage;
        on_plan!(self, &mut plan.inner, |b, p| run(
            self, b, p, stage, a, w, v
        ))
    }

    fn eigh_on(
        &self,
        queue: &AutoQueue,
        plan: &mut AutoEighPlan<T>,
        a: &AutoBuffer<T>,
        w: &mut AutoBuffer<T>,
        v: Option<&mut AutoBuffer<T>>,
    ) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| run_on(b, queue, p, a, w, v))
    }

    fn eigh_host(
        &self,
        plan: &mut AutoEighPlan<T>,
        a: &[T],
        w: &mut [T],
        v: Option<&mut [T]>,
    ) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.eigh_host(p, a, w, v))
    }
}

impl<T: Real> Inner<T> {
    /// The chosen backend's plan, as a [`PlanFootprint`].
    fn footprint(&self) -> &dyn PlanFootprint {
        inner_plan!(self, |p| p)
    }
}

impl<T: Real> PlanFootprint for AutoEighPlan<T> {
    /// The chosen backend's plan's, plus the host copies of A, W and V that calls with
    /// buffers of another backend make (as large as they have grown; 0 until then).
    fn scratch_bytes(&self) -> usize {
        let stage = self.stage.iter().map(Vec::capacity).sum::<usize>();
        self.inner.footprint().scratch_bytes() + stage * std::mem::size_of::<T>()
    }

    /// The chosen backend's plan's.
    fn device_bytes(&self) -> usize {
        self.inner.footprint().device_bytes()
    }
}
