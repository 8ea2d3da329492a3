//! Attention through `Auto`: the decision and the chosen backend's plan. Only the CPU today:
//! the CUDA and wgpu attention kernels exist, but the cost model has no calibrated attention
//! profile for them yet, so they predict `None` and are never picked.

use super::{not_present, Auto};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::CpuAttentionPlan;
use crate::cost::Decision;
use crate::{BackendKind, Result};

/// An attention plan of [`Auto`]: the chosen backend's own plan.
#[derive(Debug)]
pub struct AutoAttentionPlan<T> {
    inner: Inner<T>,
    decision: Decision,
}

#[derive(Debug)]
enum Inner<T> {
    Cpu(CpuAttentionPlan<T>),
}

impl<T> AutoAttentionPlan<T> {
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
            BackendKind::Cpu => Inner::Cpu(self.cpu.plan_attention(spec, mask)?),
            other => return Err(not_present(other, "attention")),
        };
        Ok(AutoAttentionPlan { inner, decision })
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
            Inner::Cpu(p) => self.cpu.attention_host(p, q, k, v, o, lse),
        }
    }
}
