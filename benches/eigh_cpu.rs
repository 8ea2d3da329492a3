//! Batched eigh with eigenvectors on the CPU: megabatch against nalgebra's `SymmetricEigen`
//! and faer's `self_adjoint_eigen`, each looping over the same batch with the same thread count
//! (megabatch's own pool; a rayon pool of that size for the peers).
//!
//! Run: `cargo bench --bench eigh_cpu`; the table in docs/benchmarks/cpu-eigh.md comes from
//! `python3 benches/criterion_table.py eigh_cpu`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec, Real};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

const ORDERS: [usize; 12] = [2, 3, 4, 8, 12, 16, 24, 32, 64, 128, 256, 512];

/// About the same work per batch at every order, at least a few matrices per thread.
fn batch_for(n: usize, threads: usize) -> usize {
    ((1usize << 24) / (n * n * n)).clamp(2 * threads, 16384)
}

fn random_symmetric(n: usize, batch: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut a = vec![0.0; n * n * batch];
    for m in a.chunks_mut(n * n) {
        for r in 0..n {
            for c in 0..=r {
                let x: f64 = rng.random_range(-1.0..1.0);
                m[r * n + c] = x;
                m[c * n + r] = x;
            }
        }
    }
    a
}

fn bench_dtype<T: Real + nalgebra::RealField + faer::traits::RealField>(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = Cpu::with_threads(threads).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    for n in ORDERS {
        let batch = batch_for(n, threads);
        let a: Vec<T> = random_symmetric(n, batch, &mut rng)
            .into_iter()
            .map(T::of)
            .collect();
        let mut group = c.benchmark_group(format!("eigh_cpu/{}/n={n}", T::DTYPE));
        group.throughput(Throughput::Elements(batch as u64));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(15)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let mut plan = cpu.plan_eigh(&spec).unwrap();
        let (mut w, mut v) = (vec![T::zero(); n * batch], vec![T::zero(); n * n * batch]);
        group.bench_function(BenchmarkId::new("megabatch", batch), |b| {
            b.iter(|| {
                cpu.eigh_host(&mut plan, black_box(&a), &mut w, Some(&mut v))
                    .unwrap()
            })
        });

        let na: Vec<nalgebra::DMatrix<T>> = a
            .chunks(n * n)
            .map(|m| nalgebra::DMatrix::from_row_slice(n, n, m))
            .collect();
        group.bench_function(BenchmarkId::new("nalgebra", batch), |b| {
            b.iter(|| {
                pool.install(|| {
                    na.par_iter().for_each(|m| {
                        black_box(nalgebra::SymmetricEigen::new(m.clone()));
                    })
                })
            })
        });

        let fa: Vec<faer::Mat<T>> = a
            .chunks(n * n)
            .map(|m| faer::Mat::from_fn(n, n, |r, c| m[r * n + c]))
            .collect();
        group.bench_function(BenchmarkId::new("faer", batch), |b| {
            b.iter(|| {
                pool.install(|| {
                    fa.par_iter().for_each(|m| {
                        black_box(m.self_adjoint_eigen(faer::Side::Lower).unwrap());
                    })
                })
            })
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    bench_dtype::<f64>(c);
    bench_dtype::<f32>(c);
}

criterion_group!(eigh, benches);
criterion_main!(eigh);
