//! The plan/execute contract: after planning, `eigh`, `reduce` and `attention` perform no heap
//! allocation,
//! with the worker threads on. A counting global allocator sees every allocation in the
//! process, so both scenarios run inside one test, one after the other.

use crate::common;

use std::sync::atomic::Ordering;

use common::counting_alloc::ALLOCATIONS;

use half::{bf16, f16};
use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionSpec, Auto, BatchedEigh, BlockMask, EighSpec, ReduceOp, ReduceSpec, Reducer,
    RowReduceOp, SegmentReduceOp, SparseAttention,
};

/// Orders 1..=72 mixed (both the QL kernel and the faer path), some matrices repeated so the
/// batch is big enough to run on all threads.
fn mixed_batch(seed: u64) -> (Vec<usize>, Vec<f64>) {
    let mut rng = common::rng(seed);
    let mut sizes = Vec::new();
    let mut a = Vec::new();
    for round in 0..2 {
        for n in 1..=72 {
            if (n + round) % 4 == 0 || n == 48 {
                sizes.push(n);
                a.extend(common::random_dense(n, &mut rng));
            }
        }
    }
    (sizes, a)
}

#[test]
fn execute_calls_allocate_nothing() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    one_thousand_eigh_calls_allocate_nothing();
    one_thousand_reductions_allocate_nothing();
    one_thousand_attention_calls_allocate_nothing();
}

fn one_thousand_attention_calls_allocate_nothing() {
    let cpu = Cpu::with_threads(4).unwrap();
    let spec = AttentionSpec {
        batch: 2,
        heads_q: 4,
        heads_kv: 2,
        seq_q: 100,
        seq_kv: 130,
        head_dim: 32,
        scale: None,
    };
    let (ql, kvl, lsel) = spec.lens().unwrap();
    let causal = BlockMask::causal(100, 130, (32, 16)).unwrap();
    let window = BlockMask::sliding_window(100, 130, (16, 64), 20).unwrap();
    let q: Vec<f32> = (0..ql).map(|i| (i % 13) as f32 * 0.1).collect();
    let kv: Vec<f32> = (0..kvl).map(|i| (i % 7) as f32 * 0.2 - 0.5).collect();
    let qh: Vec<bf16> = q.iter().map(|&x| bf16::from_f32(x)).collect();
    let kvh: Vec<bf16> = kv.iter().map(|&x| bf16::from_f32(x)).collect();
    let mut p1 = cpu.plan_attention(&spec, &causal).unwrap();
    let mut p2 = cpu.plan_attention(&spec, &window).unwrap();
    let (mut o, mut oh, mut lse) = (vec![0.0f32; ql], vec![bf16::ZERO; ql], vec![0.0f32; lsel]);
    let mut round = || {
        cpu.attention_host(&mut p1, &q, &kv, &kv, &mut o, Some(&mut lse))
            .unwrap();
        cpu.attention_host(&mut p2, &qh, &kvh, &kvh, &mut oh, None)
            .unwrap();
    };
    round();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..500 {
        round();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{} allocations in 1000 attention calls",
        after - before
    );
}

fn one_thousand_reductions_allocate_nothing() {
    let cpu = Cpu::with_threads(4).unwrap();
    let n = 1 << 20;
    let x: Vec<f64> = (0..n).map(|i| (i % 1000) as f64 * 1e-3 - 0.5).collect();
    let y: Vec<f64> = x.iter().map(|v| v * 0.5).collect();
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f64(v)).collect();
    let offsets: Vec<usize> = (0..=1000).map(|i| i * 1000).collect();
    let rows = n / 7;
    let mut full: Vec<_> = [
        ReduceOp::Sum,
        ReduceOp::Dot,
        ReduceOp::Max,
        ReduceOp::MaxRelDiff,
    ]
    .into_iter()
    .map(|op| {
        (
            op,
            cpu.plan_reduce(&ReduceSpec::Full { op, len: n }).unwrap(),
        )
    })
    .collect();
    let mut rows_plan = cpu
        .plan_reduce(&ReduceSpec::Rows {
            op: RowReduceOp::WeightedMean,
            rows,
            cols: 7,
        })
        .unwrap();
    let mut seg_plan = cpu
        .plan_reduce(&ReduceSpec::Segments {
            op: SegmentReduceOp::Sum,
            offsets: offsets.clone(),
        })
        .unwrap();
    let mut half_plan = cpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: n,
        })
        .unwrap();
    let (mut out1, mut out7, mut out_seg, mut out_half) =
        (vec![0.0; 1], vec![0.0; 7], vec![0.0; 1000], vec![0.0f32; 1]);
    let mut round = |count: &mut usize| {
        for (op, plan) in &mut full {
            let two = matches!(op, ReduceOp::Dot | ReduceOp::MaxRelDiff);
            cpu.reduce_host(plan, &x, two.then_some(&y[..]), &mut out1)
                .unwrap();
            *count += 1;
        }
        cpu.reduce_host(&mut rows_plan, &x[..rows * 7], Some(&y[..rows]), &mut out7)
            .unwrap();
        cpu.reduce_host(&mut seg_plan, &x[..offsets[1000]], None, &mut out_seg)
            .unwrap();
        cpu.reduce_host(&mut half_plan, &xh, None, &mut out_half)
            .unwrap();
        *count += 3;
    };
    let mut calls = 0;
    round(&mut calls);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    calls = 0;
    while calls < 1000 {
        round(&mut calls);
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{} allocations in {calls} reduce calls",
        after - before
    );
}

fn one_thousand_eigh_calls_allocate_nothing() {
    let (sizes, a) = mixed_batch(7);
    let cpu = Cpu::with_threads(4).unwrap();
    let auto = Auto::with_cpu(Cpu::with_threads(3).unwrap());
    let mut cases = Vec::new();
    for vectors in [true, false] {
        let spec = EighSpec::ragged(sizes.clone()).with_vectors(vectors);
        let off = spec.offsets(8).unwrap();
        let plan = cpu.plan_eigh(&spec).unwrap();
        let auto_plan = auto.plan_eigh(&spec).unwrap();
        cases.push((
            plan,
            auto_plan,
            vec![0.0; off.w_len()],
            vectors.then(|| vec![0.0; off.a_len()]),
        ));
    }
    // Large orders (faer path), called less often to keep the test quick.
    let big_sizes = vec![300, 5, 512, 100, 64];
    let big = EighSpec::ragged(big_sizes.clone()).with_vectors(true);
    let big_off = big.offsets(8).unwrap();
    let mut big_plan = cpu.plan_eigh(&big).unwrap();
    let mut big_rng = common::rng(11);
    let big_a: Vec<f64> = big_sizes
        .iter()
        .flat_map(|&n| common::random_dense(n, &mut big_rng))
        .collect();
    let (mut big_w, mut big_v) = (vec![0.0; big_off.w_len()], vec![0.0; big_off.a_len()]);

    let small = EighSpec::uniform(4, 3).with_vectors(true);
    let mut small_plan = cpu.plan_eigh(&small).unwrap();
    // Several simulated devices: the parts' threads and the split add no allocation.
    let multi =
        megabatch::backends::multi::Multi::new(vec![Cpu::with_threads(1).unwrap(); 3]).unwrap();
    let multi_spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let mut multi_plan = multi.plan_eigh(&multi_spec).unwrap();
    let multi_off = multi_spec.offsets(8).unwrap();
    let (mut multi_w, mut multi_v) = (vec![0.0; multi_off.w_len()], vec![0.0; multi_off.a_len()]);
    let small_a: Vec<f32> = (0..48).map(|i| (i % 7) as f32).collect();
    let (mut small_w, mut small_v) = (vec![0.0f32; 12], vec![0.0f32; 48]);

    // Warm-up: first-use initialisation (thread-locals, lazily started workers) is not per call.
    for (plan, auto_plan, w, v) in &mut cases {
        cpu.eigh_host(plan, &a, w, v.as_deref_mut()).unwrap();
        auto.eigh_host(auto_plan, &a, w, v.as_deref_mut()).unwrap();
    }
    cpu.eigh_host(&mut small_plan, &small_a, &mut small_w, Some(&mut small_v))
        .unwrap();
    multi
        .eigh_host(&mut multi_plan, &a, &mut multi_w, Some(&mut multi_v))
        .unwrap();

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut calls = 0;
    while calls < 1000 {
        if calls % 200 == 0 {
            cpu.eigh_host(&mut big_plan, &big_a, &mut big_w, Some(&mut big_v))
                .unwrap();
            calls += 1;
        }
        for (plan, auto_plan, w, v) in &mut cases {
            cpu.eigh_host(plan, &a, w, v.as_deref_mut()).unwrap();
            auto.eigh_host(auto_plan, &a, w, v.as_deref_mut()).unwrap();
            calls += 2;
        }
        cpu.eigh_host(&mut small_plan, &small_a, &mut small_w, Some(&mut small_v))
            .unwrap();
        calls += 1;
        if calls % 50 < 6 {
            multi
                .eigh_host(&mut multi_plan, &a, &mut multi_w, Some(&mut multi_v))
                .unwrap();
            calls += 1;
        }
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{} allocations in {calls} eigh calls",
        after - before
    );
    assert!(cases.iter().all(|c| c.2.iter().all(|x| x.is_finite())));
}
