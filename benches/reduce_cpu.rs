//! Whole-array f64 sum on the CPU in GB/s: megabatch on one thread and on all threads against
//! a plain iterator sum (one thread) and a rayon parallel sum (all threads), with a large
//! `copy_from_slice` as the machine's measured memory-bandwidth ceiling (bytes read + written).
//!
//! Run: `cargo bench --bench reduce_cpu`, then `python3 benches/reduce_table.py`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use megabatch::backends::cpu::Cpu;
use megabatch::{ReduceOp, ReduceSpec, Reducer};
use rayon::prelude::*;

const SIZES: [usize; 6] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

fn benches(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let single = Cpu::with_threads(1).unwrap();
    let all = Cpu::with_threads(threads).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    for n in SIZES {
        let x: Vec<f64> = (0..n).map(|i| (i % 1024) as f64 * 0.001).collect();
        let mut group = c.benchmark_group(format!("reduce_cpu/sum/n={n}"));
        group
            .throughput(Throughput::Bytes((n * 8) as u64))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(15)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        let spec = ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: n,
        };
        for (name, cpu) in [("megabatch_1t", &single), ("megabatch_all", &all)] {
            let mut plan = cpu.plan_reduce(&spec).unwrap();
            let mut out = vec![0.0; 1];
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    cpu.reduce_host(&mut plan, black_box(&x), None, &mut out)
                        .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("iter_1t", n), |b| {
            b.iter(|| black_box(&x).iter().sum::<f64>())
        });
        group.bench_function(BenchmarkId::new("rayon_all", n), |b| {
            b.iter(|| pool.install(|| black_box(&x).par_iter().sum::<f64>()))
        });
        if n == SIZES[SIZES.len() - 1] {
            // Bandwidth ceiling: the copy moves 2 n * 8 bytes; criterion's Bytes(n * 8) then
            // reports half the traffic, so the table doubles it.
            let mut dst = vec![0.0f64; n];
            group.bench_function(BenchmarkId::new("copy_1t", n), |b| {
                b.iter(|| dst.copy_from_slice(black_box(&x)))
            });
        }
        group.finish();
    }
}

criterion_group!(reduce, benches);
criterion_main!(reduce);
