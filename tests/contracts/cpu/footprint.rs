//! `PlanFootprint` on the CPU backend and on `Auto` over it: the bytes a plan reports are
//! the sizes its scratch takes, written out here by hand from the arrays each kernel uses.

use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionPlan, AttentionSpec, Auto, AutoAttentionPlan, AutoEighPlan, AutoReducePlan,
    BatchedEigh, BlockMask, EighPlan, EighSpec, PlanFootprint, ReduceOp, ReducePlan, ReduceSpec,
    Reducer, RowReduceOp, SegmentReduceOp, SparseAttention,
};

/// One eigh scratch arena for orders up to `n` below faer's threshold (48): the work matrix,
/// d and e, the lane-group arrays (4 lanes, orders up to 32), the unpacked lane, and the
/// ordering permutation.
fn eigh_arena(n: usize, elem: usize) -> usize {
    let l = n.min(32);
    elem * (n * n + 2 * n + 4 * l * l + 2 * 4 * l + l * l) + std::mem::size_of::<usize>() * n
}

/// faer's workspace for one matrix of order `n` (sequential, default parameters).
fn faer_workspace<T: faer::traits::ComplexField>(n: usize, vectors: bool) -> usize {
    use faer::linalg::evd::{self, ComputeEigenvectors};
    let compute = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    evd::self_adjoint_evd_scratch::<T>(n, compute, faer::Par::Seq, Default::default()).size_bytes()
}

/// The scratch arenas of a plan for `spec`: its footprint without the per-matrix status (one
/// i32 a matrix, checked in `eigh_status_is_four_bytes_a_matrix`).
fn eigh_scratch<T: megabatch::Real>(cpu: &Cpu, spec: &EighSpec) -> usize {
    let plan: EighPlan<Cpu, T> = cpu.plan_eigh(spec).unwrap();
    assert_eq!(plan.device_bytes(), 0);
    plan.scratch_bytes() - 4 * spec.batch()
}

#[test]
fn eigh_status_is_four_bytes_a_matrix() {
    let one = Cpu::with_threads(1).unwrap();
    for batch in [0, 1, 8, 1000] {
        let spec = EighSpec::uniform(20, batch);
        let plan: EighPlan<Cpu, f64> = one.plan_eigh(&spec).unwrap();
        let arenas = if batch == 0 {
            plan.scratch_bytes()
        } else {
            eigh_arena(20, 8)
        };
        assert_eq!(plan.scratch_bytes(), arenas + 4 * batch, "batch {batch}");
        assert_eq!(plan.info().len(), batch);
    }
}

#[test]
fn eigh_scratch_is_one_arena_per_worker_for_the_largest_order() {
    let one = Cpu::with_threads(1).unwrap();
    assert_eq!(eigh_scratch::<f64>(&one, &EighSpec::uniform(20, 8)), 20_960);
    assert_eq!(
        eigh_scratch::<f64>(&one, &EighSpec::uniform(20, 8)),
        eigh_arena(20, 8)
    );
    assert_eq!(
        eigh_scratch::<f32>(&one, &EighSpec::uniform(20, 8)),
        eigh_arena(20, 4)
    );
    for n in [1, 2, 5, 12, 13, 32, 33, 47] {
        for vectors in [false, true] {
            let spec = EighSpec::uniform(n, 3).with_vectors(vectors);
            assert_eq!(eigh_scratch::<f64>(&one, &spec), eigh_arena(n, 8), "n={n}");
        }
    }
    // Ragged: sized by the largest order.
    let ragged = EighSpec::ragged(vec![3, 0, 40, 7]);
    assert_eq!(eigh_scratch::<f64>(&one, &ragged), eigh_arena(40, 8));
    // Grows with the order.
    let sizes: Vec<usize> = [4, 16, 32, 40, 47]
        .iter()
        .map(|&n| eigh_scratch::<f64>(&one, &EighSpec::uniform(n, 2)))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
}

#[test]
fn eigh_scratch_from_order_48_adds_faer_and_its_eigenvectors() {
    let one = Cpu::with_threads(1).unwrap();
    for n in [48, 64] {
        let values = eigh_scratch::<f64>(&one, &EighSpec::uniform(n, 2));
        assert_eq!(values, eigh_arena(n, 8) + faer_workspace::<f64>(n, false));
        let vectors = eigh_scratch::<f64>(&one, &EighSpec::uniform(n, 2).with_vectors(true));
        assert_eq!(
            vectors,
            eigh_arena(n, 8) + 8 * n * n + faer_workspace::<f64>(n, true)
        );
        let single = eigh_scratch::<f32>(&one, &EighSpec::uniform(n, 2).with_vectors(true));
        assert_eq!(
            single,
            eigh_arena(n, 4) + 4 * n * n + faer_workspace::<f32>(n, true)
        );
    }
}

#[test]
fn eigh_scratch_grows_with_threads_when_the_batch_runs_in_parallel() {
    let four = Cpu::with_threads(4).unwrap();
    // 100 matrices of order 20: above the parallel threshold (2e5 flops), one arena per thread.
    assert_eq!(
        eigh_scratch::<f64>(&four, &EighSpec::uniform(20, 100)),
        4 * eigh_arena(20, 8)
    );
    // One matrix: runs on the calling thread, one arena.
    assert_eq!(
        eigh_scratch::<f64>(&four, &EighSpec::uniform(20, 1)),
        eigh_arena(20, 8)
    );
    let one = Cpu::with_threads(1).unwrap();
    assert!(
        eigh_scratch::<f64>(&one, &EighSpec::uniform(20, 100))
            < eigh_scratch::<f64>(&four, &EighSpec::uniform(20, 100))
    );
}

fn reduce_scratch(cpu: &Cpu, spec: &ReduceSpec) -> usize {
    let plan: ReducePlan<Cpu, f64> = cpu.plan_reduce(spec).unwrap();
    assert_eq!(plan.device_bytes(), 0);
    plan.scratch_bytes()
}

#[test]
fn reduce_scratch_is_the_partials() {
    let cpu = Cpu::with_threads(2).unwrap();
    let full = |op, len| ReduceSpec::Full { op, len };
    // One f64 partial per 4096 elements, two for MaxRelDiff.
    assert_eq!(reduce_scratch(&cpu, &full(ReduceOp::Sum, 10_000)), 3 * 8);
    assert_eq!(
        reduce_scratch(&cpu, &full(ReduceOp::MaxRelDiff, 10_000)),
        6 * 8
    );
    assert_eq!(reduce_scratch(&cpu, &full(ReduceOp::Sum, 0)), 0);
    // A row of `cols` (+1 for the weight sum) per 128-row block.
    let rows = |op, rows, cols| ReduceSpec::Rows { op, rows, cols };
    assert_eq!(
        reduce_scratch(&cpu, &rows(RowReduceOp::Sum, 300, 10)),
        3 * 10 * 8
    );
    assert_eq!(
        reduce_scratch(&cpu, &rows(RowReduceOp::WeightedMean, 300, 10)),
        3 * 11 * 8
    );
    let segments = ReduceSpec::Segments {
        op: SegmentReduceOp::Sum,
        offsets: vec![0, 5, 9],
    };
    assert_eq!(reduce_scratch(&cpu, &segments), 0);
}

fn attention_scratch(cpu: &Cpu, spec: &AttentionSpec, mask: &BlockMask) -> usize {
    let plan: AttentionPlan<Cpu, f32> = cpu.plan_attention(spec, mask).unwrap();
    assert_eq!(plan.device_bytes(), 0);
    plan.scratch_bytes()
}

/// One f32 attention arena: Q tile and accumulators (`bq x d`), K and V tiles (`bk x d`),
/// scores (`bq x bk`), running max and sum (`bq`).
fn attention_arena(bq: usize, bk: usize, d: usize) -> usize {
    4 * (2 * bq * d + 2 * bk * d + bq * bk + 2 * bq)
}

#[test]
fn attention_scratch_is_one_query_block_per_worker() {
    let spec = AttentionSpec::self_attention(2, 64, 32);
    let mask = BlockMask::causal(64, 64, (16, 16)).unwrap();
    let arena = attention_arena(16, 16, 32);
    assert_eq!(arena, 9344);
    let one = Cpu::with_threads(1).unwrap();
    assert_eq!(attention_scratch(&one, &spec, &mask), arena);
    // 8 query blocks of work: one arena per thread.
    let three = Cpu::with_threads(3).unwrap();
    assert_eq!(attention_scratch(&three, &spec, &mask), 3 * arena);
    // Larger blocks, larger arena.
    let mask32 = BlockMask::causal(64, 64, (32, 32)).unwrap();
    assert_eq!(
        attention_scratch(&one, &spec, &mask32),
        attention_arena(32, 32, 32)
    );
    let mask_wide = BlockMask::causal(64, 64, (16, 64)).unwrap();
    assert_eq!(
        attention_scratch(&one, &spec, &mask_wide),
        attention_arena(16, 64, 32)
    );
}

#[test]
fn auto_on_the_cpu_reports_the_cpu_plan() {
    let auto = Auto::with_cpu(Cpu::with_threads(1).unwrap());
    let spec = EighSpec::uniform(20, 8);
    let plan: AutoEighPlan<f64> = auto.plan_eigh(&spec).unwrap();
    assert_eq!(plan.scratch_bytes(), eigh_arena(20, 8) + 4 * 8);
    assert_eq!(plan.device_bytes(), 0);

    let full = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: 10_000,
    };
    let plan: AutoReducePlan<f64> = auto.plan_reduce(&full).unwrap();
    assert_eq!(plan.scratch_bytes(), 3 * 8);
    assert_eq!(plan.device_bytes(), 0);

    let spec = AttentionSpec::self_attention(2, 64, 32);
    let mask = BlockMask::causal(64, 64, (16, 16)).unwrap();
    let plan: AutoAttentionPlan<f32> = auto.plan_attention(&spec, &mask).unwrap();
    assert_eq!(plan.scratch_bytes(), attention_arena(16, 16, 32));
    assert_eq!(plan.device_bytes(), 0);
}
