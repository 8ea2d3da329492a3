//! Attention through `Auto`: the decision and the chosen backend's plan.

use super::buffer::reserve_stage;
use super::eigh::{needs_auto_staging, needs_host_staging};
use super::member::{inner_plan, on_plan, plan_on, AttentionPlans, Member};
use super::queue::{not_in_place, AutoQueue, QueueMember};
use super::{Auto, AutoBuffer};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::backends::cpu::CpuAttentionPlan;
#[cfg(feature = "cuda")]
use crate::backends::cuda::CudaAttentionPlan;
#[cfg(feature = "wgpu")]
use crate::backends::wgpu::WgpuAttentionPlan;
use crate::cost::{AttentionWork, Decision, Residency};
use crate::{BackendKind, PlanFootprint, Result};

/// An attention plan of [`Auto`]: the chosen backend's own plan, and host copies of Q, K, V,
/// O and LSE for buffers that live on another backend (allocated with the plan when it is
/// made for data there, or by [`Auto::prepare_attention_staging`]; see
/// [`Auto::plan_attention_for`]).
#[derive(Debug)]
pub struct AutoAttentionPlan<T: AttentionElement> {
    inner: Inner<T>,
    stage: Box<Staging<T>>,
    decision: Decision,
}

// A plan is made once and lives as long as its user keeps it: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner<T: AttentionElement> {
    Cpu(CpuAttentionPlan<T>),
    #[cfg(feature = "cuda")]
    Cuda(CudaAttentionPlan<T>),
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuAttentionPlan<T>),
}

/// Host copies of Q, K, V, O and LSE, and their lengths once reserved.
#[derive(Debug)]
struct Staging<T> {
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    o: Vec<T>,
    lse: Vec<f32>,
    /// Elements of Q (and O), K (and V), LSE.
    lens: (usize, usize, usize),
}

impl<T> Staging<T> {
    fn reserve(&mut self) {
        let (q, kv, lse) = self.lens;
        reserve_stage(&mut self.q, q);
        reserve_stage(&mut self.k, kv);
        reserve_stage(&mut self.v, kv);
        reserve_stage(&mut self.o, q);
        reserve_stage(&mut self.lse, lse);
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

/// The operands of one attention call.
struct Operands<'a, T: AttentionElement> {
    q: &'a AutoBuffer<T>,
    k: &'a AutoBuffer<T>,
    v: &'a AutoBuffer<T>,
    o: &'a mut AutoBuffer<T>,
    lse: Option<&'a mut AutoBuffer<f32>>,
}

/// Runs `plan` of `backend` in place when every buffer is the backend's own, else through
/// host memory (host buffers directly, other devices' buffers copied via `stage`).
/// Runs `plan` of `backend` on `queue`, every buffer being the backend's own.
fn run_on<B: QueueMember + SparseAttention<T>, T: AttentionElement>(
    backend: &B,
    queue: &AutoQueue,
    plan: &mut B::AttentionPlan,
    ops: Operands<'_, T>,
) -> Result<()> {
    let queue = B::own_queue(queue)?;
    let Operands { q, k, v, o, lse } = ops;
    let (Some(q), Some(k), Some(v), Some(o)) = (B::own(q), B::own(k), B::own(v), B::own_mut(o))
    else {
        return Err(not_in_place());
    };
    let lse = match lse {
        Some(l) => Some(B::own_mut(l).ok_or_else(not_in_place)?),
        None => None,
    };
    backend.attention_on(queue, plan, q, k, v, o, lse)
}

fn run<B: Member + SparseAttention<T>, T: AttentionElement>(
    auto: &Auto,
    backend: &B,
    plan: &mut B::AttentionPlan,
    s: &mut Staging<T>,
    ops: Operands<'_, T>,
) -> Result<()> {
    let Operands { q, k, v, o, lse } = ops;
    let lse_own = lse.as_deref().is_none_or(|l| B::own(l).is_some());
    if Auto::all_own::<B, T>(&[Some(q), Some(k), Some(v), Some(o)]) && lse_own {
        let (q, k, v) = (
            B::own(q).expect("checked by all_own"),
            B::own(k).expect("checked by all_own"),
            B::own(v).expect("checked by all_own"),
        );
        let o = B::own_mut(o).expect("checked by all_own");
        let lse = lse.map(|l| B::own_mut(l).expect("checked above"));
        return backend.attention(plan, q, k, v, o, lse);
    }
    let (q_host, k_host, v_host) = (
        auto.read_host(q, &mut s.q, "q")?,
        auto.read_host(k, &mut s.k, "k")?,
        auto.read_host(v, &mut s.v, "v")?,
    );
    let o_host = Auto::write_host(o, &mut s.o, "o")?;
    match lse {
        None => {
            backend.attention_host(plan, q_host, k_host, v_host, o_host, None)?;
            auto.finish_write(o, &s.o)
        }
        Some(l) => {
            let l_host = Auto::write_host(l, &mut s.lse, "lse")?;
            backend.attention_host(plan, q_host, k_host, v_host, o_host, Some(l_host))?;
            auto.finish_write(o, &s.o)?;
            auto.finish_write(l, &s.lse)
        }
    }
}

impl Auto {
    /// Predicted time per backend for an attention call of dtype `T` with its tensors on
    /// `residency` (see [`AttentionWork`] for what the model counts), and the pick
    /// [`Auto::plan_attention_for`] would make.
    ///
    /// # Errors
    /// As [`AttentionSpec::lens_for`].
    pub fn explain_attention<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        residency: Residency,
    ) -> Result<Decision> {
        let work = AttentionWork::of::<T>(spec, mask)?;
        Ok(self.decide(|backend| {
            self.model
                .predict_attention(backend, T::DTYPE, &work, residency)
        }))
    }

    /// Makes an attention plan on the backend the cost model picks for tensors on
    /// `residency` ([`SparseAttention::plan_attention`] assumes host tensors), with
    /// everything calls whose buffers all live on `residency` need, as
    /// [`Auto::plan_eigh_for`] says: a CUDA plan without host staging for tensors on CUDA
    /// (wgpu attention plans always have theirs), with it for host tensors, and `Auto`'s host
    /// copies of Q, K, V, O and LSE too for tensors on another device. Calls with buffers
    /// elsewhere need [`Auto::prepare_attention_staging`] first
    /// ([`crate::Error::PlanMismatch`] without).
    ///
    /// # Errors
    /// As the chosen backend's `plan_attention`; [`crate::Error::Unsupported`] if a forced
    /// backend cannot run the spec (for example bf16 on wgpu).
    pub fn plan_attention_for<T: AttentionElement>(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
        residency: Residency,
    ) -> Result<AutoAttentionPlan<T>> {
        let decision = self.explain_attention::<T>(spec, mask, residency)?;
        let (inner, decision) = self.plan_first(decision, |kind| {
            let host = needs_host_staging(kind, residency);
            Ok(plan_on!(self, kind, "attention", |b| b
                .plan_attention_staged(spec, mask, host)?))
        })?;
        let mut plan = AutoAttentionPlan {
            inner,
            stage: Box::new(Staging {
                q: Vec::new(),
                k: Vec::new(),
                v: Vec::new(),
                o: Vec::new(),
                lse: Vec::new(),
                lens: spec.lens_for(mask)?,
            }),
            decision,
        };
        if needs_auto_staging(plan.decision.chosen, residency) {
            plan.stage.reserve();
        }
        Ok(plan)
    }

    /// Makes `plan` ready for calls with buffers in any place, as
    /// [`Auto::prepare_eigh_staging`] does for eigh: the backend's host staging and `Auto`'s
    /// host copies of Q, K, V, O and LSE.
    ///
    /// # Errors
    /// [`crate::Error::Device`] if an allocation fails; [`crate::Error::Unsupported`] if the
    /// plan's backend is gone from this `Auto`.
    pub fn prepare_attention_staging<T: AttentionElement>(
        &self,
        plan: &mut AutoAttentionPlan<T>,
    ) -> Result<()> {
        on_plan!(self, &mut plan.inner, |b, p| b.stage_attention_host(p))?;
        plan.stage.reserve();
        Ok(())
    }
}

impl<T: AttentionElement> SparseAttention<T> for Auto {
    type AttentionPlan = AutoAttentionPlan<T>;

    fn plan_attention(
        &self,
        spec: &AttentionSpec,
        mask: &BlockMask,
    ) -> Result<AutoAttentionPlan<T>> {
        self.plan_attention_for(spec, mask, Residency::Host)
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
        let stage = &mut plan.stage;
        let ops = Operands { q, k, v, o, lse };
        on_plan!(self, &mut plan.inner, |b, p| run(self, b, p, stage, ops))
    }

    fn attention_on(
        &self,
        queue: &AutoQueue,
        plan: &mut AutoAttentionPlan<T>,
        q: &AutoBuffer<T>,
        k: &AutoBuffer<T>,
        v: &AutoBuffer<T>,
        o: &mut AutoBuffer<T>,
        lse: Option<&mut AutoBuffer<f32>>,
    ) -> Result<()> {
        let ops = Operands { q, k, v, o, lse };
        on_plan!(self, &mut plan.inner, |b, p| run_on(b, queue, p, ops))
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
        on_plan!(self, &mut plan.inner, |b, p| b
            .attention_host(p, q, k, v, o, lse))
    }
}

impl<T: AttentionElement> Inner<T> {
    /// The chosen backend's plan, as a [`PlanFootprint`].
    fn footprint(&self) -> &dyn PlanFootprint {
        inner_plan!(self, |p| p)
    }
}

impl<T: AttentionElement> PlanFootprint for AutoAttentionPlan<T> {
    /// The chosen backend's plan's, plus the host copies of Q, K, V, O and LSE for buffers of
    /// another backend, once reserved (made for data on another device, or
    /// [`Auto::prepare_attention_staging`]).
    fn scratch_bytes(&self) -> usize {
        let s = &self.stage;
        let stage = (s.q.capacity() + s.k.capacity() + s.v.capacity() + s.o.capacity())
            * std::mem::size_of::<T>()
            + s.lse.capacity() * std::mem::size_of::<f32>();
        self.inner.footprint().scratch_bytes() + stage
    }

    /// The chosen backend's plan's.
    fn device_bytes(&self) -> usize {
        self.inner.footprint().device_bytes()
    }
}
