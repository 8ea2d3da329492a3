//! Eight threads share one backend handle, each with its own plans, and run eigh, reductions
//! and attention in a loop; every result must equal, bit for bit, what the same plan computed
//! single-threaded beforehand. `MEGABATCH_SOAK_SECS` sets the duration (default 2 s; the
//! 30-s runs are recorded in docs/reliability.md).

use std::time::{Duration, Instant};

use half::f16;
use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionSpec, BatchedEigh, BlockMask, EighSpec, ReduceSpec, Reducer, RowReduceOp,
    SparseAttention,
};

pub(crate) const THREADS: usize = 8;

pub(crate) fn soak() -> Duration {
    let secs = std::env::var("MEGABATCH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// Deterministic values in [-1, 1) for thread `t`.
fn values(len: usize, t: usize) -> Vec<f64> {
    (0..len)
        .map(|i| (((i * 2654435761 + t * 40503) % 10007) as f64 / 5003.5) - 1.0)
        .collect()
}

/// Every plan type must be `Send`, so a thread can own its plans.
#[test]
fn plans_are_send() {
    fn send<T: Send>() {}
    send::<megabatch::backends::cpu::CpuEighPlan<f64>>();
    send::<megabatch::backends::cpu::CpuReducePlan<f16>>();
    send::<megabatch::backends::cpu::CpuAttentionPlan<f16>>();
    send::<megabatch::AutoEighPlan<f32>>();
    send::<megabatch::AutoReducePlan<f64>>();
    send::<megabatch::AutoAttentionPlan<f32>>();
    #[cfg(feature = "cuda")]
    {
        send::<megabatch::backends::cuda::CudaEighPlan<f64>>();
        send::<megabatch::backends::cuda::CudaReducePlan<f32>>();
    }
    #[cfg(feature = "wgpu")]
    {
        send::<megabatch::backends::wgpu::WgpuEighPlan<f64>>();
        send::<megabatch::backends::wgpu::WgpuReducePlan<f32>>();
        send::<megabatch::backends::wgpu::WgpuAttentionPlan<half::f16>>();
    }
}

/// One thread's work: its plans, inputs, and the results it must reproduce.
struct Work<B: Reducer<f32> + BatchedEigh<f64>> {
    eigh: <B as BatchedEigh<f64>>::EighPlan,
    a: Vec<f64>,
    w: Vec<f64>,
    v: Vec<f64>,
    reduce: <B as Reducer<f32>>::ReducePlan,
    x: Vec<f32>,
    weights: Vec<f32>,
    out: Vec<f32>,
}

impl<B: Reducer<f32> + BatchedEigh<f64>> Work<B> {
    fn new(backend: &B, t: usize) -> Self {
        let sizes: Vec<usize> = (0..40).map(|i| 1 + (i * 7 + t) % 24).collect();
        let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
        let nn: usize = sizes.iter().map(|n| n * n).sum();
        let rows = 300 + t;
        let reduce_spec = ReduceSpec::Rows {
            op: RowReduceOp::WeightedMean,
            rows,
            cols: 17,
        };
        Self {
            eigh: backend.plan_eigh(&spec).unwrap(),
            a: values(nn, t),
            w: vec![0.0; sizes.iter().sum()],
            v: vec![0.0; nn],
            reduce: backend.plan_reduce(&reduce_spec).unwrap(),
            x: values(rows * 17, t + 100)
                .iter()
                .map(|&x| x as f32)
                .collect(),
            weights: values(rows, t + 200)
                .iter()
                .map(|&x| x.abs() as f32)
                .collect(),
            out: vec![0.0; 17],
        }
    }

    /// Runs both operations; returns (eigenvalues, eigenvectors, row means).
    fn run(&mut self, backend: &B) -> (Vec<f64>, Vec<f64>, Vec<f32>) {
        backend
            .eigh_host(&mut self.eigh, &self.a, &mut self.w, Some(&mut self.v))
            .unwrap();
        backend
            .reduce_host(
                &mut self.reduce,
                &self.x,
                Some(&self.weights),
                &mut self.out,
            )
            .unwrap();
        (self.w.clone(), self.v.clone(), self.out.clone())
    }
}

/// `THREADS` threads loop over their own `Work` on one shared `backend` for the soak time and
/// compare with the single-threaded results; returns the iterations done.
pub(crate) fn hammer<B: Reducer<f32> + BatchedEigh<f64>>(backend: &B) -> usize
where
    <B as BatchedEigh<f64>>::EighPlan: Send,
    <B as Reducer<f32>>::ReducePlan: Send,
{
    let mut works: Vec<Work<B>> = (0..THREADS).map(|t| Work::new(backend, t)).collect();
    let expected: Vec<_> = works.iter_mut().map(|w| w.run(backend)).collect();
    let deadline = Instant::now() + soak();
    std::thread::scope(|s| {
        let handles: Vec<_> = works
            .into_iter()
            .zip(&expected)
            .map(|(mut work, want)| {
                s.spawn(move || {
                    let mut rounds = 0;
                    while Instant::now() < deadline || rounds == 0 {
                        let got = work.run(backend);
                        assert!(got.0 == want.0 && got.1 == want.1, "eigh differs");
                        assert!(got.2 == want.2, "reduction differs");
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

#[test]
fn eight_threads_share_a_cpu_backend_bit_for_bit() {
    let cpu = Cpu::with_threads(4).unwrap();
    let rounds = hammer(&cpu);
    eprintln!("cpu: {THREADS} threads x {:?}: {rounds} rounds", soak());
    // Attention beside them, from the same handle.
    let spec = AttentionSpec {
        batch: 1,
        heads_q: 4,
        heads_kv: 2,
        seq_q: 200,
        seq_kv: 200,
        head_dim: 64,
        scale: None,
    };
    let mask = BlockMask::causal(200, 200, (32, 32)).unwrap();
    let (q_len, kv_len, _) = spec.lens().unwrap();
    let run = |plan: &mut _, t: usize| {
        let to16 = |v: Vec<f64>| v.into_iter().map(f16::from_f64).collect::<Vec<_>>();
        let (q, k, v) = (
            to16(values(q_len, t)),
            to16(values(kv_len, t + 1)),
            to16(values(kv_len, t + 2)),
        );
        let mut o = vec![f16::ZERO; q_len];
        cpu.attention_host(plan, &q, &k, &v, &mut o, None).unwrap();
        o
    };
    let mut plans: Vec<_> = (0..THREADS)
        .map(|_| cpu.plan_attention(&spec, &mask).unwrap())
        .collect();
    let expected: Vec<_> = plans
        .iter_mut()
        .enumerate()
        .map(|(t, p)| run(p, t))
        .collect();
    let deadline = Instant::now() + soak() / 2;
    std::thread::scope(|s| {
        for ((t, mut plan), want) in plans.into_iter().enumerate().zip(&expected) {
            let run = &run;
            s.spawn(move || {
                while Instant::now() < deadline {
                    assert!(run(&mut plan, t) == *want, "attention differs");
                }
            });
        }
    });
}
