//! `PlanFootprint` on the CUDA backend: device bytes cover the tables, status word and
//! per-matrix status a spec implies, and the host path's buffers are counted exactly: made with
//! the trait's plans, absent from `plan_*_device`'s until `prepare_*_host`. Skips without a
//! device unless `MEGABATCH_REQUIRE_CUDA=1`.

use crate::common;

use megabatch::backends::cuda::{AttentionOptions, Cuda, CudaEighAlgorithm};
use megabatch::{
    AttentionPlan, AttentionSpec, BatchedEigh, BlockMask, EighPlan, EighSpec, PlanFootprint,
    ReduceOp, ReducePlan, ReduceSpec, Reducer, SparseAttention,
};

#[test]
fn eigh_device_bytes_cover_tables_status_and_the_host_path_when_made() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let sizes = vec![3, 0, 17, 5, 17, 1];
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let mut plan = cuda
        .plan_eigh_device::<f64>(&spec, CudaEighAlgorithm::SizeClasses)
        .unwrap();
    assert!(!plan.has_host_staging());
    // Tables: a_start and w_start (u64) and order (i32) per matrix, one i32 per non-empty
    // matrix in the launch lists; status: two i32; info: one i32 per matrix.
    let before = plan.device_bytes();
    assert!(before >= sizes.len() * 24 + 5 * 4 + 8, "{before}");
    // The pinned status word.
    assert_eq!(plan.scratch_bytes(), 8);
    cuda.prepare_eigh_host(&mut plan).unwrap();
    assert!(plan.has_host_staging());
    let a_len: usize = sizes.iter().map(|n| n * n).sum();
    let w_len: usize = sizes.iter().sum();
    let arrays = 8 * (2 * a_len + w_len);
    assert_eq!(plan.device_bytes() - before, arrays);
    // Pinned mirrors below `DIRECT_STAGING_BYTES` (unless the environment says otherwise).
    let mirrors = plan.scratch_bytes() - 8;
    assert!(mirrors == arrays || mirrors == 0, "{mirrors}");
    // The trait's plan has the same, from the start.
    let full: EighPlan<Cuda, f64> = cuda.plan_eigh(&spec).unwrap();
    assert!(full.has_host_staging());
    assert_eq!(full.device_bytes(), plan.device_bytes());
    assert_eq!(full.scratch_bytes(), plan.scratch_bytes());
}

#[test]
fn reduce_and_attention_device_bytes_cover_their_buffers() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let len = 1001;
    let spec = ReduceSpec::Full {
        op: ReduceOp::Dot,
        len,
    };
    let mut plan = cuda.plan_reduce_device::<f32>(&spec).unwrap();
    let before = plan.device_bytes();
    // At least the output (one f32).
    assert!(before >= 4, "{before}");
    assert_eq!(plan.scratch_bytes(), 4);
    let x = vec![1.0f32; len];
    let mut out = [0.0f32];
    let err = cuda
        .reduce_host(&mut plan, &x, Some(&x), &mut out)
        .unwrap_err();
    assert!(matches!(err, megabatch::Error::PlanMismatch(_)), "{err:?}");
    cuda.prepare_reduce_host(&mut plan).unwrap();
    assert_eq!(plan.device_bytes() - before, 4 * (2 * len + 1));
    assert_eq!(plan.scratch_bytes(), 4 + 4 * (2 * len + 1));
    cuda.reduce_host(&mut plan, &x, Some(&x), &mut out).unwrap();
    assert_eq!(out[0], len as f32);
    let full: ReducePlan<Cuda, f32> = cuda.plan_reduce(&spec).unwrap();
    assert_eq!(full.device_bytes(), plan.device_bytes());
    assert_eq!(full.scratch_bytes(), plan.scratch_bytes());

    let spec = AttentionSpec::self_attention(2, 64, 32);
    let mask = BlockMask::causal(64, 64, (16, 16)).unwrap();
    let mut plan = cuda
        .plan_attention_device::<f32>(&spec, &mask, AttentionOptions::default())
        .unwrap();
    assert_eq!(plan.scratch_bytes(), 0);
    let before = plan.device_bytes();
    assert!(before >= 4, "{before}");
    let q = vec![0.5f32; 2 * 64 * 32];
    let mut o = vec![0.0f32; q.len()];
    let mut lse = vec![0.0f32; 2 * 64];
    let err = cuda
        .attention_host(&mut plan, &q, &q, &q, &mut o, Some(&mut lse))
        .unwrap_err();
    assert!(matches!(err, megabatch::Error::PlanMismatch(_)), "{err:?}");
    cuda.prepare_attention_host(&mut plan).unwrap();
    let staged = 4 * (4 * q.len() + lse.len());
    assert_eq!(plan.device_bytes() - before, staged);
    assert_eq!(plan.scratch_bytes(), staged);
    cuda.attention_host(&mut plan, &q, &q, &q, &mut o, Some(&mut lse))
        .unwrap();
    let full: AttentionPlan<Cuda, f32> = cuda.plan_attention(&spec, &mask).unwrap();
    assert_eq!(full.device_bytes(), plan.device_bytes());
    assert_eq!(full.scratch_bytes(), plan.scratch_bytes());
}
