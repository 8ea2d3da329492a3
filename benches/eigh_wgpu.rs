//! megabatch's eigh on wgpu against the CPU backend in the same run: matrices/s over (dtype, n,
//! batch) with device-resident buffers and the seed workload host to host. Prints one JSON
//! object per line (docs/benchmarks/wgpu-h100.md tabulates them, with `reduce_wgpu`'s and
//! `attention_wgpu`'s).
//!
//! Usage: `cargo bench --features wgpu --bench eigh_wgpu [-- --quick] [--only eigh|seed]
//! [--ns 4,8,...] [--batches 1024,...] [--jacobi] [--layouts] [--global] [--cpu]`: eigh with
//! and without vectors, by size class (the shader each plan chose is printed), with `--jacobi`
//! also the Jacobi shader, with `--layouts` also every layout of the tridiagonal shader forced
//! (workgroup memory, rows in private arrays, and on adapters with subgroups the subgroup
//! layout, which the size classes take from order 5 to 64 there), with `--global` also the
//! global-memory layout forced (`WgpuEighAlgorithm::TridiagGlobal`; a case whose plan is the
//! size classes' own shader is not timed twice: its line repeats their time), with `--cpu`
//! also the CPU backend.
//! Timing: each case is warmed up (pipelines, bind groups), then repeated until the budget
//! (0.2 s, --quick 0.05 s) has passed, with a synchronisation every 8 calls and at the end;
//! the figure is the mean per call. Host-to-host cases report the median of 100 calls.

mod common;

use std::time::Duration;

use common::{matrices, median_of, time_loop};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::{Wgpu, WgpuEighAlgorithm};
use megabatch::{BatchedEigh, EighSpec, Real};

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
    /// Also every layout of the tridiagonal shader wherever it fits (`--layouts`): workgroup
    /// memory, rows in private arrays, subgroups (where the adapter has them).
    layouts: bool,
    /// Also the global-memory layout forced (`--global`).
    global: bool,
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
                if gpu.adapter().subgroups {
                    algorithms.push(WgpuEighAlgorithm::TridiagSubgroup);
                }
            }
            if opt.global {
                algorithms.push(WgpuEighAlgorithm::TridiagGlobal);
            }
            // Seconds per call by shader key, so that a forced layout the size classes already
            // chose is not timed again (the global layout from n = 106 on 48 KiB f32).
            let mut timed: Vec<(String, f64)> = Vec::new();
            for algorithm in algorithms {
                for vectors in [true, false] {
                    let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
                    let plan = gpu.plan_eigh_device::<T>(&spec, algorithm).unwrap();
                    let shader = plan.shaders().first().cloned().unwrap_or_default();
                    let tg = match timed.iter().find(|(key, _)| *key == shader) {
                        Some(&(_, t)) => t,
                        None => {
                            let t = eigh_seconds(gpu, plan, &a, n, batch, vectors, budget);
                            timed.push((shader.clone(), t));
                            t
                        }
                    };
                    println!(
                        "{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"vectors\":{vectors},\"algorithm\":\"{algorithm:?}\",\"shader\":\"{shader}\",\"wgpu_seconds\":{tg:e},\"wgpu_matrices_per_s\":{:e}}}",
                        T::DTYPE,
                        batch as f64 / tg
                    );
                }
            }
            if opt.cpu {
                let plan = cpu
                    .plan_eigh(&EighSpec::uniform(n, batch).with_vectors(true))
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
        let mut g = gpu.plan_eigh(&spec).unwrap();
        let mut c = cpu.plan_eigh(&spec).unwrap();
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
            global: std::env::args().any(|a| a == "--global"),
            cpu: std::env::args().any(|a| a == "--cpu"),
        };
        eigh_cases::<f32>(&gpu, &cpu, budget, &opt);
        if gpu.adapter().f64 {
            eigh_cases::<f64>(&gpu, &cpu, budget, &opt);
        }
    }
}
