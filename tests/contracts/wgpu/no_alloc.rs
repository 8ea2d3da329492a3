//! The plan/execute contract on wgpu, as far as wgpu allows: after planning and a warm-up call,
//! execute calls create no buffers, pipelines or bind groups (megabatch's own code allocates
//! nothing), but wgpu itself allocates host memory on every submission (command encoder and
//! buffer, the tracker's per-submission state, map callbacks). So the test asserts that the
//! host allocations of a call do not grow with the problem: the same count for a batch of 16
//! matrices and of 4,096, for 100,000 and 4,000,000 reduced elements, across repeated calls
//! (measured on lavapipe: 49 per eigh call, 94 per reduction with its scalar readback).
//! Skips without an adapter unless `MEGABATCH_REQUIRE_WGPU=1`.
#![cfg(feature = "wgpu")]

use crate::common;

use std::sync::atomic::Ordering;

use common::counting_alloc::ALLOCATIONS;
use megabatch::backends::wgpu::Wgpu;
use megabatch::{Backend, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer};

/// Host allocations of each of `calls` calls of `f` after a warm-up call (the minimum and
/// the maximum over the calls).
fn allocations_per_call(calls: usize, mut f: impl FnMut()) -> (usize, usize) {
    f();
    let mut lo = usize::MAX;
    let mut hi = 0;
    for _ in 0..calls {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        f();
        let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
        lo = lo.min(n);
        hi = hi.max(n);
    }
    (lo, hi)
}

fn eigh_allocations(gpu: &Wgpu, batch: usize) -> (usize, usize) {
    let n = 8;
    let a: Vec<f32> = (0..n * n * batch).map(|i| (i % 7) as f32).collect();
    let mut a_dev = gpu.alloc::<f32>(a.len()).unwrap();
    gpu.upload(&a, &mut a_dev).unwrap();
    let mut w = gpu.alloc::<f32>(n * batch).unwrap();
    let mut v = gpu.alloc::<f32>(a.len()).unwrap();
    let mut plan =
        BatchedEigh::<f32>::plan_eigh(gpu, &EighSpec::uniform(n, batch).with_vectors(true))
            .unwrap();
    allocations_per_call(20, || {
        gpu.eigh(&mut plan, &a_dev, &mut w, Some(&mut v)).unwrap();
        gpu.synchronize().unwrap();
    })
}

fn reduce_allocations(gpu: &Wgpu, len: usize) -> (usize, usize) {
    let x: Vec<f32> = (0..len).map(|i| i as f32).collect();
    let mut x_dev = gpu.alloc::<f32>(len).unwrap();
    gpu.upload(&x, &mut x_dev).unwrap();
    let mut out = gpu.alloc::<f32>(1).unwrap();
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len,
    };
    let mut plan = Reducer::<f32>::plan_reduce(gpu, &spec).unwrap();
    allocations_per_call(20, || {
        gpu.reduce(&mut plan, &x_dev, None, &mut out).unwrap();
        std::hint::black_box(Reducer::<f32>::read_scalar(gpu, &out).unwrap());
    })
}

#[test]
fn execute_allocations_do_not_grow_with_the_problem() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let small = eigh_allocations(&gpu, 16);
    let large = eigh_allocations(&gpu, 4096);
    eprintln!("eigh host allocations per call: batch 16 {small:?}, batch 4096 {large:?}");
    assert_eq!(small.1, large.1, "eigh: allocations grow with the batch");
    // Both lengths take the two-dispatch path (partials, then their fold).
    let small = reduce_allocations(&gpu, 100_000);
    let large = reduce_allocations(&gpu, 4_000_000);
    eprintln!("reduce + read_scalar host allocations per call: 1e5 {small:?}, 4e6 {large:?}");
    assert_eq!(small.1, large.1, "reduce: allocations grow with the length");
}
