//! The CUDA runner (feature `cuda`): its kernels compile through NVRTC for sm_80 and sm_90
//! without a GPU (skipped with a notice when libnvrtc cannot be loaded, unless
//! `MEGABATCH_REQUIRE_NVRTC=1`, as in CI); with a device (skipped with a notice unless
//! `MEGABATCH_REQUIRE_CUDA=1`), the converged energies of the CPU runner to 1e-8, exact particle
//! numbers, one device-to-host read per iteration and no device allocation after the first
//! iteration, in every schedule, and graph replay giving the eager energies.
//!
//! On a GPU host: `cargo test --release --features cuda --example scf_nuclei -- tests_cuda::`.

use std::sync::Mutex;

use megabatch::backends::cuda::{compile_source, nvrtc_available, nvrtc_version, Cuda};

use super::cuda::{kernel_source, CudaRunner, KERNEL_FILES, KERNEL_NAMES};
use super::layout::{self, BasisSize, Layout, SPECIES};
use super::levels::{levels, particle_number};
use super::runner::{self, Results, Runner, Schedule};
use super::scf::{self, Stop};
use super::{problem, DEFAULT_N_MAX, MAX_ITER};

/// The device tests read process-wide counters (`Cuda::device_reads`,
/// `Cuda::device_allocations`): one at a time.
static DEVICE: Mutex<()> = Mutex::new(());

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// The CUDA device, or `None` with a notice; a missing device fails when
/// `MEGABATCH_REQUIRE_CUDA=1`.
fn cuda_or_skip() -> Option<Cuda> {
    match Cuda::new() {
        Ok(c) => Some(c),
        Err(e) => {
            assert!(
                !required("MEGABATCH_REQUIRE_CUDA"),
                "MEGABATCH_REQUIRE_CUDA=1 but no CUDA device: {e}"
            );
            eprintln!("skipping: no CUDA device ({e})");
            None
        }
    }
}

#[test]
fn kernels_compile_with_nvrtc_for_sm80_and_sm90() {
    if !nvrtc_available() {
        assert!(
            !required("MEGABATCH_REQUIRE_NVRTC"),
            "MEGABATCH_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded"
        );
        eprintln!(
            "skipping: libnvrtc not found (LD_LIBRARY_PATH to the nvidia-cuda-nvrtc wheel's lib)"
        );
        return;
    }
    eprintln!("NVRTC {:?}", nvrtc_version().unwrap());
    // The default basis, and the most states the BCS kernel's registers hold (16 per lane).
    let default = Layout::new(&[(8, 8)], BasisSize::for_shells(DEFAULT_N_MAX));
    let largest = Layout::new(&[(8, 8)], BasisSize::for_shells(layout::max_shells()));
    for states in [default.states_per_species(), largest.states_per_species()] {
        let source = kernel_source(states);
        for (name, text) in KERNEL_FILES {
            assert!(source.contains(text), "{name} missing from the source");
        }
        for arch in ["sm_80", "sm_90"] {
            let t = std::time::Instant::now();
            let cubin = compile_source(arch, &source)
                .unwrap_or_else(|e| panic!("{arch}, {states} states per species: {e}"));
            eprintln!(
                "{arch}, {states} states per species: {} bytes of cubin in {:.2?}",
                cubin.len(),
                t.elapsed()
            );
            for name in KERNEL_NAMES {
                assert!(
                    cubin.windows(name.len()).any(|w| w == name.as_bytes()),
                    "{arch}: no entry point {name}"
                );
            }
        }
    }
}

/// Energies (MeV) of `results`.
fn totals(res: &Results) -> Vec<f64> {
    res.energy.iter().map(|e| e.total()).collect()
}

#[test]
fn cuda_runner_matches_the_cpu_runner() {
    let _one = DEVICE.lock().unwrap_or_else(|p| p.into_inner());
    if cuda_or_skip().is_none() {
        return;
    }
    // Closed shells (16O, 40Ca, 48Ca, 208Pb: no pairing) and 120Sn (paired neutrons). Both
    // runners converge far below the example's tolerance, where their iterates agree to
    // rounding whatever the number of iterations each took.
    let nuclei = [(8, 8), (20, 20), (20, 28), (82, 126), (50, 70)];
    let p = problem(&nuclei, DEFAULT_N_MAX);
    let stop = Stop {
        max_iter: MAX_ITER,
        tol: 1e-9,
    };
    let mut cpu = runner::make("cpu", p.clone()).unwrap();
    let cpu_out = scf::run(cpu.as_mut(), stop).unwrap();
    assert!(cpu_out.converged, "CPU: {:?}", cpu_out.history.last());
    for schedule in [Schedule::Eager, Schedule::Graph] {
        let mut gpu = CudaRunner::new(p.clone()).unwrap();
        gpu.set_schedule(schedule).unwrap();
        let out = scf::run(&mut gpu, stop).unwrap();
        assert!(out.converged, "{schedule:?}: {:?}", out.history.last());
        eprintln!(
            "{schedule:?}: {} iterations (CPU {}); {:.3} ms per iteration",
            out.iterations,
            cpu_out.iterations,
            out.loop_seconds * 1e3 / out.iterations as f64
        );
        let (want, got) = (totals(&cpu_out.results), totals(&out.results));
        for (k, &(z, n)) in nuclei.iter().enumerate() {
            let rel = (got[k] - want[k]).abs() / want[k].abs();
            eprintln!(
                "{schedule:?} ({z}, {n}): E = {:.9} MeV, CPU {:.9} MeV, relative difference {rel:.1e}; \
                 Delta_n {:.6} / {:.6}, Delta_p {:.6} / {:.6}",
                got[k],
                want[k],
                out.results.delta[2 * k],
                cpu_out.results.delta[2 * k],
                out.results.delta[2 * k + 1],
                cpu_out.results.delta[2 * k + 1]
            );
            assert!(rel < 1e-8, "({z}, {n}): {} vs {}", got[k], want[k]);
            for s in 0..SPECIES {
                let count = particle_number(&levels(&p.layout, &out.results, k, s));
                let exact = p.layout.particles[k * SPECIES + s];
                assert!(
                    (count - exact).abs() < 1e-10,
                    "({z}, {n}) species {s}: {count} vs {exact}"
                );
                assert_eq!(
                    out.results.delta[2 * k + s] == 0.0,
                    cpu_out.results.delta[2 * k + s] == 0.0,
                    "({z}, {n}) species {s}: pairing collapsed on one backend only"
                );
            }
        }
    }
}

/// The start and `iterations` iterations of `runner` as scf.rs runs them, but without the
/// convergence test; returns the device reads and allocations counted over the iterations
/// after the first.
fn iterate(runner: &mut dyn Runner, iterations: usize) -> (u64, u64, u64) {
    runner.start_fields().unwrap();
    runner.build_hamiltonian().unwrap();
    runner.eigh().unwrap();
    runner.bcs().unwrap();
    runner.densities().unwrap();
    runner.mix(true).unwrap();
    let reads = Cuda::device_reads();
    let mut allocations = 0;
    for k in 0..iterations {
        runner.build_fields().unwrap();
        runner.build_hamiltonian().unwrap();
        runner.eigh().unwrap();
        runner.bcs().unwrap();
        runner.densities().unwrap();
        let diff = runner.mix(false).unwrap();
        assert!(diff.is_finite() && diff > 0.0, "iteration {k}: {diff}");
        if k == 0 {
            allocations = Cuda::device_allocations();
        }
    }
    (
        Cuda::device_reads() - reads,
        Cuda::device_allocations() - allocations,
        Cuda::host_waits(),
    )
}

#[test]
fn one_read_per_iteration_no_allocation_and_graphs_replay_the_eager_iterations() {
    let _one = DEVICE.lock().unwrap_or_else(|p| p.into_inner());
    if cuda_or_skip().is_none() {
        return;
    }
    let nuclei = [(8, 8), (50, 70), (82, 126), (92, 146)];
    let p = problem(&nuclei, DEFAULT_N_MAX);
    const ITERATIONS: usize = 10;
    let mut energies = Vec::new();
    for schedule in [Schedule::Eager, Schedule::StepTimes, Schedule::Graph] {
        let mut gpu = CudaRunner::new(p.clone()).unwrap();
        gpu.set_schedule(schedule).unwrap();
        let waits = Cuda::host_waits();
        let (reads, allocations, waits_after) = iterate(&mut gpu, ITERATIONS);
        eprintln!(
            "{schedule:?}: {reads} device reads, {allocations} allocations after the first \
             iteration, {} host waits in the start and {ITERATIONS} iterations; {:?}",
            waits_after - waits,
            gpu.notes()
        );
        assert_eq!(reads, ITERATIONS as u64, "{schedule:?}: device reads");
        assert_eq!(allocations, 0, "{schedule:?}: device allocations");
        let res = gpu.results().unwrap();
        energies.push((schedule, totals(&res), res.rho));
    }
    let (_, eager, eager_rho) = &energies[0];
    for (schedule, e, rho) in &energies[1..] {
        let worst = e
            .iter()
            .zip(eager)
            .map(|(a, b)| (a - b).abs() / b.abs())
            .fold(0.0, f64::max);
        let same_bits = rho
            .iter()
            .zip(eager_rho)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        eprintln!(
            "{schedule:?} vs Eager: largest relative energy difference {worst:.1e}; densities \
             bit for bit: {same_bits}"
        );
        assert!(worst <= 1e-12, "{schedule:?}: {e:?} vs {eager:?}");
    }
}
