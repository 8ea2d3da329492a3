//! megabatch's reductions on wgpu against the CPU backend in the same run: whole-array
//! reductions in GB/s and the latency of a small reduction with its scalar readback. Prints one
//! JSON object per line (docs/benchmarks/wgpu-h100.md tabulates them).
//!
//! Usage: `cargo bench --features wgpu --bench reduce_wgpu [-- --quick]`. Timing: each case is
//! warmed up, then repeated until the budget (0.2 s, --quick 0.05 s) has passed, with a
//! synchronisation every 8 calls and at the end; the figure is the mean per call. The latency
//! is the median of 1,000 calls.

mod common;

use std::time::Duration;

use common::{median_of, time_loop};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::Wgpu;
use megabatch::{Backend, ReduceOp, ReduceSpec, Reducer};

/// Seconds per whole-array reduction on `backend`'s own buffers.
fn reduce_seconds<B: Reducer<f32>>(b: &B, x: &[f32], op: ReduceOp, budget: Duration) -> f64 {
    let mut x_dev = b.alloc::<f32>(x.len()).unwrap();
    b.upload(x, &mut x_dev).unwrap();
    // A second buffer for y, so two-operand reductions read 2 len elements from memory.
    let mut y_dev = b.alloc::<f32>(x.len()).unwrap();
    b.upload(x, &mut y_dev).unwrap();
    let mut out = b.alloc::<f32>(1).unwrap();
    let spec = ReduceSpec::Full { op, len: x.len() };
    let mut plan = b.plan_reduce(&spec).unwrap();
    let y = op.takes_y().then_some(&y_dev);
    time_loop(
        budget,
        || b.reduce(&mut plan, &x_dev, y, &mut out).unwrap(),
        || b.synchronize().unwrap(),
    )
}

fn reduce_cases(gpu: &Wgpu, cpu: &Cpu, budget: Duration) {
    for len in [1_000usize, 100_000, 1_000_000, 10_000_000, 33_554_432] {
        let x: Vec<f32> = (0..len).map(|i| (i % 1000) as f32 * 1e-3).collect();
        for (name, op, operands) in [
            ("sum", ReduceOp::Sum, 1),
            ("max_abs_diff", ReduceOp::MaxAbsDiff, 2),
        ] {
            let tg = reduce_seconds(gpu, &x, op, budget);
            let tc = reduce_seconds(cpu, &x, op, budget);
            let bytes = (4 * len * operands) as f64;
            println!("{{\"bench\":\"reduce\",\"op\":\"{name}\",\"dtype\":\"f32\",\"len\":{len},\"wgpu_seconds\":{tg:e},\"cpu_seconds\":{tc:e},\"wgpu_gb_per_s\":{:.3},\"cpu_gb_per_s\":{:.3}}}", bytes / tg / 1e9, bytes / tc / 1e9);
        }
    }
    // Latency: 1,000 elements, reduce plus the scalar readback, host wall clock.
    let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let mut x_dev = gpu.alloc::<f32>(1000).unwrap();
    gpu.upload(&x, &mut x_dev).unwrap();
    let mut out = gpu.alloc::<f32>(1).unwrap();
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: 1000,
    };
    let mut plan = gpu.plan_reduce(&spec).unwrap();
    let t = median_of(1000, || {
        gpu.reduce(&mut plan, &x_dev, None, &mut out).unwrap();
        std::hint::black_box(gpu.read_scalar(&out).unwrap());
    });
    println!("{{\"bench\":\"scalar_latency\",\"len\":1000,\"median_seconds\":{t:e}}}");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 50 } else { 200 });
    let gpu = Wgpu::new().expect("a wgpu adapter");
    let cpu = Cpu::new().unwrap();
    eprintln!("{:?}, CPU threads {}", gpu.adapter(), cpu.threads());
    reduce_cases(&gpu, &cpu, budget);
}
