//! megabatch over MPI: rank 0 draws a ragged batch of symmetric matrices, every rank takes a
//! contiguous part of about equal work (`EighSpec::split_by_work`, n^3 + 1 per matrix), rank 0
//! scatters the matrices (`MPI_Scatterv`), each rank solves its part with `Auto` (its own GPU
//! where a host has several: local rank modulo the device count; its share of the host's
//! cores otherwise), and rank 0 gathers the eigenvalues (`MPI_Gatherv`). It prints one JSON
//! line: the scatter, solve and gather times; with `--check`, rank 0 also solves the whole
//! batch alone on the same backend and compares.
//!
//! ```text
//! cargo build --release --manifest-path examples/mpi_eigh/Cargo.toml
//! mpirun -np 2 examples/mpi_eigh/target/release/mpi_eigh --matrices 20000 --max-order 32 --check
//! ```
//! Runs unchanged across hosts (`mpirun --hostfile ...`): only rank 0 needs the batch.

mod batch;

use std::time::Instant;

use clap::Parser;
use megabatch::backends::cpu::Cpu;
use megabatch::{Auto, BackendKind, BatchedEigh, EighSpec};
use mpi::datatype::{Partition, PartitionMut};
use mpi::traits::*;
use mpi::Count;

/// Command-line options (every rank parses the same).
#[derive(Parser, Debug)]
#[command(about = "One ragged eigh batch across MPI ranks, split by work")]
struct Args {
    /// Matrices in the batch.
    #[arg(long, default_value_t = 20_000)]
    matrices: usize,
    /// Orders are uniform in 1..=max-order.
    #[arg(long, default_value_t = 32)]
    max_order: usize,
    /// Seed of the batch.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The backend every rank uses: auto (the cost model picks per rank), cpu, cuda or wgpu.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// CPU threads per rank (default: this host's cores shared by its ranks).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed solves per rank (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Rank 0 also solves the whole batch alone (all of its host's cores, the backend rank 0
    /// used) and compares the eigenvalues; exits with status 1 if they differ.
    #[arg(long)]
    check: bool,
}

/// Relative tolerance of `--check` when the results are not bit for bit the same (a part's
/// boundary can change how the CPU backend groups equal orders into SIMD lanes).
const CHECK_RTOL: f64 = 1e-12;

fn backend_code(kind: BackendKind) -> u8 {
    match kind {
        BackendKind::Cpu => 0,
        BackendKind::Cuda => 1,
        BackendKind::Wgpu => 2,
        _ => 255,
    }
}

fn backend_name(code: u8) -> &'static str {
    match code {
        0 => "cpu",
        1 => "cuda",
        2 => "wgpu",
        _ => "other",
    }
}

fn parse_backend(name: &str) -> Result<Option<BackendKind>, String> {
    match name {
        "auto" => Ok(None),
        "cpu" => Ok(Some(BackendKind::Cpu)),
        "cuda" => Ok(Some(BackendKind::Cuda)),
        "wgpu" => Ok(Some(BackendKind::Wgpu)),
        other => Err(format!(
            "--backend must be auto, cpu, cuda or wgpu, got {other:?}"
        )),
    }
}

/// This rank's `Auto`: the whole host when the rank is alone on it (`Auto::new`, with this
/// machine's calibration); else `threads` CPU threads and, with the `cuda` feature, the GPU
/// `local_rank` modulo the host's device count.
fn rank_auto(local_rank: usize, local_size: usize, threads: usize) -> megabatch::Result<Auto> {
    if local_size == 1 {
        return Auto::new();
    }
    #[allow(unused_mut)]
    let mut auto = Auto::with_cpu(Cpu::with_threads(threads)?);
    #[cfg(feature = "cuda")]
    {
        use megabatch::backends::cuda::Cuda;
        if let Ok(count) = Cuda::device_count() {
            if count > 0 {
                auto = auto.add_cuda(Cuda::with_device(local_rank % count)?);
            }
        }
    }
    let _ = local_rank;
    Ok(auto)
}

/// A barrier that sleeps between polls instead of spinning (Open MPI's blocking barrier
/// busy-waits, which would take a core from rank 0's single-process comparison).
fn idle_barrier(comm: &impl Communicator) {
    let mut request = comm.immediate_barrier();
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => {
                request = pending;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Plans `spec` on `auto` and solves `a` `repeat` times into `w`: the backend and the median
/// seconds of a solve.
fn solve(
    auto: &Auto,
    spec: &EighSpec,
    a: &[f64],
    w: &mut [f64],
    repeat: usize,
) -> megabatch::Result<(BackendKind, f64)> {
    let mut plan = auto.plan_eigh(spec)?;
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        auto.eigh_host(&mut plan, a, w, None)?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok((plan.backend(), median(times)))
}

/// MPI counts and displacements of `ranges` (i32: MPI's `int` counts).
fn counts_and_displs(
    ranges: impl Iterator<Item = std::ops::Range<usize>>,
) -> (Vec<Count>, Vec<Count>) {
    let to_count =
        |x: usize| Count::try_from(x).expect("a part over 2^31 elements: use more ranks");
    ranges
        .map(|r| (to_count(r.len()), to_count(r.start)))
        .unzip()
}

fn main() {
    let args = Args::parse();
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    let root = world.process_at_rank(0);
    // The ranks on this host share its cores and GPUs.
    let host = world.split_shared(rank);
    let (local_rank, local_size) = (host.rank() as usize, host.size() as usize);
    let forced = match parse_backend(&args.backend) {
        Ok(f) => f,
        Err(e) => {
            if rank == 0 {
                eprintln!("{e}");
            }
            std::process::exit(2);
        }
    };

    // Every rank learns the orders (small), then computes the same split.
    let mut count = if rank == 0 { args.matrices as u64 } else { 0 };
    root.broadcast_into(&mut count);
    let mut orders: Vec<u64> = if rank == 0 {
        batch::orders(args.matrices, args.max_order, args.seed)
            .into_iter()
            .map(|n| n as u64)
            .collect()
    } else {
        vec![0; count as usize]
    };
    root.broadcast_into(&mut orders[..]);
    let sizes: Vec<usize> = orders.iter().map(|&n| n as usize).collect();
    let spec = EighSpec::ragged(sizes.clone());
    let parts = spec
        .split_by_work(size as usize)
        .expect("a batch that fits memory");
    let mine = &parts[rank as usize];

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = args.threads.unwrap_or((cores / local_size).max(1));
    let auto = rank_auto(local_rank, local_size, threads)
        .and_then(|a| match forced {
            Some(kind) => a.force(kind),
            None => Ok(a),
        })
        .unwrap_or_else(|e| panic!("rank {rank}: no backend: {e}"));

    // Scatter the matrices.
    let whole_a = if rank == 0 {
        batch::matrices(&sizes, args.seed)
    } else {
        Vec::new()
    };
    let mut a = vec![0.0f64; mine.a.len()];
    world.barrier();
    let t0 = Instant::now();
    if rank == 0 {
        let (counts, displs) = counts_and_displs(parts.iter().map(|p| p.a.clone()));
        let partition = Partition::new(&whole_a[..], counts, &displs[..]);
        root.scatter_varcount_into_root(&partition, &mut a[..]);
    } else {
        root.scatter_varcount_into(&mut a[..]);
    }
    let scatter_s = t0.elapsed().as_secs_f64();

    let mut w = vec![0.0f64; mine.w.len()];
    let (kind, solve_s) = solve(&auto, &mine.spec, &a, &mut w, args.repeat)
        .unwrap_or_else(|e| panic!("rank {rank}: eigh failed: {e}"));

    // Gather the eigenvalues, then every rank's time and backend.
    world.barrier();
    let t1 = Instant::now();
    let mut whole_w = vec![
        0.0f64;
        if rank == 0 {
            spec.offsets(8).unwrap().w_len()
        } else {
            0
        }
    ];
    if rank == 0 {
        let (counts, displs) = counts_and_displs(parts.iter().map(|p| p.w.clone()));
        let mut partition = PartitionMut::new(&mut whole_w[..], counts, &displs[..]);
        root.gather_varcount_into_root(&w[..], &mut partition);
    } else {
        root.gather_varcount_into(&w[..]);
    }
    let gather_s = t1.elapsed().as_secs_f64();
    let code = backend_code(kind);
    let mut solve_times = vec![0.0f64; if rank == 0 { size as usize } else { 0 }];
    let mut codes = vec![0u8; if rank == 0 { size as usize } else { 0 }];
    if rank == 0 {
        root.gather_into_root(&solve_s, &mut solve_times[..]);
        root.gather_into_root(&code, &mut codes[..]);
    } else {
        root.gather_into(&solve_s);
        root.gather_into(&code);
    }

    let mut failed = false;
    if rank == 0 {
        let slowest = solve_times.iter().copied().fold(0.0, f64::max);
        let backends: Vec<&str> = codes.iter().map(|&c| backend_name(c)).collect();
        let mut line = format!(
            "{{\"example\":\"mpi_eigh\",\"ranks\":{size},\"matrices\":{},\"max_order\":{},\"threads_per_rank\":{threads},\"backends\":{backends:?},\"rank_solve_seconds\":{solve_times:?},\"scatter_seconds\":{scatter_s:e},\"solve_seconds\":{slowest:e},\"gather_seconds\":{gather_s:e},\"total_seconds\":{:e}",
            sizes.len(),
            args.max_order,
            scatter_s + slowest + gather_s
        );
        if args.check {
            // The whole batch in this one process, on the backend rank 0 used, with every
            // core of the host (the other ranks sleep in the barrier below).
            let alone = Auto::with_cpu(Cpu::new().expect("CPU threads"));
            let alone = if kind == BackendKind::Cpu {
                alone.force(BackendKind::Cpu).expect("the CPU backend")
            } else {
                Auto::new()
                    .and_then(|a| a.force(kind))
                    .expect("rank 0's backend in one process")
            };
            let mut single_w = vec![0.0f64; whole_w.len()];
            let (_, single_s) = solve(&alone, &spec, &whole_a, &mut single_w, args.repeat)
                .expect("the single-process solve");
            let bitwise = single_w == whole_w;
            let mut worst = 0.0f64;
            let offsets = spec.offsets(8).expect("checked when planned");
            for i in 0..sizes.len() {
                // Each matrix's differences relative to its spectral radius (at least 1).
                let slot = offsets.slot(i);
                let at = slot.w_start..slot.w_start + slot.n;
                let scale = single_w[at.clone()]
                    .iter()
                    .fold(1.0f64, |m, x| m.max(x.abs()));
                for (x, y) in single_w[at.clone()].iter().zip(&whole_w[at]) {
                    worst = worst.max((x - y).abs() / scale);
                }
            }
            failed = !(bitwise || worst <= CHECK_RTOL);
            line.push_str(&format!(
                ",\"single_process_seconds\":{single_s:e},\"solve_over_single\":{:.3},\"bitwise_equal\":{bitwise},\"max_relative_difference\":{worst:e},\"check\":\"{}\"",
                slowest / single_s,
                if failed { "FAILED" } else { "passed" }
            ));
        }
        println!("{line}}}");
    }
    idle_barrier(&world);
    let mut status = u8::from(failed);
    root.broadcast_into(&mut status);
    if status != 0 {
        std::process::exit(1);
    }
}
