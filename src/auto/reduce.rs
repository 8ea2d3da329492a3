//! Reductions through `Auto`: the decision and the chosen backend's plan.

use super::buffer::reserve_stage;
use super::eigh::{needs_auto_staging, needs_host_staging};
use super::member::{inner_plan, on_plan, plan_on, Member, ReducePlans};
use super::queue::{not_in_place, AutoQueue, QueueMember};
use super::{Auto, AutoBuffer};
use crate::backends::cpu::CpuReducePlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaReducePlan;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::WgpuReducePlan;
use crate::cost::{Decision, Residency};
use crate::{BackendKind, PlanFootprint, ReduceSpec, Reducer, Reducible, Result};

/// A reduction plan of [`Auto`]: the chosen backend's own plan, and host copies of x, y and
/// the output for buffers that live on another backend (allocated with the plan when it is
/// made for data there, or by [`Auto::prepare_reduce_staging`]; see
/// [`Auto::plan_reduce_for`]).
#[derive(Debug)]
pub struct AutoReducePlan<T: Reducible> {
    inner: Inner<T>,
    stage: Staging<T>,
    decision: Decision,
}

// A plan is made once and lives as long as its user keeps it: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner<T: Reducible> {
    Cpu(CpuReducePlan<T>),
    #[cfg(feature = "cuda")]
    Cuda(CudaReducePlan<T>),
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuReducePlan<T>),
}

/// Host copies of x, y and the output, and their lengths once reserved.
#[derive(Debug)]
struct Staging<T: Reducible> {
    x: Vec<T>,
    y: Vec<T>,
    out: Vec<T::Acc>,
    /// Elements of x, y (0 without) and the output.
    lens: [usize; 3],
}

impl<T: Reducible> Staging<T> {
    fn reserve(&mut self) {
        reserve_stage(&mut self.x, self.lens[0]);
        reserve_stage(&mut self.y, self.lens[1]);
        reserve_stage(&mut self.out, self.lens[2]);
    }
}

impl<T: Reducible> AutoReducePlan<T> {
    /// The backend this plan runs on.
    pub fn backend(&self) -> BackendKind {
        self.decision.chosen
    }

    /// The predictions and the pick that made this plan.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// Runs `plan` of `backend` in place when every buffer is the backend's own, else through
/// host memory (host buffers directly, other devices' buffers copied via `stage`).
/// Runs `plan` of `backend` on `queue`, every buffer being the backend's own.
fn run_on<B: QueueMember + Reducer<T>, T: Reducible>(
    backend: &B,
    queue: &AutoQueue,
    plan: &mut B::ReducePlan,
    x: &AutoBuffer<T>,
    y: Option<&AutoBuffer<T>>,
    out: &mut AutoBuffer<T::Acc>,
) -> Result<()> {
    let queue = B::own_queue(queue)?;
    let (Some(x), Some(out)) = (B::own(x), B::own_mut(out)) else {
        return Err(not_in_place());
    };
    let y = match y {
        Some(y) => Some(B::own(y).ok_or_else(not_in_place)?),
        None => None,
    };
    backend.reduce_on(queue, plan, x, y, out)
}

fn run<B: Member + Reducer<T>, T: Reducible>(
    auto: &Auto,
    backend: &B,
    plan: &mut B::ReducePlan,
    stage: &mut Staging<T>,
    x: &AutoBuffer<T>,
    y: Option<&AutoBuffer<T>>,
    out: &mut AutoBuffer<T::Acc>,
) -> Result<()> {
    if Auto::all_own::<B, T>(&[Some(x), y]) && B::own(out).is_some() {
        let x = B::own(x).expect("checked by all_own");
        let y = y.map(|y| B::own(y).expect("checked by all_own"));
        let out = B::own_mut(out).expect("checked above");
        return backend.reduce(plan, x, y, out);
    }
    let x_host = auto.read_host(x, &mut stage.x, "x")?;
    let y_host = match y {
        Some(y) => Some(auto.read_host(y, &mut stage.y, "y")?),
        None => None,
    };
    let out_host = Auto::write_host(out, &mut stage.out, "out")?;
    backend.reduce_host(plan, x_host, y_host, out_host)?;
    auto.finish_write(out, &stage.out)
}

impl Auto {
    /// Predicted time per backend for a reduction of dtype `T` (it reads `x` and `y` once) with
    /// its data on `residency`, and the pick [`Auto::plan_reduce_for`] would make.
    ///
    /// # Errors
    /// As [`ReduceSpec::shape`].
    pub fn explain_reduce<T: Reducible>(
        &self,
        spec: &ReduceSpec,
        residency: Residency,
    ) -> Result<Decision> {
        let shape = spec.shape()?;
        let elements = shape.x_len as f64 + shape.y_len.unwrap_or(0) as f64;
        let bytes = elements * std::mem::size_of::<T>() as f64;
        Ok(self.decide(|backend| {
            self.model
                .predict_reduce(backend, T::DTYPE, bytes, residency)
        }))
    }

    /// Makes a reduction plan on the backend the cost model picks for data on `residency`
    /// ([`Reducer::plan_reduce`] assumes host data), with everything calls whose buffers all
    /// live on `residency` need, as [`Auto::plan_eigh_for`] says: a GPU plan without host
    /// staging for data on that GPU, with it for host data, and `Auto`'s host copies of x, y
    /// and the output too for data on another device. Calls with buffers elsewhere need
    /// [`Auto::prepare_reduce_staging`] first ([`crate::Error::PlanMismatch`] without).
    ///
    /// # Errors
    /// As the chosen backend's `plan_reduce`.
    pub fn plan_reduce_for<T: Reducible>(
        &self,
        spec: &ReduceSpec,
        residency: Residency,
    ) -> Result<AutoReducePlan<T>> {
        let decision = self.explain_reduce::<T>(spec, residency)?;
        let (inner, decision) = self.plan_first(decision, |kind| {
            let host = needs_host_staging(kind, residency);
            Ok(plan_on!(self, kind, "reduce", |b| b
                .plan_reduce_staged(spec, host)?))
        })?;
        let shape = spec.shape()?;
        let mut plan = AutoReducePlan {
            inner,
            stage: Staging {
                x: Vec::new(),
                y: Vec::new(),
                out: Vec::new(),
                lens: [shape.x_len, shape.y_len.unwrap_or(0), shape.out_len],
            },
            decision,
        };
        if needs_auto_staging(plan.decision.chosen, residency) {
            plan.stage.reserve();
        }
        Ok(plan)
    }

    /// Makes `plan` ready for calls with buffers in any place, as
    /// [`Auto::prepare_eigh_staging`] does for eigh: the backend's host staging and `Auto`'s
    /// host copies of x, y and the output.
    ///
    /// # Errors
    /// [`crate::Error::Device`] if an allocation fails; [`crate::Error::Unsupported`] if the
    /// plan's backend is gone from this `Auto`.
    pub fn prepare_reduce_staging<T: Reducible>(&self, plan: &mut AutoReducePlan<T>) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.stage_reduce_host(p))?;
        plan.stage.reserve();
        Ok(())
    }
}

impl<T: Reducible> Reducer<T> for Auto {
    type ReducePlan = AutoReducePlan<T>;

    fn plan_reduce(&self, spec: &ReduceSpec) -> Result<AutoReducePlan<T>> {
        self.plan_reduce_for(spec, Residency::Host)
    }

    fn reduce(
        &self,
        plan: &mut AutoReducePlan<T>,
        x: &AutoBuffer<T>,
        y: Option<&AutoBuffer<T>>,
        out: &mut AutoBuffer<T::Acc>,
    ) -> Result<()> {
        let stage = &mut plan.stage;
        on_plan!(self, &mut plan.inner, |b, p| run(
            self, b, p, stage, x, y, out
        ))
    }

    fn reduce_on(
        &self,
        queue: &AutoQueue,
        plan: &mut AutoReducePlan<T>,
        x: &AutoBuffer<T>,
        y: Option<&AutoBuffer<T>>,
        out: &mut AutoBuffer<T::Acc>,
    ) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| run_on(b, queue, p, x, y, out))
    }

    fn reduce_host(
        &self,
        plan: &mut AutoReducePlan<T>,
        x: &[T],
        y: Option<&[T]>,
        out: &mut [T::Acc],
    ) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.reduce_host(p, x, y, out))
    }
}

impl<T: Reducible> Inner<T> {
    /// The chosen backend's plan, as a [`PlanFootprint`].
    fn footprint(&self) -> &dyn PlanFootprint {
        inner_plan!(self, |p| p)
    }
}

impl<T: Reducible> PlanFootprint for AutoReducePlan<T> {
    /// The chosen backend's plan's, plus the host copies of x, y and the output for buffers of
    /// another backend, once reserved (made for data on another device, or
    /// [`Auto::prepare_reduce_staging`]).
    fn scratch_bytes(&self) -> usize {
        let stage = (self.stage.x.capacity() + self.stage.y.capacity()) * std::mem::size_of::<T>()
            + self.stage.out.capacity() * std::mem::size_of::<T::Acc>();
        self.inner.footprint().scratch_bytes() + stage
    }

    /// The chosen backend's plan's.
    fn device_bytes(&self) -> usize {
        self.inner.footprint().device_bytes()
    }
}
