//! The plan/execute contract on wgpu, as far as wgpu allows: after planning and a warm-up call,
//! execute calls create no buffers, pipelines or bind groups (megabatch's own code allocates
//! nothing), but wgpu itself allocates host memory on every submission (command encoder and
//! buffer, the tracker's per-submission state, map callbacks). So the test asserts that the
//! host allocations of a call do not grow with the problem: the same count for a batch of 16
//! matrices and of 4,096, for 100,000 and 4,000,000 reduced elements, across repeated calls
//! (measured on lavapipe: 49 per eigh call, 94 per reduction with its scalar readback; an
//! eigh bucket of the global layout in waves adds wgpu's allocations per dispatch, 62 for 8
//! waves).
//! The first host call after planning makes no more host allocations than later calls (its
//! staging is made with the plan, or by `prepare_*_host` / `Auto::prepare_*_staging`).
//! Skips without an adapter unless `MEGABATCH_REQUIRE_WGPU=1`.
#![cfg(feature = "wgpu")]

use crate::common;

use std::sync::atomic::Ordering;

use common::counting_alloc::ALLOCATIONS;
use megabatch::backends::wgpu::Wgpu;
use megabatch::{Backend, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer};

/// The allocation counter is process-wide: the tests here take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

fn eigh_allocations(gpu: &Wgpu, n: usize, batch: usize) -> (usize, usize) {
    let a: Vec<f32> = (0..n * n * batch).map(|i| (i % 7) as f32).collect();
    let mut a_dev = gpu.alloc::<f32>(a.len()).unwrap();
    gpu.upload(&a, &mut a_dev).unwrap();
    let mut w = gpu.alloc::<f32>(n * batch).unwrap();
    let mut v = gpu.alloc::<f32>(a.len()).unwrap();
    let mut plan = gpu
        .plan_eigh(&EighSpec::uniform(n, batch).with_vectors(true))
        .unwrap();
    // On an adapter with subgroups (lavapipe has them) both orders run the subgroup layout.
    let subgroup = plan.shaders()[0].starts_with("eigh_subgroup/");
    assert_eq!(subgroup, gpu.adapter().subgroups, "{:?}", plan.shaders());
    allocations_per_call(20, || {
        gpu.eigh(&mut plan, &a_dev, &mut w, Some(&mut v)).unwrap();
        gpu.synchronize().unwrap();
    })
}

/// As [`eigh_allocations`] on the global-memory layout (forced), with room in its workspace
/// for `slots` matrices: a batch with more runs as waves of dispatches.
fn eigh_global_allocations(gpu: &Wgpu, n: usize, batch: usize, slots: usize) -> (usize, usize) {
    use megabatch::backends::wgpu::WgpuEighAlgorithm;
    let a: Vec<f32> = (0..n * n * batch).map(|i| (i % 7) as f32).collect();
    let mut a_dev = gpu.alloc::<f32>(a.len()).unwrap();
    gpu.upload(&a, &mut a_dev).unwrap();
    let mut w = gpu.alloc::<f32>(n * batch).unwrap();
    let mut v = gpu.alloc::<f32>(a.len()).unwrap();
    gpu.set_eigh_workspace_budget(slots * n * n * 4);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = gpu
        .plan_eigh_device::<f32>(&spec, WgpuEighAlgorithm::TridiagGlobal)
        .unwrap();
    assert!(plan.shaders()[0].starts_with("eigh_global/"));
    assert_eq!(plan.dispatch_count(), batch.div_ceil(slots));
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
    let mut plan = gpu.plan_reduce(&spec).unwrap();
    allocations_per_call(20, || {
        gpu.reduce(&mut plan, &x_dev, None, &mut out).unwrap();
        std::hint::black_box(gpu.read_scalar(&out).unwrap());
    })
}

#[test]
fn execute_allocations_do_not_grow_with_the_problem() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    for n in [8, 40] {
        let small = eigh_allocations(&gpu, n, 16);
        let large = eigh_allocations(&gpu, n, 4096);
        eprintln!("eigh n {n} host allocations per call: batch 16 {small:?}, batch 4096 {large:?}");
        assert_eq!(
            small.1, large.1,
            "eigh n {n}: allocations grow with the batch"
        );
    }
    // The global layout: one dispatch for either batch; then 8 waves of 16 matrices (wgpu
    // allocates per dispatch recorded: more than one dispatch's, but no more for a larger
    // problem in as many waves). Small batches: lavapipe runs one matrix per workgroup slowly.
    let small = eigh_global_allocations(&gpu, 8, 16, 128);
    let large = eigh_global_allocations(&gpu, 8, 128, 128);
    let waves = eigh_global_allocations(&gpu, 8, 128, 16);
    let larger_waves = eigh_global_allocations(&gpu, 12, 128, 16);
    eprintln!(
        "eigh global host allocations per call: n 8 batch 16 {small:?}, batch 128 {large:?}, \
         8 waves {waves:?}, n 12 8 waves {larger_waves:?}"
    );
    assert_eq!(
        small.1, large.1,
        "eigh global: allocations grow with the batch"
    );
    assert_eq!(
        waves.1, larger_waves.1,
        "eigh global in waves: allocations grow with n"
    );
    // Both lengths take the two-dispatch path (partials, then their fold).
    let small = reduce_allocations(&gpu, 100_000);
    let large = reduce_allocations(&gpu, 4_000_000);
    eprintln!("reduce + read_scalar host allocations per call: 1e5 {small:?}, 4e6 {large:?}");
    assert_eq!(small.1, large.1, "reduce: allocations grow with the length");
}

/// Host allocations wgpu makes the first time a submission uses resources it has not seen
/// (its trackers grow per resource; measured on lavapipe: 11 for an eigh host call's five
/// buffers), not megabatch's: a first call may exceed later ones by this much, and making a
/// plan's host staging costs several times more (checked below), so a first call that made
/// it would fail.
const FIRST_USE: usize = 16;

/// Host allocations of `f`'s first call, and the most of its next five.
fn first_and_later(mut f: impl FnMut()) -> (usize, usize) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    let first = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let (_, later) = allocations_per_call(5, &mut f);
    (first, later)
}

/// The first host call of a fresh plan allocates no more than its later calls (wgpu's own
/// per-submission allocations, measured above): host staging comes with the trait's plans,
/// with `prepare_*_host` for `plan_*_device` plans, and with `Auto`'s plans for their
/// residency or `Auto::prepare_*_staging`. (Before, a first host call created its buffers and
/// bind groups.)
#[test]
fn first_host_calls_allocate_no_more_than_later_ones() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    use megabatch::backends::cpu::Cpu;
    use megabatch::backends::wgpu::WgpuEighAlgorithm;
    use megabatch::{AttentionSpec, BlockMask, SparseAttention};
    use megabatch::{Auto, BackendKind, Residency};
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let check = |what: &str, (first, later): (usize, usize)| {
        eprintln!("{what}: first call {first} host allocations, later calls at most {later}");
        assert!(
            first <= later + FIRST_USE,
            "{what}: the first call allocates more than later ones"
        );
    };
    // What making the host staging costs, which the first call would pay if it made it.
    let staging_cost = |what: &str, make: &mut dyn FnMut()| {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        make();
        let cost = ALLOCATIONS.load(Ordering::SeqCst) - before;
        eprintln!("{what}: {cost} host allocations");
        assert!(cost > 2 * FIRST_USE, "{what}: {cost}");
    };
    let (n, batch) = (8, 64);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let a: Vec<f32> = (0..n * n * batch).map(|i| (i % 7) as f32).collect();
    let (mut w, mut v) = (vec![0.0f32; n * batch], vec![0.0f32; a.len()]);
    let mut info = vec![0i32; batch];
    // wgpu's own first-use state (pipelines of the spec, the queue's pools), warmed on a
    // plan of its own.
    let mut warm = gpu.plan_eigh(&spec).unwrap();
    gpu.eigh_host(&mut warm, &a, &mut w, Some(&mut v)).unwrap();
    gpu.eigh_info(&mut warm, &mut info).unwrap();

    let mut plan = gpu.plan_eigh(&spec).unwrap();
    check(
        "eigh_host",
        first_and_later(|| gpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap()),
    );
    check(
        "eigh_info",
        first_and_later(|| gpu.eigh_info(&mut plan, &mut info).unwrap()),
    );
    let mut plan = gpu
        .plan_eigh_device::<f32>(&spec, WgpuEighAlgorithm::SizeClasses)
        .unwrap();
    staging_cost("prepare_eigh_host", &mut || {
        gpu.prepare_eigh_host(&mut plan).unwrap()
    });
    check(
        "eigh_host after prepare_eigh_host",
        first_and_later(|| gpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap()),
    );

    let x: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
    let mut out = [0.0f32];
    let sum = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: x.len(),
    };
    let mut warm = gpu.plan_reduce(&sum).unwrap();
    gpu.reduce_host(&mut warm, &x, None, &mut out).unwrap();
    let mut plan = gpu.plan_reduce(&sum).unwrap();
    check(
        "reduce_host",
        first_and_later(|| gpu.reduce_host(&mut plan, &x, None, &mut out).unwrap()),
    );
    let mut plan = gpu.plan_reduce_device::<f32>(&sum).unwrap();
    staging_cost("prepare_reduce_host", &mut || {
        gpu.prepare_reduce_host(&mut plan).unwrap()
    });
    check(
        "reduce_host after prepare_reduce_host",
        first_and_later(|| gpu.reduce_host(&mut plan, &x, None, &mut out).unwrap()),
    );

    let att = AttentionSpec::self_attention(2, 64, 32);
    let mask = BlockMask::causal(64, 64, (32, 32)).unwrap();
    let (q_len, _, lse_len) = att.lens().unwrap();
    let q = vec![0.25f32; q_len];
    let (mut o, mut lse) = (vec![0.0f32; q_len], vec![0.0f32; lse_len]);
    let mut warm = gpu.plan_attention(&att, &mask).unwrap();
    gpu.attention_host(&mut warm, &q, &q, &q, &mut o, Some(&mut lse))
        .unwrap();
    let mut plan = gpu.plan_attention(&att, &mask).unwrap();
    check(
        "attention_host",
        first_and_later(|| {
            gpu.attention_host(&mut plan, &q, &q, &q, &mut o, Some(&mut lse))
                .unwrap()
        }),
    );

    // Auto: a wgpu plan for host data; a CPU plan for data on wgpu, through Auto's copies.
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap()).add_wgpu(gpu.clone());
    let on_wgpu = auto.clone().force(BackendKind::Wgpu).unwrap();
    let mut plan = on_wgpu
        .plan_eigh_for::<f32>(&spec, Residency::Host)
        .unwrap();
    check(
        "Auto (wgpu) eigh_host",
        first_and_later(|| {
            on_wgpu
                .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
                .unwrap()
        }),
    );
    let on_cpu = auto.clone().force(BackendKind::Cpu).unwrap();
    let mut a_dev = auto.alloc_on::<f32>(BackendKind::Wgpu, a.len()).unwrap();
    auto.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = auto.alloc_on::<f32>(BackendKind::Wgpu, w.len()).unwrap();
    let mut v_dev = auto.alloc_on::<f32>(BackendKind::Wgpu, v.len()).unwrap();
    let on_wgpu_data = Residency::Device(BackendKind::Wgpu);
    let mut warm = on_cpu.plan_eigh_for::<f32>(&spec, on_wgpu_data).unwrap();
    on_cpu
        .eigh(&mut warm, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    let mut plan = on_cpu.plan_eigh_for::<f32>(&spec, on_wgpu_data).unwrap();
    check(
        "Auto (CPU) eigh on wgpu buffers",
        first_and_later(|| {
            on_cpu
                .eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
                .unwrap()
        }),
    );
    let mut plan = on_cpu.plan_eigh(&spec).unwrap();
    on_cpu.prepare_eigh_staging(&mut plan).unwrap();
    check(
        "Auto (CPU) eigh on wgpu buffers after prepare_eigh_staging",
        first_and_later(|| {
            on_cpu
                .eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
                .unwrap()
        }),
    );
}
