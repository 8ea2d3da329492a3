//! megabatch's reductions on CUDA: full, row and segment reductions in GB/s, and the latency
//! of a small reduction with its scalar readback. Prints one JSON object per line
//! (`benches/cuda_table.py` joins them with `eigh_cuda`'s into docs/benchmarks/cuda-h100.md).
//!
//! Usage: `cargo bench --features cuda --bench reduce_cuda [-- --quick]`. Timing: each case
//! is warmed up, then repeated until 0.2 s (--quick: 0.05 s) have passed with a device
//! synchronisation at the end; the figure is the mean per call.

mod common;

use std::time::{Duration, Instant};

use common::time_loop;
use megabatch::backends::cuda::Cuda;
use megabatch::{Backend, ReduceOp, ReduceSpec, Reducer, RowReduceOp, SegmentReduceOp};

fn reduce_cases(cuda: &Cuda, budget: Duration) {
    for &len in &[
        1_000usize, 10_000, 100_000, 1_000_000, 10_000_000, 67_108_864,
    ] {
        let x: Vec<f32> = (0..len).map(|i| (i % 1000) as f32 * 1e-3).collect();
        let mut x_dev = cuda.alloc::<f32>(len).unwrap();
        cuda.upload(&x, &mut x_dev).unwrap();
        let mut y_dev = cuda.alloc::<f32>(len).unwrap();
        cuda.upload(&x, &mut y_dev).unwrap();
        let sync = || cuda.synchronize().unwrap();
        let report = |name: &str, spec: ReduceSpec, two: bool, bytes: usize| {
            let mut plan = cuda.plan_reduce_device::<f32>(&spec).unwrap();
            let out_len = spec.shape().unwrap().out_len;
            let mut o = cuda.alloc::<f32>(out_len).unwrap();
            let t = time_loop(
                budget,
                || {
                    cuda.reduce(&mut plan, &x_dev, two.then_some(&y_dev), &mut o)
                        .unwrap()
                },
                sync,
            );
            println!("{{\"bench\":\"reduce\",\"op\":\"{name}\",\"dtype\":\"f32\",\"len\":{len},\"seconds\":{t:e},\"gb_per_s\":{:.3}}}", bytes as f64 / t / 1e9);
        };
        report(
            "sum",
            ReduceSpec::Full {
                op: ReduceOp::Sum,
                len,
            },
            false,
            4 * len,
        );
        report(
            "max_abs_diff",
            ReduceSpec::Full {
                op: ReduceOp::MaxAbsDiff,
                len,
            },
            true,
            8 * len,
        );
        let rows = len / 7;
        if rows > 0 {
            let mut w_dev = cuda.alloc::<f32>(rows).unwrap();
            cuda.upload(&x[..rows], &mut w_dev).unwrap();
            let spec = ReduceSpec::Rows {
                op: RowReduceOp::WeightedMean,
                rows,
                cols: 7,
            };
            let mut plan = cuda.plan_reduce_device::<f32>(&spec).unwrap();
            let mut xs = cuda.alloc::<f32>(rows * 7).unwrap();
            cuda.upload(&x[..rows * 7], &mut xs).unwrap();
            let mut o = cuda.alloc::<f32>(7).unwrap();
            let t = time_loop(
                budget,
                || cuda.reduce(&mut plan, &xs, Some(&w_dev), &mut o).unwrap(),
                sync,
            );
            println!("{{\"bench\":\"reduce\",\"op\":\"weighted_mean_rows7\",\"dtype\":\"f32\",\"len\":{},\"seconds\":{t:e},\"gb_per_s\":{:.3}}}", rows * 7, (rows * 8 * 4) as f64 / t / 1e9);
        }
        // Segments of mean length 100 with a deterministic spread (37..163).
        let mut offsets = vec![0usize];
        let mut k = 0usize;
        while *offsets.last().unwrap() < len {
            let l = 37 + (k * 61) % 127;
            offsets.push((offsets.last().unwrap() + l).min(len));
            k += 1;
        }
        report(
            "segment_sum",
            ReduceSpec::Segments {
                op: SegmentReduceOp::Sum,
                offsets,
            },
            false,
            4 * len,
        );
    }
    // Latency: 1,000 elements, reduce plus scalar readback, host wall clock.
    let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let mut x_dev = cuda.alloc::<f32>(1000).unwrap();
    cuda.upload(&x, &mut x_dev).unwrap();
    let mut plan = cuda
        .plan_reduce_device::<f32>(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: 1000,
        })
        .unwrap();
    for _ in 0..100 {
        cuda.reduce_scalar(&mut plan, &x_dev, None).unwrap();
    }
    let times: Vec<f64> = (0..2000)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(cuda.reduce_scalar(&mut plan, &x_dev, None).unwrap());
            s.elapsed().as_secs_f64()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\":\"scalar_latency\",\"len\":1000,\"median_seconds\":{:e},\"p90_seconds\":{:e},\"min_seconds\":{:e}}}",
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 9 / 10],
        sorted[0]
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 50 } else { 200 });
    let cuda = Cuda::new().expect("a CUDA device");
    eprintln!("{:?}", cuda.info());
    reduce_cases(&cuda, budget);
}
