//! CUDA graphs: a chain of megabatch operations and a user kernel captured once and replayed
//! gives the bits of the eager chain (`resident.rs` counts its host waits), and refuses to replay once a buffer
//! it uses was dropped; what cannot be captured is refused with an error. Skips without a
//! device unless `MEGABATCH_REQUIRE_CUDA=1`.

use crate::common;

use megabatch::backends::cuda::{Cuda, CudaBuffer, CudaKernel, CudaQueue, KernelArg, LaunchDims};
use megabatch::{Backend, BatchedEigh, EighSpec, Error, ReduceOp, ReduceSpec, Reducer};

/// `a[i] += d` on the diagonal of every `n x n` matrix: an iteration's "build H" step.
const SHIFT: &str = r#"
extern "C" __global__ void shift(double* a, double d, unsigned n, unsigned batch) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n * batch) a[(i / n) * n * n + (i % n) * (n + 1)] += d;
}
"#;

pub(crate) struct Chain {
    kernel: CudaKernel,
    a: CudaBuffer<f64>,
    w: CudaBuffer<f64>,
    v: CudaBuffer<f64>,
    out: CudaBuffer<f64>,
    eigh: megabatch::backends::cuda::CudaEighPlan<f64>,
    sum: megabatch::backends::cuda::CudaReducePlan<f64>,
    n: usize,
    batch: usize,
}

impl Chain {
    pub(crate) fn new(cuda: &Cuda, n: usize, batch: usize) -> Self {
        let mut rng = common::rng(3);
        let a_host: Vec<f64> = (0..batch)
            .flat_map(|_| common::random_dense(n, &mut rng))
            .collect();
        let mut a = cuda.alloc::<f64>(a_host.len()).unwrap();
        cuda.upload(&a_host, &mut a).unwrap();
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        Self {
            kernel: cuda.compile_kernel(SHIFT, "shift").unwrap(),
            w: cuda.alloc(n * batch).unwrap(),
            v: cuda.alloc(a_host.len()).unwrap(),
            out: cuda.alloc(1).unwrap(),
            eigh: cuda.plan_eigh(&spec).unwrap(),
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

    /// One iteration: shift the diagonals, diagonalise, sum the eigenvalues.
    pub(crate) fn step(&mut self, cuda: &Cuda, queue: &CudaQueue) -> megabatch::Result<()> {
        let (n, batch) = (self.n as u32, self.batch as u32);
        // SAFETY: the kernel writes diagonal entries of `batch` n x n matrices, which `a` holds.
        unsafe {
            cuda.launch_kernel(
                queue,
                &self.kernel,
                LaunchDims::linear(self.n * self.batch, 128)?,
                &[
                    KernelArg::write(&mut self.a),
                    0.5f64.into(),
                    n.into(),
                    batch.into(),
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

#[test]
fn a_captured_chain_replays_the_eager_chain_bit_for_bit_without_host_waits() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();
    let (n, batch) = (12, 256);
    let mut eager = Chain::new(&cuda, n, batch);
    let mut graphed = Chain::new(&cuda, n, batch);
    // Every plan and kernel runs once before the capture.
    eager.step(&cuda, &queue).unwrap();
    graphed.step(&cuda, &queue).unwrap();
    let mut graph = cuda.capture(&queue, |q| graphed.step(&cuda, q)).unwrap();
    assert_eq!(
        graph.resources(),
        7,
        "a, w, v, out, the eigh info and the two plans"
    );
    for _ in 0..5 {
        eager.step(&cuda, &queue).unwrap();
        graph.launch(&queue).unwrap();
    }
    let e = cuda.read_scalar(&eager.out).unwrap();
    let g = cuda.read_scalar(&graphed.out).unwrap();
    assert_eq!(e.to_bits(), g.to_bits());
    // Six shifts of 0.5 on every diagonal move the trace, hence the eigenvalue sum, by 3 n.
    let mut a0 = Chain::new(&cuda, n, batch);
    a0.step(&cuda, &queue).unwrap();
    let first = cuda.read_scalar(&a0.out).unwrap();
    let moved = g - first;
    let expected = 0.5 * 5.0 * (n * batch) as f64;
    assert!(
        (moved - expected).abs() < 1e-9 * expected,
        "{moved} != {expected}"
    );
    let (mut w, mut v) = (vec![0.0; n * batch], vec![0.0; n * n * batch]);
    cuda.download(&graphed.w, &mut w).unwrap();
    cuda.download(&graphed.v, &mut v).unwrap();
    let (mut we, mut ve) = (vec![0.0; n * batch], vec![0.0; n * n * batch]);
    cuda.download(&eager.w, &mut we).unwrap();
    cuda.download(&eager.v, &mut ve).unwrap();
    assert_eq!(w, we);
    assert_eq!(v, ve);
}

#[test]
fn a_graph_refuses_to_replay_after_one_of_its_buffers_was_dropped() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();
    let mut chain = Chain::new(&cuda, 8, 16);
    chain.step(&cuda, &queue).unwrap();
    let mut graph = cuda.capture(&queue, |q| chain.step(&cuda, q)).unwrap();
    graph.launch(&queue).unwrap();
    let Chain { out, .. } = chain;
    drop(out);
    let replay = graph.launch(&queue);
    assert!(
        matches!(replay, Err(Error::InvalidArgument(_))),
        "{replay:?}"
    );
    assert!(!cuda.is_lost());
}

#[test]
fn what_cannot_be_captured_is_refused() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let (queue, other) = (cuda.new_queue().unwrap(), cuda.new_queue().unwrap());
    let mut chain = Chain::new(&cuda, 8, 16);
    chain.step(&cuda, &queue).unwrap();
    // A host call synchronises: refused, and the capture ends with the error.
    let mut w = vec![0.0; 8 * 16];
    let host = cuda.capture(&queue, |_| {
        let a = vec![1.0; 8 * 8 * 16];
        cuda.eigh_host(&mut chain.eigh, &a, &mut w, Some(&mut vec![0.0; a.len()]))
    });
    assert!(matches!(host, Err(Error::InvalidArgument(_))), "{host:?}");
    // Work on another queue inside the capture.
    let elsewhere = cuda.capture(&queue, |_| chain.step(&cuda, &other));
    assert!(
        matches!(elsewhere, Err(Error::InvalidArgument(_))),
        "{elsewhere:?}"
    );
    // An allocation inside the capture: the driver invalidates it; an error, not a crash.
    let alloc = cuda.capture(&queue, |q| {
        chain.step(&cuda, q)?;
        cuda.alloc::<f64>(16).map(drop)
    });
    assert!(alloc.is_err(), "{alloc:?}");
    // Nothing captured.
    let empty = cuda.capture(&queue, |_| Ok(()));
    assert!(empty.is_err());
    // The queue and the chain still work eagerly after all of that.
    chain.step(&cuda, &queue).unwrap();
    queue.synchronize().unwrap();
    assert!(!cuda.is_lost());
}
