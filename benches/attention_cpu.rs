//! Block-sparse attention on the CPU, f32, in GFLOP/s counted on kept blocks
//! (4 BQ BK D per kept block per (batch, head)), against a naive dense implementation that
//! computes every score, masks it, and runs a full softmax per row (same thread count, rayon).
//!
//! Run: `cargo bench --bench attention_cpu`; criterion prints elements/s = flop/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use megabatch::backends::cpu::Cpu;
use megabatch::{AttentionSpec, BlockMask, SparseAttention};
use rayon::prelude::*;

/// Dense reference: all Sq x Skv scores per head, masked by `keep`, softmax, times V.
fn naive(spec: &AttentionSpec, mask: &BlockMask, q: &[f32], k: &[f32], v: &[f32], o: &mut [f32]) {
    let (sq, skv, d) = (spec.seq_q, spec.seq_kv, spec.head_dim);
    let (bq, bk) = mask.block_size();
    let scale = spec.softmax_scale();
    o.par_chunks_mut(d).enumerate().for_each(|(row, out)| {
        let (bh, i) = (row / sq, row % sq);
        let (b, h) = (bh / spec.heads_q, bh % spec.heads_q);
        let hk = h / (spec.heads_q / spec.heads_kv);
        let kept: Vec<(usize, bool)> = mask.row(b, h, i / bq).collect();
        let qi = &q[row * d..(row + 1) * d];
        let mut scores = vec![f32::NEG_INFINITY; skv];
        for (j, sc) in scores.iter_mut().enumerate() {
            let keep = kept
                .iter()
                .any(|&(kb, full)| kb == j / bk && (full || mask.predicate().keeps(i, j, sq, skv)));
            if keep {
                let kj = &k[((b * spec.heads_kv + hk) * skv + j) * d..][..d];
                *sc = scale * qi.iter().zip(kj).map(|(x, y)| x * y).sum::<f32>();
            }
        }
        let m = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        out.fill(0.0);
        if m == f32::NEG_INFINITY {
            return;
        }
        let z: f32 = scores.iter().map(|&x| (x - m).exp()).sum();
        for (j, &sc) in scores.iter().enumerate() {
            let p = (sc - m).exp() / z;
            if p > 0.0 {
                let vj = &v[((b * spec.heads_kv + hk) * skv + j) * d..][..d];
                out.iter_mut().zip(vj).for_each(|(a, x)| *a += p * x);
            }
        }
    });
}

fn benches(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = Cpu::with_threads(threads).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let spec = AttentionSpec {
        batch: 1,
        heads_q: 4,
        heads_kv: 4,
        seq_q: 1024,
        seq_kv: 1024,
        head_dim: 64,
        scale: None,
    };
    let (ql, kvl, _) = spec.lens().unwrap();
    let q: Vec<f32> = (0..ql)
        .map(|i| ((i * 7919) % 1000) as f32 * 0.002 - 1.0)
        .collect();
    let k: Vec<f32> = (0..kvl)
        .map(|i| ((i * 104729) % 1000) as f32 * 0.002 - 1.0)
        .collect();
    let v = k.clone();
    let block = (64, 64);
    let (qb, kb) = (16usize, 16usize);
    let random: Vec<bool> = (0..qb * kb)
        .map(|i| i % kb == i / kb || (i * 2_654_435_761usize) % 100 < 20)
        .collect();
    let masks = [
        ("dense", BlockMask::dense(1024, 1024, block).unwrap()),
        ("causal", BlockMask::causal(1024, 1024, block).unwrap()),
        (
            "random_0.2",
            BlockMask::from_block_matrix(1024, 1024, block, &random).unwrap(),
        ),
    ];
    for (name, mask) in masks {
        let flops =
            4 * block.0 * block.1 * spec.head_dim * mask.kept_blocks(spec.batch, spec.heads_q);
        let mut group = c.benchmark_group(format!("attention_cpu/{name}"));
        group
            .throughput(Throughput::Elements(flops as u64))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(3));
        let mut plan = cpu.plan_attention(&spec, &mask).unwrap();
        let mut o = vec![0.0f32; ql];
        group.bench_function(BenchmarkId::new("megabatch", threads), |b| {
            b.iter(|| {
                cpu.attention_host(&mut plan, black_box(&q), &k, &v, &mut o, None)
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("naive_dense", threads), |b| {
            b.iter(|| pool.install(|| naive(&spec, &mask, black_box(&q), &k, &v, &mut o)))
        });
        group.finish();
    }
}

criterion_group!(attention, benches);
criterion_main!(attention);
