//! Attention through `Auto`: the decision and the chosen backend's plan. Only the CPU today:
//! the CUDA and wgpu attention kernels exist, but the cost model has no calibrated attention
//! profile for them yet, so they predict `None` and are never picked.

use super::{not_present, Auto, AutoBuffer};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::CpuAttentionPlan;
use crate::cost::Decision;
use crate::{BackendKind, Result};

/// An attention plan of [`Auto`]: the chosen backend's own plan.
#[derive(Debug)]
pub struct AutoAttentionPlan<T: AttentionElement> {
    inner: Inner<T>,
    decision: Decision,
}

#[derive(Debug)]
enum Inner<T: AttentionElement> {
    /// The CPU plan and host staging for device-resident operands (filled on their first use).
    Cpu(CpuAttentionPlan<T>, Box<Staging<T>>),
}

/// Host copies of Q, K, V, O and LSE for a CPU plan given device buffers.
#[derive(Debug)]
struct Staging<T> {
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    o: Vec<T>,
    lse: Vec<f32>,
}

impl<T> Default for Staging<T> {
    fn default() -> Self {
        Self {
            q: Vec::new(),
            k: Vec::new(),
            v: Vec::new(),
            o: Vec::new(),
            lse: Vec::new(),
        }
    }
}

impl<T: AttentionElement> AutoAttentionPlan<T> {
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
    /// Predicted time per backend for an attention call of dtype `T`: `4 BQ BK D` flops per
    /// kept block per (batch, head). The pick `plan_attention` would make.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens`].
    pub fn explain_attention<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<Decision> {
        spec.lens()?;
        let (bq, bk) = mask.block_size();
        let flops = 4.0
            * (bq * bk * spec.head_dim) as f64
            * mask.kept_blocks(spec.batch, spec.heads_q) as f64;
        Ok(self.decide(|backend| self.model.predict_attention(backend, T::DTYPE, flops)))
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
            BackendKind::Cpu => Inner::Cpu(self.cpu.plan_attention(spec, mask)?, Box::default()),
            other => return Err(not_present(other, "attention")),
        };
        Ok(AutoAttentionPlan { inner, decision })
    }

    fn attention(
        &self,
        plan: &mut AutoAttentionPlan<T>,
        q: &AutoBuffer<T>,
        k: &AutoBuffer<T>,
        v: &AutoBuffer<T>,
        o: &mut AutoBuffer<T>,
        lse: Option<&mut AutoBuffer<f32>>,
    ) -> Result<()> {
        match &mut plan.inner {
            Inner::Cpu(p, s) => {
                let (q_host, k_host, v_host) = (
                    self.read_host(q, &mut s.q)?,
                    self.read_host(k, &mut s.k)?,
                    self.read_host(v, &mut s.v)?,
                );
                let o_host = Self::write_host(o, &mut s.o);
                match lse {
                    None => {
                        self.cpu
                            .attention_host(p, q_host, k_host, v_host, o_host, None)?;
                        self.finish_write(o, &s.o)
                    }
                    Some(l) => {
                        let l_host = Self::write_host(l, &mut s.lse);
                        self.cpu
                            .attention_host(p, q_host, k_host, v_host, o_host, Some(l_host))?;
                        self.finish_write(o, &s.o)?;
                        self.finish_write(l, &s.lse)
                    }
                }
            }
        }
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
            Inner::Cpu(p, _) => self.cpu.attention_host(p, q, k, v, o, lse),
        }
    }
}
