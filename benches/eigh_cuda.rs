//! megabatch's eigh on CUDA: matrices/s over (dtype, n, batch), the seed workload, the main
//! example's batch and a ragged batch of every order 0-300 host to host. Prints one JSON object per line (`benches/cuda_table.py`
//! joins them, with `reduce_cuda`'s, and the peers' `benches/cuda_peers.py` output into
//! docs/benchmarks/cuda-h100.md).
//!
//! Usage: `cargo bench --features cuda --bench eigh_cuda [-- --quick]
//! [--only seed,example,ragged,eigh,multi] [--ns 4,8] [--batches 1024] [--jacobi] [--groups] [--cpu]
//! [--ragged-max 300]`. Each eigh case reports its plans' device bytes (`device_bytes` with
//! vectors, `values_only_device_bytes`; device-buffer plans, so the caller's A, W and V are not
//! counted) beside `matrix_bytes`, one n x n array of the batch. Timing: each case is
//! warmed up, then repeated until 0.2 s (--quick: 0.05 s) have passed with a device
//! synchronisation at the end; the figure is the mean per call. Host-to-host cases report
//! the median of their repetitions.

mod common;

use std::time::{Duration, Instant};

use common::{list_arg, matrices, median, median_of, time_loop};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::cuda::{Cuda, CudaEighAlgorithm, EighClass};
use megabatch::{Backend, BatchedEigh, EighSpec, PlanFootprint, Real};

/// Options of the eigh cases (`--ns 4,8`, `--batches 1,1024`, `--jacobi`, `--groups`, `--cpu`).
struct EighOptions {
    ns: Vec<usize>,
    batches: Vec<usize>,
    /// Also time the Jacobi algorithm the size classes replaced (n <= 64, batch >= 1024).
    jacobi: bool,
    /// Also time the layouts a size class chose between, each forced: the group-computed QL
    /// (warp classes) and the chains classes at n = 9..32, the block classes and the split
    /// classes from n = 33 while A fits shared memory, and divide and conquer with its
    /// per-order vectors in global memory where it holds them in shared memory.
    groups: bool,
    /// Also time the CPU backend, host to host, at batch 1024.
    cpu: bool,
}

fn rate_case<T: Real>(
    cuda: &Cuda,
    spec: &EighSpec,
    algorithm: CudaEighAlgorithm,
    a_dev: &megabatch::backends::cuda::CudaBuffer<T>,
    w_dev: &mut megabatch::backends::cuda::CudaBuffer<T>,
    v_dev: &mut megabatch::backends::cuda::CudaBuffer<T>,
    budget: Duration,
) -> (f64, usize, String) {
    // Device buffers only: no host staging (its device arrays would count in device_bytes).
    let mut plan = cuda.plan_eigh_device::<T>(spec, algorithm).unwrap();
    let vectors = spec.vectors();
    let t = time_loop(
        budget,
        || {
            cuda.eigh(&mut plan, a_dev, w_dev, vectors.then_some(&mut *v_dev))
                .unwrap()
        },
        || cuda.synchronize().unwrap(),
    );
    let classes = plan
        .classes()
        .iter()
        .map(|(c, _)| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join("+");
    (t, plan.device_bytes(), classes)
}

fn eigh_case<T: Real>(
    cuda: &Cuda,
    cpu: &Cpu,
    n: usize,
    batch: usize,
    budget: Duration,
    opts: &EighOptions,
) {
    let bytes = n * n * batch * std::mem::size_of::<T>();
    if bytes > 12 << 30 {
        println!("{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"skipped\":\"{} GiB per array\"}}", T::DTYPE, bytes >> 30);
        return;
    }
    let order_class = EighClass::for_order(
        n,
        std::mem::size_of::<T>(),
        cuda.info().max_shared_per_block,
    );
    if order_class == EighClass::Jacobi && batch > 1024 {
        // The Jacobi fallback (forced, or blocks too small for divide and conquer) runs about
        // 100 matrices/s at n = 256.
        println!("{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"skipped\":\"Jacobi fallback, timed at batch <= 1024 only\"}}", T::DTYPE);
        return;
    }
    let a = matrices::<T>(n, batch);
    let mut a_dev = cuda.alloc::<T>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<T>(n * batch).unwrap();
    let mut v_dev = cuda.alloc::<T>(a.len()).unwrap();
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let classes = CudaEighAlgorithm::SizeClasses;
    let (t, device_bytes, class) =
        rate_case(cuda, &spec, classes, &a_dev, &mut w_dev, &mut v_dev, budget);
    let (tw, values_device_bytes, _) = rate_case(
        cuda,
        &EighSpec::uniform(n, batch),
        classes,
        &a_dev,
        &mut w_dev,
        &mut v_dev,
        budget,
    );
    // Every output checked for NaN once, so a broken kernel cannot look fast.
    let mut w = vec![T::zero(); n * batch];
    cuda.download(&w_dev, &mut w).unwrap();
    let finite = w.iter().all(|x| x.is_finite());
    let mut extra = String::new();
    if opts.jacobi && n <= 64 && batch >= 1024 {
        let jacobi = CudaEighAlgorithm::Jacobi;
        let (tj, _, _) = rate_case(cuda, &spec, jacobi, &a_dev, &mut w_dev, &mut v_dev, budget);
        extra.push_str(&format!(",\"jacobi_seconds\":{tj:e}"));
    }
    let layouts: &[(&str, CudaEighAlgorithm)] = match n {
        9..=32 => &[
            ("group", CudaEighAlgorithm::GroupChains),
            ("lane", CudaEighAlgorithm::LaneChains),
        ],
        // Where the block classes hold A, their two layouts and divide and conquer forced.
        33.. if matches!(
            order_class,
            EighClass::Block { .. } | EighClass::Split { .. }
        ) =>
        {
            &[
                ("fused", CudaEighAlgorithm::FusedBlocks),
                ("split", CudaEighAlgorithm::SplitBlocks),
                ("dc", CudaEighAlgorithm::DivideConquer),
            ]
        }
        // Divide and conquer's per-order vectors in the slots (the layout of the largest
        // orders) against the shared-memory layout the class takes where they fit.
        33.. if order_class == EighClass::DivideConquer => {
            &[("dc_global", CudaEighAlgorithm::DivideConquerGlobal)]
        }
        _ => &[],
    };
    if opts.groups {
        let values = EighSpec::uniform(n, batch);
        for &(key, algorithm) in layouts {
            let (t, _, _) = rate_case(
                cuda, &spec, algorithm, &a_dev, &mut w_dev, &mut v_dev, budget,
            );
            let (tw, _, _) = rate_case(
                cuda, &values, algorithm, &a_dev, &mut w_dev, &mut v_dev, budget,
            );
            extra.push_str(&format!(
                ",\"{key}_seconds\":{t:e},\"{key}_values_only_seconds\":{tw:e}"
            ));
        }
    }
    if opts.cpu && batch == 1024 {
        let mut plan = cpu.plan_eigh(&spec).unwrap();
        let mut v = vec![T::zero(); a.len()];
        let tc = time_loop(
            budget,
            || cpu.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap(),
            || (),
        );
        let mut plan = cpu.plan_eigh(&EighSpec::uniform(n, batch)).unwrap();
        let tcw = time_loop(
            budget,
            || cpu.eigh_host(&mut plan, &a, &mut w, None).unwrap(),
            || (),
        );
        extra.push_str(&format!(
            ",\"cpu_seconds\":{tc:e},\"cpu_values_only_seconds\":{tcw:e},\"cpu_threads\":{}",
            cpu.threads()
        ));
    }
    println!(
        "{{\"bench\":\"eigh\",\"dtype\":\"{}\",\"n\":{n},\"batch\":{batch},\"seconds\":{t:e},\"matrices_per_s\":{:e},\"values_only_seconds\":{tw:e},\"class\":\"{class}\",\"device_bytes\":{device_bytes},\"values_only_device_bytes\":{values_device_bytes},\"matrix_bytes\":{bytes},\"finite\":{finite}{extra}}}",
        T::DTYPE,
        batch as f64 / t
    );
}

/// A planned host-to-host eigh call.
type HostCall<'a> = Box<dyn FnMut(&[f64], &mut [f64]) + 'a>;

/// The main example's batch: 199,916 blocks, orders 1-10 (19,504 each) and 11 (4,876),
/// interleaved as the example lays them out; values only, host to host, on CUDA with either
/// staging and on the CPU: plan, first call and the median of repeated calls.
fn example_workload<'c>(cuda: &'c Cuda, cpu: &'c Cpu) {
    let mut sizes = Vec::new();
    for _ in 0..4876 {
        for n in 1..=10 {
            sizes.extend([n; 4]);
        }
        sizes.push(11);
    }
    let spec = EighSpec::ragged(sizes.clone());
    let offsets = spec.offsets(8).unwrap();
    let mut a = Vec::with_capacity(offsets.a_len());
    for &n in &sizes {
        a.extend(matrices::<f64>(n, 1));
    }
    let mut w = vec![0.0; offsets.w_len()];
    let mut run = |name: &str, plan_fn: &mut dyn FnMut() -> HostCall<'c>| {
        let s = Instant::now();
        let mut call = plan_fn();
        let plan_s = s.elapsed().as_secs_f64();
        let s = Instant::now();
        call(&a, &mut w);
        let first_s = s.elapsed().as_secs_f64();
        let repeat = median(
            (0..15)
                .map(|_| {
                    let s = Instant::now();
                    call(&a, &mut w);
                    s.elapsed().as_secs_f64()
                })
                .collect(),
        );
        println!("{{\"bench\":\"example\",\"matrices\":{},\"a_bytes\":{},\"backend\":\"{name}\",\"plan_seconds\":{plan_s:e},\"first_call_seconds\":{first_s:e},\"repeat_seconds\":{repeat:e}}}", sizes.len(), 8 * offsets.a_len());
    };
    for staging in ["direct", "pinned"] {
        std::env::set_var(megabatch::backends::cuda::STAGING_ENV, staging);
        run(&format!("cuda-{staging}"), &mut || {
            let mut plan = cuda.plan_eigh(&spec).unwrap();
            Box::new(move |a: &[f64], w: &mut [f64]| cuda.eigh_host(&mut plan, a, w, None).unwrap())
        });
    }
    std::env::remove_var(megabatch::backends::cuda::STAGING_ENV);
    run("cpu", &mut || {
        let mut plan = cpu.plan_eigh(&spec).unwrap();
        Box::new(move |a: &[f64], w: &mut [f64]| cpu.eigh_host(&mut plan, a, w, None).unwrap())
    });
}

/// Issue 26's mixed batch (every order 0-300 once, shuffled), f64 with vectors, host to host,
/// forced onto CUDA (the size classes, whichever each order takes) and on the CPU: medians
/// of 5 calls after one warm-up, and the ratio (target: CUDA within 2x of the CPU).
fn ragged_workload(cuda: &Cuda, cpu: &Cpu) {
    let max_order = list_arg("--ragged-max").map_or(300, |v| v[0]);
    let (sizes, a) = common::ragged_every_order::<f64>(max_order);
    let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
    let offsets = spec.offsets(8).unwrap();
    let mut w = vec![0.0; offsets.w_len()];
    let mut v = vec![0.0; offsets.a_len()];
    let mut gpu = cuda.plan_eigh(&spec).unwrap();
    let classes = gpu
        .classes()
        .iter()
        .map(|(c, count)| format!("{c:?}:{count}"))
        .collect::<Vec<_>>()
        .join("+");
    let tg = median_of(5, || {
        cuda.eigh_host(&mut gpu, &a, &mut w, Some(&mut v)).unwrap()
    });
    let mut host = cpu.plan_eigh(&spec).unwrap();
    let tc = median_of(5, || {
        cpu.eigh_host(&mut host, &a, &mut w, Some(&mut v)).unwrap()
    });
    println!("{{\"bench\":\"ragged\",\"dtype\":\"f64\",\"matrices\":{},\"max_order\":{max_order},\"vectors\":true,\"cuda_seconds\":{tg:e},\"cpu_seconds\":{tc:e},\"cuda_over_cpu\":{:.3},\"cpu_threads\":{},\"classes\":\"{classes}\"}}", sizes.len(), tg / tc, cpu.threads());
}

/// Issue 29's target: eigh over every GPU of the host (`Multi::every_cuda_device`) against
/// device 0 alone, uniform batches of n = 12 and 64 at batch 131072 (`--ns`, `--batches`),
/// f64 with vectors, device-resident (each device's part already there: the plan's split) and
/// host to host. Prints the devices' count and the speed-up (target: >= 0.9 x devices).
fn multi_workload(cuda: &Cuda) {
    use megabatch::backends::multi::Multi;
    let multi = match Multi::every_cuda_device() {
        Ok(m) => m,
        Err(e) => {
            println!("{{\"bench\":\"multi\",\"skipped\":\"{e}\"}}");
            return;
        }
    };
    let devices = multi.devices().len();
    for &n in &list_arg("--ns").unwrap_or_else(|| vec![12, 64]) {
        for &batch in &list_arg("--batches").unwrap_or_else(|| vec![131_072]) {
            let spec = EighSpec::uniform(n, batch).with_vectors(true);
            let a = matrices::<f64>(n, batch);
            let (mut w, mut v) = (vec![0.0; n * batch], vec![0.0; n * n * batch]);
            // One device, resident and host to host.
            let mut one = cuda.plan_eigh(&spec).unwrap();
            let mut a1 = cuda.alloc::<f64>(a.len()).unwrap();
            let mut w1 = cuda.alloc::<f64>(w.len()).unwrap();
            let mut v1 = cuda.alloc::<f64>(v.len()).unwrap();
            cuda.upload(&a, &mut a1).unwrap();
            let one_resident = median_of(10, || {
                cuda.eigh(&mut one, &a1, &mut w1, Some(&mut v1)).unwrap();
                cuda.synchronize().unwrap();
            });
            let one_host = median_of(5, || {
                cuda.eigh_host(&mut one, &a, &mut w, Some(&mut v)).unwrap()
            });
            // Every device.
            let mut plan = multi.plan_eigh(&spec).unwrap();
            let by_a = || plan.parts().iter().map(|p| p.a.clone()).collect::<Vec<_>>();
            let mut am = multi.alloc_parts::<f64>(by_a()).unwrap();
            let mut wm = multi
                .alloc_parts::<f64>(plan.parts().iter().map(|p| p.w.clone()).collect::<Vec<_>>())
                .unwrap();
            let mut vm = multi.alloc_parts::<f64>(by_a()).unwrap();
            multi.upload(&a, &mut am).unwrap();
            let all_resident = median_of(10, || {
                multi.eigh(&mut plan, &am, &mut wm, Some(&mut vm)).unwrap();
                multi.synchronize().unwrap();
            });
            let all_host = median_of(5, || {
                multi
                    .eigh_host(&mut plan, &a, &mut w, Some(&mut v))
                    .unwrap()
            });
            println!("{{\"bench\":\"multi\",\"n\":{n},\"batch\":{batch},\"devices\":{devices},\"one_resident_seconds\":{one_resident:e},\"all_resident_seconds\":{all_resident:e},\"resident_speedup\":{:.3},\"one_host_seconds\":{one_host:e},\"all_host_seconds\":{all_host:e},\"host_speedup\":{:.3}}}", one_resident / all_resident, one_host / all_host);
        }
    }
}

fn seed_workload(cuda: &Cuda, cpu: &Cpu) {
    let (n, batch) = (12, 1582);
    let a = matrices::<f64>(n, batch);
    let mut w = vec![0.0; n * batch];
    let mut v = vec![0.0; n * n * batch];
    for vectors in [true, false] {
        let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
        let mut gpu = cuda.plan_eigh(&spec).unwrap();
        let mut host = cpu.plan_eigh(&spec).unwrap();
        let tg = median_of(200, || {
            cuda.eigh_host(&mut gpu, &a, &mut w, vectors.then_some(&mut v[..]))
                .unwrap()
        });
        let tc = median_of(200, || {
            cpu.eigh_host(&mut host, &a, &mut w, vectors.then_some(&mut v[..]))
                .unwrap()
        });
        println!("{{\"bench\":\"seed\",\"n\":12,\"batch\":1582,\"vectors\":{vectors},\"cuda_seconds\":{tg:e},\"cpu_seconds\":{tc:e},\"cpu_threads\":{}}}", cpu.threads());
    }
    seed_parts(cuda, &a, &mut w, &mut v);
}

/// The seed workload's parts, each alone (medians of 200): the solve on resident buffers, and
/// the pageable transfers of A and V, so that a host call's time can be read against them.
fn seed_parts(cuda: &Cuda, a: &[f64], w: &mut [f64], v: &mut [f64]) {
    let spec = EighSpec::uniform(12, 1582).with_vectors(true);
    let mut plan = cuda
        .plan_eigh_device::<f64>(&spec, CudaEighAlgorithm::SizeClasses)
        .unwrap();
    let mut a_dev = cuda.alloc::<f64>(a.len()).unwrap();
    let mut w_dev = cuda.alloc::<f64>(w.len()).unwrap();
    let mut v_dev = cuda.alloc::<f64>(v.len()).unwrap();
    cuda.upload(a, &mut a_dev).unwrap();
    let solve = median_of(200, || {
        cuda.eigh(&mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
            .unwrap();
        cuda.synchronize().unwrap();
    });
    let upload = median_of(200, || cuda.upload(a, &mut a_dev).unwrap());
    let download = median_of(200, || cuda.download(&v_dev, v).unwrap());
    let copy = median_of(200, || v.copy_from_slice(a));
    println!("{{\"bench\":\"seed-parts\",\"n\":12,\"batch\":1582,\"resident_solve_seconds\":{solve:e},\"upload_a_pageable_seconds\":{upload:e},\"download_v_pageable_seconds\":{download:e},\"host_copy_a_seconds\":{copy:e}}}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().skip_while(|a| *a != "--only").nth(1).cloned();
    let budget = Duration::from_millis(if quick { 50 } else { 200 });
    let cuda = Cuda::new().expect("a CUDA device");
    let cpu = Cpu::new().unwrap();
    eprintln!("{:?}, CPU threads {}", cuda.info(), cpu.threads());
    let want = |what: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == what))
    };
    if want("seed") {
        seed_workload(&cuda, &cpu);
    }
    if want("example") {
        example_workload(&cuda, &cpu);
    }
    if want("ragged") {
        ragged_workload(&cuda, &cpu);
    }
    // Only when asked: it allocates on every GPU of the host.
    if only
        .as_deref()
        .is_some_and(|o| o.split(',').any(|x| x == "multi"))
    {
        multi_workload(&cuda);
    }
    if want("eigh") {
        let default_ns: &[usize] = if quick {
            &[4, 12, 32, 64, 128]
        } else {
            &[4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 256]
        };
        let opts = EighOptions {
            ns: list_arg("--ns").unwrap_or_else(|| default_ns.to_vec()),
            batches: list_arg("--batches").unwrap_or_else(|| vec![1, 1024, 16384, 131072]),
            jacobi: args.iter().any(|a| a == "--jacobi"),
            groups: args.iter().any(|a| a == "--groups"),
            cpu: args.iter().any(|a| a == "--cpu"),
        };
        for &n in &opts.ns {
            for &batch in &opts.batches {
                eigh_case::<f64>(&cuda, &cpu, n, batch, budget, &opts);
                eigh_case::<f32>(&cuda, &cpu, n, batch, budget, &opts);
            }
        }
    }
}
