//! megabatch on wgpu against the CPU backend in the same run: eigh matrices/s over (dtype, n,
//! batch) with device-resident buffers, the seed workload host to host, reductions in GB/s and
//! the latency of a small reduction with its scalar readback. Prints one JSON object per line
//! (docs/benchmarks/wgpu-h100.md tabulates them).
//!
//! Usage: `cargo bench --features wgpu --bench wgpu [-- --quick] [--only eigh|seed|reduce|attention]
//! [--ns 4,8,...] [--batches 1024,...] [--jacobi] [--layouts] [--cpu]`: eigh with and without
//! vectors, by size class (the shader each plan chose is printed), with `--jacobi` also the
//! Jacobi shader, with `--layouts` also both layouts of the tridiagonal shader, with `--cpu`
//! also the CPU backend.
//! Timing: each case is warmed up (pipelines, bind groups), then repeated until the budget
//! (0.2 s, --quick 0.05 s) has passed, with a synchronisation every 8 calls and at the end;
//! the figure is the mean per call. Host-to-host cases report the median of 100 calls.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use megabatch::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::{Wgpu, WgpuEighAlgorithm};
use megabatch::{Backend, BatchedEigh, EighSpec, Real, ReduceOp, ReduceSpec, Reducer};

fn time_loop(budget: Duration, mut call: impl FnMut(), sync: impl Fn()) -> f64 {
    call();
    sync();
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed() < budget || reps < 2 {
        call();
        reps += 1;
        if reps.is_multiple_of(8) {
            sync();
        }
    }
    sync();
    start.elapsed().as_secs_f64() / f64::from(reps)
}

fn median_of(count: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut xs: Vec<f64> = (0..count)
        .map(|_| {
            let s = Instant::now();
            run();
            s.elapsed().as_secs_f64()
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Symmetric matrices with entries uniform in [-1, 1], as the other eigh benches make them.
fn matrices<T: Real>(n: usize, batch: usize) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut a = vec![T::zero(); n * n * batch];
    for m in a.chunks_exact_mut(n * n).take(batch) {
        for i in 0..n {
            for j in 0..=i {
                let v = T::of(rng.random_range(-1.0..1.0));
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
    }
    a
}

/// Seconds per eigh call on `backend`'s own buffers, with the plan `plan` made.
fn eigh_seconds<T: Real, B: BatchedEigh<T>>(
    b: &B,
    mut plan: B::EighPlan,
    a: &[T],
    n: usize,
    batch: usize,
    vectors: bool,
    budget: Duration,
) -> f64 {
    let mut a_dev = b.alloc::<T>(a.len()).unwrap();
    b.upload(a, &mut a_dev).unwrap();
    let mut w = b.alloc::<T>(n * batch).unwrap();
    let mut v = b.alloc::<T>(if vectors { a.len() } else { 1 }).unwrap();
    time_loop(
        budget,
        || {
            b.eigh(&mut plan, &a_dev, &mut w, vectors.then_some(&mut v))
                .unwrap()
        },
        || b.synchronize().unwrap(),
    )
}

/// What the eigh grid measures besides the size classes with vectors.
struct EighOptions {
    ns: Vec<usize>,
    batches: Vec<usize>,
    /// Also the Jacobi shader at every order (`--jacobi`).
    jacobi: bool,
    /// Also both layouts of the tridiagonal shader wherever they fit (`--layouts`).
    layouts: bool,
    /// Also the CPU backend (`--cpu`; slow at large batches).
    cpu: bool,
}

fn eigh_cases<T: Real>(gpu: &Wgpu, cpu: &Cpu, budget: Duration, opt: &EighOptions)
where
    Wgpu: BatchedEigh<T, EighPlan = megabatch::backends::wgpu::WgpuEighPlan<T>>,
    Cpu: BatchedEigh<T>,
{
    for &n in &opt.ns {
        for &batch in &opt.batches {
            let bytes = n * n * batch * std::mem::size_of::<T>();
            if bytes > gpu.adapter().max_storage_binding as usize || bytes > 1 << 30 {
                println!("{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"skipped\":\"{bytes} bytes per array\"}}", T::DTYPE);
                continue;
            }
            let a = matrices::<T>(n, batch);
            let mut algorithms = vec![WgpuEighAlgorithm::SizeClasses];
            if opt.jacobi {
                algorithms.push(WgpuEighAlgorithm::Jacobi);
            }
            if opt.layouts {
                algorithms.push(WgpuEighAlgorithm::TridiagWorkgroup);
                algorithms.push(WgpuEighAlgorithm::TridiagRows);
            }
            for algorithm in algorithms {
                for vectors in [true, false] {
                    let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
                    let plan = gpu.plan_eigh_with::<T>(&spec, algorithm).unwrap();
                    let shader = plan.shaders().first().cloned().unwrap_or_default();
                    let tg = eigh_seconds(gpu, plan, &a, n, batch, vectors, budget);
                    println!(
                        "{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"vectors\":{vectors},\"algorithm\":\"{algorithm:?}\",\"shader\":\"{shader}\",\"wgpu_seconds\":{tg:e},\"wgpu_matrices_per_s\":{:e}}}",
                        T::DTYPE,
                        batch as f64 / tg
                    );
                }
            }
            if opt.cpu {
                let plan = BatchedEigh::<T>::plan_eigh(
                    cpu,
                    &EighSpec::uniform(n, batch).with_vectors(true),
                )
                .unwrap();
                let tc = eigh_seconds(cpu, plan, &a, n, batch, true, budget);
                println!(
                    "{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"vectors\":true,\"cpu_seconds\":{tc:e},\"cpu_matrices_per_s\":{:e}}}",
                    T::DTYPE,
                    batch as f64 / tc
                );
            }
        }
    }
}

fn seed_workload(gpu: &Wgpu, cpu: &Cpu) {
    let (n, batch) = (12, 1582);
    let a = matrices::<f64>(n, batch);
    let mut w = vec![0.0; n * batch];
    let mut v = vec![0.0; n * n * batch];
    for vectors in [true, false] {
        let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
        let mut g = BatchedEigh::<f64>::plan_eigh(gpu, &spec).unwrap();
        let mut c = BatchedEigh::<f64>::plan_eigh(cpu, &spec).unwrap();
        let tg = median_of(100, || {
            gpu.eigh_host(&mut g, &a, &mut w, vectors.then_some(&mut v[..]))
                .unwrap()
        });
        let tc = median_of(100, || {
            cpu.eigh_host(&mut c, &a, &mut w, vectors.then_some(&mut v[..]))
                .unwrap()
        });
        println!("{{\"bench\":\"seed\",\"n\":12,\"batch\":1582,\"dtype\":\"f64\",\"vectors\":{vectors},\"wgpu_seconds\":{tg:e},\"cpu_seconds\":{tc:e},\"cpu_threads\":{}}}", cpu.threads());
    }
}

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
    let mut plan = Reducer::<f32>::plan_reduce(gpu, &spec).unwrap();
    let t = median_of(1000, || {
        gpu.reduce(&mut plan, &x_dev, None, &mut out).unwrap();
        std::hint::black_box(Reducer::<f32>::read_scalar(gpu, &out).unwrap());
    });
    println!("{{\"bench\":\"scalar_latency\",\"len\":1000,\"median_seconds\":{t:e}}}");
}

/// Seconds per attention call host to host (median of 5 after a warm-up).
fn attention_seconds<T: AttentionElement, B: SparseAttention<T>>(
    b: &B,
    spec: &AttentionSpec,
    mask: &BlockMask,
) -> f64 {
    let (ql, kvl, ll) = spec.lens().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut gen = |n: usize| -> Vec<T> {
        (0..n)
            .map(|_| T::from_f32(rng.random_range(-1.0..1.0)))
            .collect()
    };
    let (q, k, v) = (gen(ql), gen(kvl), gen(kvl));
    let mut o = vec![T::from_f32(0.0); ql];
    let mut lse = vec![0.0f32; ll];
    let mut plan = b.plan_attention(spec, mask).unwrap();
    median_of(5, || {
        b.attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
            .unwrap()
    })
}

fn attention_cases(gpu: &Wgpu, cpu: &Cpu) {
    let (b, h, s, d) = (1usize, 8usize, 2048usize, 64usize);
    let spec = AttentionSpec {
        batch: b,
        heads_q: h,
        heads_kv: h,
        seq_q: s,
        seq_kv: s,
        head_dim: d,
        scale: None,
    };
    for (name, mask) in [
        ("dense", BlockMask::dense(s, s, (64, 64)).unwrap()),
        ("causal", BlockMask::causal(s, s, (64, 64)).unwrap()),
    ] {
        // 4 BQ BK D flops per kept block per (b, h): Q K^T and P V.
        let flops = 4.0 * (64 * 64 * d) as f64 * mask.kept_blocks(b, h) as f64;
        let tg = attention_seconds::<f32, _>(gpu, &spec, &mask);
        let tc = attention_seconds::<f32, _>(cpu, &spec, &mask);
        let tg16 = if gpu.adapter().f16 {
            attention_seconds::<half::f16, _>(gpu, &spec, &mask)
        } else {
            f64::NAN
        };
        println!("{{\"bench\":\"attention\",\"mask\":\"{name}\",\"b\":{b},\"h\":{h},\"s\":{s},\"d\":{d},\"block\":64,\"kept_flops\":{flops:e},\"wgpu_f32_seconds\":{tg:e},\"wgpu_f16_seconds\":{tg16:e},\"cpu_f32_seconds\":{tc:e},\"wgpu_f32_tflops\":{:.4},\"wgpu_f16_tflops\":{:.4},\"cpu_f32_tflops\":{:.4}}}", flops / tg / 1e12, flops / tg16 / 1e12, flops / tc / 1e12);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let budget = Duration::from_millis(if quick { 50 } else { 200 });
    let gpu = Wgpu::new().expect("a wgpu adapter");
    let cpu = Cpu::new().unwrap();
    eprintln!("{:?}, CPU threads {}", gpu.adapter(), cpu.threads());
    let want = |what: &str| only.as_deref().is_none_or(|o| o == what);
    if want("seed") && gpu.adapter().f64 {
        seed_workload(&gpu, &cpu);
    }
    if want("reduce") {
        reduce_cases(&gpu, &cpu, budget);
    }
    if want("attention") {
        attention_cases(&gpu, &cpu);
    }
    if want("eigh") {
        // `--ns 16,32` and `--batches 1024` limit the grid.
        let list = |flag: &str, default: &[usize]| -> Vec<usize> {
            std::env::args()
                .skip_while(|a| a != flag)
                .nth(1)
                .map(|l| {
                    l.split(',')
                        .map(|n| n.parse().expect("a comma-separated list of sizes"))
                        .collect()
                })
                .unwrap_or_else(|| default.to_vec())
        };
        let opt = EighOptions {
            ns: list("--ns", &[4, 8, 12, 16, 32, 64, 128]),
            batches: list("--batches", &[1, 1024, 16384, 131072]),
            jacobi: std::env::args().any(|a| a == "--jacobi"),
            layouts: std::env::args().any(|a| a == "--layouts"),
            cpu: std::env::args().any(|a| a == "--cpu"),
        };
        eigh_cases::<f32>(&gpu, &cpu, budget, &opt);
        if gpu.adapter().f64 {
            eigh_cases::<f64>(&gpu, &cpu, budget, &opt);
        }
    }
}
