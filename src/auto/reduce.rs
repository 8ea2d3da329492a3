//! Reductions through `Auto`: the decision and the chosen backend's plan.

use super::buffer::Place;
use super::{not_present, Auto, AutoBuffer};
use crate::backends::cpu::CpuReducePlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaReducePlan;
use crate::cost::{Decision, Residency};
#[cfg(feature = "cuda")]
use crate::Error;
use crate::{BackendKind, ReduceSpec, Reducer, Reducible, Result};

/// A reduction plan of [`Auto`]: the chosen backend's own plan, and host staging for a CPU
/// plan that is given device buffers.
#[derive(Debug)]
pub struct AutoReducePlan<T: Reducible> {
    inner: Inner<T>,
    decision: Decision,
}

#[derive(Debug)]
enum Inner<T: Reducible> {
    Cpu(CpuReducePlan<T>, [Vec<T>; 2], Vec<T::Acc>),
    #[cfg(feature = "cuda")]
    Cuda(CudaReducePlan<T>),
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
    /// ([`Reducer::plan_reduce`] assumes host data).
    ///
    /// # Errors
    /// As the chosen backend's `plan_reduce`.
    pub fn plan_reduce_for<T: Reducible>(
        &self,
        spec: &ReduceSpec,
        residency: Residency,
    ) -> Result<AutoReducePlan<T>> {
        let decision = self.explain_reduce::<T>(spec, residency)?;
        let inner = match decision.chosen {
            BackendKind::Cpu => {
                Inner::Cpu(self.cpu.plan_reduce(spec)?, Default::default(), Vec::new())
            }
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Inner::Cuda(self.cuda_or_err()?.plan_reduce(spec)?),
            other => return Err(not_present(other, "reduce")),
        };
        Ok(AutoReducePlan { inner, decision })
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
        match &mut plan.inner {
            Inner::Cpu(p, [sx, sy], so) => {
                let x_host = self.read_host(x, sx)?;
                let y_host = match y {
                    Some(y) => Some(self.read_host(y, sy)?),
                    None => None,
                };
                let out_host = Self::write_host(out, so);
                self.cpu.reduce_host(p, x_host, y_host, out_host)?;
                self.finish_write(out, so)
            }
            #[cfg(feature = "cuda")]
            Inner::Cuda(p) => {
                let cuda = self.cuda_or_err()?;
                match (&x.place, y.map(|y| &y.place), &mut out.place) {
                    (Place::Cuda(x), None, Place::Cuda(o)) => cuda.reduce(p, x, None, o),
                    (Place::Cuda(x), Some(Place::Cuda(y)), Place::Cuda(o)) => {
                        cuda.reduce(p, x, Some(y), o)
                    }
                    (Place::Host(x), None, Place::Host(o)) => cuda.reduce_host(p, x, None, o),
                    (Place::Host(x), Some(Place::Host(y)), Place::Host(o)) => {
                        cuda.reduce_host(p, x, Some(y), o)
                    }
                    _ => Err(Error::PlanMismatch(
                        "a GPU plan's buffers must all be on its device or all in host memory",
                    )),
                }
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
            Inner::Cpu(p, _, _) => self.cpu.reduce_host(p, x, y, out),
            #[cfg(feature = "cuda")]
            Inner::Cuda(p) => self.cuda_or_err()?.reduce_host(p, x, y, out),
        }
    }

    fn read_scalar(&self, out: &AutoBuffer<T::Acc>) -> Result<T::Acc> {
        match &out.place {
            Place::Host(v) => Reducer::<T>::read_scalar(&self.cpu, v),
            #[cfg(feature = "cuda")]
            Place::Cuda(b) => Reducer::<T>::read_scalar(self.cuda_or_err()?, b),
        }
    }
}
