//! Eigh through `Auto`: the decision and the chosen backend's plan.

#[cfg(feature = "cuda")]
use super::buffer::Place;
use super::{not_present, Auto, AutoBuffer};
use crate::backends::cpu::CpuEighPlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaEighPlan;
use crate::cost::{Decision, Residency};
#[cfg(feature = "cuda")]
use crate::Error;
use crate::{BackendKind, BatchedEigh, EighSpec, Real, Result};

/// A plan of [`Auto`]: the chosen backend's own plan, and host staging for a CPU plan that is
/// given device buffers.
#[derive(Debug)]
pub struct AutoEighPlan<T: Real> {
    inner: Inner<T>,
    decision: Decision,
}

#[derive(Debug)]
enum Inner<T: Real> {
    Cpu(CpuEighPlan<T>, [Vec<T>; 3]),
    #[cfg(feature = "cuda")]
    Cuda(CudaEighPlan<T>),
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
    /// As the chosen backend's `plan_eigh`; [`Error::Unsupported`] if a forced backend cannot
    /// run the spec.
    pub fn plan_eigh_for<T: Real>(
        &self,
        spec: &EighSpec,
        residency: Residency,
    ) -> Result<AutoEighPlan<T>> {
        let decision = self.explain_eigh::<T>(spec, residency);
        let inner = match decision.chosen {
            BackendKind::Cpu => Inner::Cpu(self.cpu.plan_eigh(spec)?, Default::default()),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => {
                let cuda = self.cuda_or_err()?;
                let mut plan = cuda.plan_eigh(spec)?;
                if residency == Residency::Host {
                    cuda.prepare_eigh_host(&mut plan)?;
                }
                Inner::Cuda(plan)
            }
            other => return Err(not_present(other, "eigh")),
        };
        Ok(AutoEighPlan { inner, decision })
    }
}

#[cfg(feature = "cuda")]
/// A GPU plan takes its buffers all on its device or all in host memory.
const MIXED: Error =
    Error::PlanMismatch("a GPU plan's buffers must all be on its device or all in host memory");

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
        match &mut plan.inner {
            Inner::Cpu(p, [sa, sw, sv]) => {
                let a_host = self.read_host(a, sa)?;
                let w_host = Self::write_host(w, sw);
                match v {
                    None => {
                        self.cpu.eigh_host(p, a_host, w_host, None)?;
                        self.finish_write(w, sw)
                    }
                    Some(v) => {
                        let v_host = Self::write_host(v, sv);
                        self.cpu.eigh_host(p, a_host, w_host, Some(v_host))?;
                        self.finish_write(w, sw)?;
                        self.finish_write(v, sv)
                    }
                }
            }
            #[cfg(feature = "cuda")]
            Inner::Cuda(p) => {
                let cuda = self.cuda_or_err()?;
                match (&a.place, &mut w.place, v.map(|v| &mut v.place)) {
                    (Place::Cuda(a), Place::Cuda(w), None) => cuda.eigh(p, a, w, None),
                    (Place::Cuda(a), Place::Cuda(w), Some(Place::Cuda(v))) => {
                        cuda.eigh(p, a, w, Some(v))
                    }
                    (Place::Host(a), Place::Host(w), None) => cuda.eigh_host(p, a, w, None),
                    (Place::Host(a), Place::Host(w), Some(Place::Host(v))) => {
                        cuda.eigh_host(p, a, w, Some(v))
                    }
                    _ => Err(MIXED),
                }
            }
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
            Inner::Cpu(p, _) => self.cpu.eigh_host(p, a, w, v),
            #[cfg(feature = "cuda")]
            Inner::Cuda(p) => self.cuda_or_err()?.eigh_host(p, a, w, v),
        }
    }
}
