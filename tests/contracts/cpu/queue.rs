//! The CPU's queue: a plan runs on another worker pool with the same bits, refuses a pool with
//! more threads than its scratch serves, and `Auto` runs `_on` calls on its backends' queues.

use crate::common;

use megabatch::backends::cpu::{Cpu, CpuQueue};
use megabatch::{
    Auto, AutoBuffer, AutoQueue, BackendKind, BatchedEigh, EighSpec, Error, ReduceOp, ReduceSpec,
    Reducer,
};

fn batch(n: usize, count: usize) -> Vec<f64> {
    let mut rng = common::rng(11);
    (0..count)
        .flat_map(|_| common::random_dense(n, &mut rng))
        .collect()
}

#[test]
fn a_plan_runs_on_another_pool_with_the_same_bits() {
    let cpu = Cpu::with_threads(4).unwrap();
    let (n, count) = (20, 400);
    let spec = EighSpec::uniform(n, count).with_vectors(true);
    let a = batch(n, count);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let (mut w, mut v) = (vec![0.0; n * count], vec![0.0; a.len()]);
    cpu.eigh(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    for threads in [1, 2, 4] {
        let queue = CpuQueue::with_threads(threads).unwrap();
        let (mut w2, mut v2) = (vec![0.0; n * count], vec![0.0; a.len()]);
        cpu.eigh_on(&queue, &mut plan, &a, &mut w2, Some(&mut v2))
            .unwrap();
        assert_eq!(w, w2, "{threads} threads");
        assert_eq!(v, v2, "{threads} threads");
    }
    // The handle's own pool as a queue.
    let (mut w3, mut v3) = (vec![0.0; n * count], vec![0.0; a.len()]);
    cpu.eigh_on(&cpu.queue(), &mut plan, &a, &mut w3, Some(&mut v3))
        .unwrap();
    assert_eq!(w, w3);
    // More threads than the plan has scratch for: refused, nothing written.
    let wide = CpuQueue::with_threads(6).unwrap();
    let mut w4 = vec![-1.0; n * count];
    let r = cpu.eigh_on(&wide, &mut plan, &a, &mut w4, Some(&mut v3));
    assert!(matches!(r, Err(Error::PlanMismatch(_))), "{r:?}");
    assert!(w4.iter().all(|&x| x == -1.0));
    // Reductions keep no per-thread scratch: any pool.
    let len = 1 << 20;
    let x: Vec<f64> = (0..len).map(|i| (i % 1000) as f64).collect();
    let mut sum = cpu
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len,
        })
        .unwrap();
    let (mut s1, mut s2) = (vec![0.0], vec![0.0]);
    cpu.reduce(&mut sum, &x, None, &mut s1).unwrap();
    cpu.reduce_on(&wide, &mut sum, &x, None, &mut s2).unwrap();
    assert_eq!(s1[0].to_bits(), s2[0].to_bits());
    assert_eq!(s1[0], common::exact_sum(x.iter().copied()));
}

#[test]
fn auto_runs_on_calls_on_the_plans_backend_queue() {
    let auto = Auto::new().unwrap().force(BackendKind::Cpu).unwrap();
    let (n, count) = (6, 10);
    let a = batch(n, count);
    let spec = EighSpec::uniform(n, count);
    let mut plan = auto.plan_eigh(&spec).unwrap();
    let queue = auto.queue_on(BackendKind::Cpu).unwrap();
    assert!(matches!(queue, AutoQueue::Cpu(_)));
    let a_buf = AutoBuffer::from_vec(a.clone());
    let mut w_buf = AutoBuffer::from_vec(vec![0.0; n * count]);
    auto.eigh_on(&queue, &mut plan, &a_buf, &mut w_buf, None)
        .unwrap();
    let mut w = vec![0.0; n * count];
    auto.eigh_host(&mut plan, &a, &mut w, None).unwrap();
    assert_eq!(w_buf.as_host().unwrap(), &w[..]);
}
