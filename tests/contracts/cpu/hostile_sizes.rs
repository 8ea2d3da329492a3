//! Sizes whose buffers overflow `usize` or exceed the machine are refused at plan time with
//! `Error::TooLarge`, before anything is allocated (an allocation failure would abort).

use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionPlan, AttentionSpec, Backend, BatchedEigh, BlockMask, EighPlan, EighSpec, Error,
    ReducePlan, ReduceSpec, Reducer, RowReduceOp, SparseAttention,
};

fn cpu() -> Cpu {
    Cpu::with_threads(2).unwrap()
}

fn too_large<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::TooLarge(_)) => {}
        other => panic!("expected Error::TooLarge, got {other:?}"),
    }
}

#[test]
fn eigh_specs_beyond_memory_or_usize_are_too_large() {
    let cpu = cpu();
    for spec in [
        // 2^20 x 2^20 f64 scratch per worker: 32 TiB.
        EighSpec::uniform(1 << 20, 1),
        // batch * n^2 overflows.
        EighSpec::uniform(1 << 16, usize::MAX / 4),
        EighSpec::ragged(vec![usize::MAX / 2, 3]),
        EighSpec::ragged(vec![1 << 31; 4]),
    ] {
        let plan: Result<EighPlan<Cpu, f64>, Error> = cpu.plan_eigh(&spec);
        too_large(plan);
    }
    // n^2 overflows usize.
    let plan: Result<EighPlan<Cpu, f32>, Error> = cpu.plan_eigh(&EighSpec::uniform(1 << 33, 1));
    too_large(plan);
}

#[test]
fn buffers_beyond_memory_are_too_large() {
    let cpu = cpu();
    too_large(cpu.alloc::<f64>(usize::MAX / 4));
    too_large(cpu.alloc::<f64>(1 << 60));
    too_large(cpu.alloc::<half::f16>(usize::MAX));
}

#[test]
fn reduction_and_attention_shapes_beyond_usize_are_too_large() {
    let cpu = cpu();
    let plan: Result<ReducePlan<Cpu, f32>, Error> = cpu.plan_reduce(&ReduceSpec::Rows {
        op: RowReduceOp::Sum,
        rows: usize::MAX,
        cols: 2,
    });
    too_large(plan);
    let spec = AttentionSpec {
        batch: usize::MAX / 2,
        heads_q: 4,
        heads_kv: 4,
        seq_q: 128,
        seq_kv: 128,
        head_dim: 64,
        scale: None,
    };
    let mask = BlockMask::dense(128, 128, (64, 64)).unwrap();
    let plan: Result<AttentionPlan<Cpu, f32>, Error> = cpu.plan_attention(&spec, &mask);
    too_large(plan);
    // Masks whose tensors would not fit: 2^40 tokens is 2^33 x 2^33 blocks.
    too_large(BlockMask::dense(1 << 40, 1 << 40, (128, 128)));
    too_large(BlockMask::causal(1 << 36, 1 << 36, (16, 16)));
    // More key blocks than int32 indices count.
    too_large(BlockMask::dense(16, 1 << 40, (16, 16)));
}

#[test]
fn huge_batches_of_tiny_matrices_are_too_large() {
    // Found by the eigh fuzzer: 2^54 matrices of order 0-3 pass the length overflow checks,
    // and the plan's per-matrix work list alone would need 2^58 bytes.
    let cpu = cpu();
    for n in [0, 1, 3] {
        let plan: Result<EighPlan<Cpu, f64>, Error> = cpu.plan_eigh(&EighSpec::uniform(n, 1 << 54));
        too_large(plan);
    }
}
