//! Eigh through `Auto`: the decision and the chosen backend's plan.

use super::buffer::reserve_stage;
use super::member::{inner_plan, on_plan, plan_on, EighPlans, Member};
use super::queue::{not_in_place, AutoQueue, QueueMember};
use super::{Auto, AutoBuffer};
use crate::backends::cpu::CpuEighPlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaEighPlan;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::WgpuEighPlan;
use crate::cost::{Decision, Residency};
use crate::{BackendKind, BatchedEigh, EighSpec, PlanFootprint, Real, Result};

/// A plan of [`Auto`]: the chosen backend's own plan, and host copies of A, W and V for
/// buffers that live on another backend (allocated with the plan when it is made for data
/// there, or by [`Auto::prepare_eigh_staging`]; see [`Auto::plan_eigh_for`]).
///
/// Bad matrices (NaN/Inf input, no convergence) follow the path a call takes: `eigh_host`,
/// and `eigh` whenever its buffers go through host memory (a CPU plan, or buffers of another
/// place), return [`crate::Error::NonFinite`] (or `NoConvergence`) with the outputs untouched;
/// `eigh` on a GPU plan with that GPU's own buffers returns without waiting, with NaN outputs
/// for the bad matrices. On every path [`BatchedEigh::eigh_info`] then reports each matrix's
/// status (the chosen backend's array: [`crate::EIGH_SOLVED`], [`crate::EIGH_NON_FINITE`],
/// [`crate::EIGH_NO_CONVERGENCE`]), so code that checks it handles every backend alike.
#[derive(Debug)]
pub struct AutoEighPlan<T: Real> {
    inner: Inner<T>,
    stage: [Vec<T>; 3],
    /// Elements of A, W and V (0 without vectors): what `stage` holds when it is reserved.
    lens: [usize; 3],
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

/// Whether a plan on `kind` for data on `residency` needs its backend's host staging: unless
/// the data is that backend's own.
pub(crate) fn needs_host_staging(kind: BackendKind, residency: Residency) -> bool {
    residency != Residency::Device(kind)
}

/// Whether a plan on `kind` for data on `residency` copies the data through `Auto`'s host
/// staging: when it lives on another device.
pub(crate) fn needs_auto_staging(kind: BackendKind, residency: Residency) -> bool {
    matches!(residency, Residency::Device(d) if d != kind && d != BackendKind::Cpu)
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
    let a_host = auto.read_host(a, sa, "a")?;
    let w_host = Auto::write_host(w, sw, "w")?;
    match v {
        None => {
            backend.eigh_host(plan, a_host, w_host, None)?;
            auto.finish_write(w, sw)
        }
        Some(v) => {
            let v_host = Auto::write_host(v, sv, "v")?;
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
    /// ([`BatchedEigh::plan_eigh`] assumes host data), with everything calls whose buffers
    /// all live on `residency` need, so that they allocate nothing, the first included:
    /// - data on the chosen backend (`Residency::Device` of it): the backend's plan for its own
    ///   buffers only (`plan_eigh_device` on a GPU: no host staging);
    /// - host data ([`Residency::Host`]): on a GPU, the plan with its host staging;
    /// - data on another device: the plan with its host staging and `Auto`'s host copies of
    ///   A, W and V, through which the buffers travel.
    ///
    /// Calls with buffers elsewhere (another place, or a mix) need
    /// [`Auto::prepare_eigh_staging`] first; without it they return
    /// [`crate::Error::PlanMismatch`]. No call allocates staging.
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
            let host = needs_host_staging(kind, residency);
            Ok(plan_on!(self, kind, "eigh", |b| b.plan_eigh_staged(spec, host)?))
        })?;
        let offsets = spec.offsets(std::mem::size_of::<T>())?;
        let v_len = if spec.vectors() { offsets.a_len() } else { 0 };
        let mut plan = AutoEighPlan {
            inner,
            stage: Default::default(),
            lens: [offsets.a_len(), offsets.w_len(), v_len],
            decision,
        };
        if needs_auto_staging(plan.decision.chosen, residency) {
            plan.reserve_stage();
        }
        Ok(plan)
    }

    /// Makes `plan` ready for calls with buffers in any place: adds the chosen backend's host
    /// staging (if it was planned for its own buffers) and `Auto`'s host copies of A, W and V
    /// (if it was planned for host data or its backend's). Calls then allocate nothing. Does
    /// nothing for what the plan has already.
    ///
    /// # Errors
    /// [`crate::Error::Device`] if an allocation fails; [`crate::Error::Unsupported`] if the
    /// plan's backend is gone from this `Auto`.
    pub fn prepare_eigh_staging<T: Real>(&self, plan: &mut AutoEighPlan<T>) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.stage_eigh_host(p))?;
        plan.reserve_stage();
        Ok(())
    }
}

impl<T: Real> AutoEighPlan<T> {
    fn reserve_stage(&mut self) {
        for (stage, &len) in self.stage.iter_mut().zip(&self.lens) {
            reserve_stage(stage, len);
        }
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

    /// The chosen backend's [`BatchedEigh::eigh_info`].
    fn eigh_info(&self, plan: &mut AutoEighPlan<T>, info: &mut [i32]) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.eigh_info(p, info))
    }
}

impl<T: Real> Inner<T> {
    /// The chosen backend's plan, as a [`PlanFootprint`].
    fn footprint(&self) -> &dyn PlanFootprint {
        inner_plan!(self, |p| p)
    }
}

impl<T: Real> PlanFootprint for AutoEighPlan<T> {
    /// The chosen backend's plan's, plus the host copies of A, W and V for buffers of another
    /// backend, once reserved (made for data on another device, or
    /// [`Auto::prepare_eigh_staging`]).
    fn scratch_bytes(&self) -> usize {
        let stage = self.stage.iter().map(Vec::capacity).sum::<usize>();
        self.inner.footprint().scratch_bytes() + stage * std::mem::size_of::<T>()
    }

    /// The chosen backend's plan's.
    fn device_bytes(&self) -> usize {
        self.inner.footprint().device_bytes()
    }
}
