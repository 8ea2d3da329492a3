//! Device-resident chains cost the host nothing until the scalar is read: a user kernel, a
//! second kernel and a reduction repeated on one queue, and a captured graph replayed, make no
//! host wait and no device-to-host copy (`Cuda::host_waits`, `Cuda::device_reads`), and no
//! device allocation. The counters are process-wide: this module runs alone in a child
//! process (`tests/common/child.rs`), its tests one at a time. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.

use crate::common;

use super::graph::Chain;
use super::interop::{scale, scale_kernel, sum_plan};

use megabatch::backends::cuda::Cuda;
use megabatch::{Backend, Reducer};

/// The counters are process-wide: the tests here take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_user_kernel_and_a_reduction_chain_on_one_queue_without_host_waits() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();
    let kernel = scale_kernel(&cuda);
    let n = 4096;
    let data: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let mut x = cuda.alloc::<f64>(n).unwrap();
    cuda.upload(&data, &mut x).unwrap();
    let mut y = cuda.alloc::<f64>(n).unwrap();
    let mut z = cuda.alloc::<f64>(n).unwrap();
    let mut out = cuda.alloc::<f64>(1).unwrap();
    let mut plan = sum_plan(&cuda, n);
    let (waits, reads) = (Cuda::host_waits(), Cuda::device_reads());
    for _ in 0..10 {
        // kernel -> kernel -> megabatch reduction, all queued, nothing waited for
        scale(&cuda, &queue, &kernel, &x, &mut y, 2.0, 1 << 16);
        scale(&cuda, &queue, &kernel, &y, &mut z, 0.5, 0);
        cuda.reduce_on(&queue, &mut plan, &z, None, &mut out)
            .unwrap();
    }
    assert_eq!(Cuda::host_waits(), waits, "the chain made the host wait");
    assert_eq!(Cuda::device_reads(), reads, "the chain read back");
    let total = cuda.read_scalar(&out).unwrap();
    assert_eq!(Cuda::device_reads() - reads, 1);
    assert_eq!(total, data.iter().sum::<f64>());
}

#[test]
fn graph_replays_make_no_host_waits_reads_or_allocations() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();
    let mut chain = Chain::new(&cuda, 12, 256);
    chain.step(&cuda, &queue).unwrap();
    let mut graph = cuda.capture(&queue, |q| chain.step(&cuda, q)).unwrap();
    let (waits, reads, allocs) = (
        Cuda::host_waits(),
        Cuda::device_reads(),
        Cuda::device_allocations(),
    );
    for _ in 0..10 {
        graph.launch(&queue).unwrap();
    }
    assert_eq!(Cuda::host_waits(), waits, "replays made the host wait");
    assert_eq!(Cuda::device_reads(), reads, "replays read back");
    assert_eq!(Cuda::device_allocations(), allocs, "replays allocated");
    queue.synchronize().unwrap();
}
