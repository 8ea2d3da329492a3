//! One device-resident iteration on CUDA, eager against graph replay: a user kernel that
//! builds the Hamiltonians (shifts every diagonal), one batched eigh with vectors, and a
//! reduction read back as ONE scalar, all on one queue. Prints JSON lines: seconds per
//! iteration host to host (the scalar in hand) for the eager chain and for a captured graph
//! replayed, the host waits and device reads per iteration, per (n, batch).
//!
//! Usage: `cargo bench --features cuda --bench iteration_cuda [-- --quick]`

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use megabatch::backends::cuda::{Cuda, CudaKernel, CudaQueue, KernelArg, LaunchDims};
use megabatch::{Backend, BatchedEigh, EighSpec, ReduceOp, ReduceSpec, Reducer};

const SHIFT: &str = r#"
extern "C" __global__ void shift(double* a, double d, unsigned n, unsigned batch) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n * batch) a[(i / n) * n * n + (i % n) * (n + 1)] += d;
}
"#;

struct Iteration {
    kernel: CudaKernel,
    a: megabatch::backends::cuda::CudaBuffer<f64>,
    w: megabatch::backends::cuda::CudaBuffer<f64>,
    v: megabatch::backends::cuda::CudaBuffer<f64>,
    out: megabatch::backends::cuda::CudaBuffer<f64>,
    eigh: megabatch::backends::cuda::CudaEighPlan<f64>,
    sum: megabatch::backends::cuda::CudaReducePlan<f64>,
    n: usize,
    batch: usize,
}

impl Iteration {
    fn new(cuda: &Cuda, n: usize, batch: usize) -> Self {
        let host = common::matrices::<f64>(n, batch);
        let mut a = cuda.alloc::<f64>(host.len()).unwrap();
        cuda.upload(&host, &mut a).unwrap();
        Self {
            kernel: cuda.compile_kernel(SHIFT, "shift").unwrap(),
            w: cuda.alloc(n * batch).unwrap(),
            v: cuda.alloc(host.len()).unwrap(),
            out: cuda.alloc(1).unwrap(),
            eigh: cuda
                .plan_eigh(&EighSpec::uniform(n, batch).with_vectors(true))
                .unwrap(),
            sum: cuda
                .plan_reduce(&ReduceSpec::Full {
                    op: ReduceOp::Sum,
                    len: n * batch,
                })
                .unwrap(),
            a,
            n,
            batch,
        }
    }

    /// The device part of one iteration, queued on `queue`.
    fn queue(&mut self, cuda: &Cuda, queue: &CudaQueue) -> megabatch::Result<()> {
        // Alternating sign keeps the matrices bounded over many iterations.
        // SAFETY: writes diagonal entries of `batch` n x n matrices, which `a` holds.
        unsafe {
            cuda.launch_kernel(
                queue,
                &self.kernel,
                LaunchDims::linear(self.n * self.batch, 128)?,
                &[
                    KernelArg::write(&mut self.a),
                    0.0f64.into(),
                    (self.n as u32).into(),
                    (self.batch as u32).into(),
                ],
            )?;
        }
        cuda.eigh_on(
            queue,
            &mut self.eigh,
            &self.a,
            &mut self.w,
            Some(&mut self.v),
        )?;
        cuda.reduce_on(queue, &mut self.sum, &self.w, None, &mut self.out)
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cuda = match Cuda::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipping: no CUDA device ({e})");
            return;
        }
    };
    let queue = cuda.new_queue().unwrap();
    let reps = if quick { 50 } else { 200 };
    let cases: &[(usize, usize)] = &[(12, 1582), (12, 16384), (32, 4096), (64, 1024)];
    for &(n, batch) in cases {
        let mut it = Iteration::new(&cuda, n, batch);
        it.queue(&cuda, &queue).unwrap();
        cuda.read_scalar(&it.out).unwrap();
        let mut graph = cuda.capture(&queue, |q| it.queue(&cuda, q)).unwrap();
        let measure = |run: &mut dyn FnMut()| {
            let (w0, r0) = (Cuda::host_waits(), Cuda::device_reads());
            let s = common::median_of(reps, &mut *run);
            let per = (reps + 1) as f64;
            let waits = (Cuda::host_waits() - w0) as f64 / per;
            let reads = (Cuda::device_reads() - r0) as f64 / per;
            (s, waits, reads)
        };
        let (eager, ew, er) = measure(&mut || {
            it.queue(&cuda, &queue).unwrap();
            cuda.read_scalar(&it.out).unwrap();
        });
        let (replay, gw, gr) = measure(&mut || {
            graph.launch(&queue).unwrap();
            cuda.read_scalar(&it.out).unwrap();
        });
        // Launch cost alone: 100 queued iterations without reading back.
        let t = Instant::now();
        for _ in 0..100 {
            it.queue(&cuda, &queue).unwrap();
        }
        let eager_enqueue = t.elapsed().as_secs_f64() / 100.0;
        queue.synchronize().unwrap();
        let t = Instant::now();
        for _ in 0..100 {
            graph.launch(&queue).unwrap();
        }
        let replay_enqueue = t.elapsed().as_secs_f64() / 100.0;
        queue.synchronize().unwrap();
        println!(
            "{{\"bench\":\"iteration\",\"n\":{n},\"batch\":{batch},\"eager_s\":{eager:e},\
             \"graph_s\":{replay:e},\"eager_enqueue_s\":{eager_enqueue:e},\
             \"graph_enqueue_s\":{replay_enqueue:e},\"eager_host_waits\":{ew},\
             \"eager_device_reads\":{er},\"graph_host_waits\":{gw},\"graph_device_reads\":{gr}}}"
        );
    }
}
