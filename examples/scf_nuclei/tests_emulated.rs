//! The CUDA runner's kernels on a machine without a GPU: `kernels/emulate.cpp` compiles the
//! kernels' translation unit (cuda.rs's `kernel_source`) as C++ against the CPU emulation of
//! CUDA in `scripts/cuda_emu/cuda_emu.h` (the BCS kernel's warp with a thread per lane and its
//! shuffles as barriers), and each kernel, launched with the runner's shapes, must give what
//! the CPU step gives on the same inputs: the Woods-Saxon start, H, BCS (cold start, warm
//! start, no pairing), densities, Coulomb, fields and mixing of 44Ca, 120Sn and 208Pb.
//! Needs g++ (C++20): without it, prints `SKIPPED` and returns, unless `MEGABATCH_REQUIRE_GXX=1`
//! or `CI` is set (`tests/common/cxx.rs`).
//!
//! The argument lists below repeat cuda.rs's launches: the emulation checks their count and
//! kinds, not that cuda.rs passes the same buffers in the same order (read them side by side).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec};

use super::cuda::{
    coefficient_words, kernel_source, lower_triangle, BCS_BLOCK, MIX_BLOCK, POINT_BLOCK, WARP,
};
use super::layout::{Layout, SPECIES};
use super::skyrme::HBAR2_2M;
use super::steps::bcs::{self, Pairing};
use super::steps::{coulomb, densities, fields, hamiltonian, mixing, woods_saxon};
use super::steps::{Densities, Fields};
use super::{problem, DEFAULT_N_MAX};

/// One argument of an emulated launch, as the kernel's parameter: a buffer read, a buffer
/// written (sent with its current values, copied back afterwards), or a scalar.
enum Arg<'a> {
    In(&'a [f64]),
    Out(&'a mut [f64]),
    Index(&'a [u32]),
    F(f64),
    U(u32),
}
use Arg::{In, Index, Out, F, U};

/// The emulator, built once per test process in a fresh folder; `None` after a skip notice
/// without a C++20 g++.
fn emulator(states_per_species: usize) -> Option<PathBuf> {
    if !super::cxx::gxx_or_skip() {
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("scf-nuclei-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // emulate.cpp runs its own std::thread per lane over cuda_emu.h's barriers: the
    // thread-safe barriers of MB_EMU_THREADS, not the fibers of emu::launch.
    let source = format!(
        "#define MB_EMU_THREADS\n#include \"{}\"\nusing std::cbrt;\nusing std::exp;\n{}\n#include \"{}\"\n",
        root.join("scripts/cuda_emu/cuda_emu.h").display(),
        kernel_source(states_per_species),
        root.join("examples/scf_nuclei/kernels/emulate.cpp")
            .display()
    );
    let cpp = dir.join("emulate.cpp");
    std::fs::write(&cpp, source).unwrap();
    let bin = dir.join("emulate");
    let built = Command::new("g++")
        .args([
            "-std=c++20",
            "-O2",
            "-Wno-unknown-pragmas",
            "-pthread",
            "-o",
        ])
        .arg(&bin)
        .arg(&cpp)
        .output();
    match built {
        Ok(out) if out.status.success() => Some(bin),
        Ok(out) => panic!(
            "g++ failed to build the kernels' emulation:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("g++ passed its C++20 probe but did not start again: {e}"),
    }
}

/// Runs kernel `name` over `threads` threads in blocks of `block` (as `LaunchDims::linear`).
fn emulate(bin: &Path, name: &str, threads: usize, block: u32, args: &mut [Arg<'_>]) {
    static JOBS: AtomicUsize = AtomicUsize::new(0);
    let id = JOBS.fetch_add(1, Ordering::Relaxed);
    let dir = bin.parent().unwrap();
    let (job_path, out_path) = (dir.join(format!("job{id}")), dir.join(format!("out{id}")));
    let grid = threads.div_ceil(block as usize).max(1) as u32;
    let mut job = Vec::new();
    job.extend((name.len() as u32).to_le_bytes());
    job.extend(name.as_bytes());
    job.extend(grid.to_le_bytes());
    job.extend(block.to_le_bytes());
    job.extend((args.len() as u32).to_le_bytes());
    for a in args.iter() {
        let f64s = |job: &mut Vec<u8>, v: &[f64]| {
            job.extend(0u32.to_le_bytes());
            job.extend((v.len() as u64).to_le_bytes());
            v.iter().for_each(|x| job.extend(x.to_le_bytes()));
        };
        match a {
            In(v) => f64s(&mut job, v),
            Out(v) => f64s(&mut job, v),
            Index(v) => {
                job.extend(1u32.to_le_bytes());
                job.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|x| job.extend(x.to_le_bytes()));
            }
            F(x) => {
                job.extend(2u32.to_le_bytes());
                job.extend(x.to_le_bytes());
            }
            U(x) => {
                job.extend(3u32.to_le_bytes());
                job.extend(x.to_le_bytes());
            }
        }
    }
    std::fs::write(&job_path, job).unwrap();
    let run = Command::new(bin)
        .arg(&job_path)
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{name} under emulation: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = std::fs::read(&out_path).unwrap();
    let mut at = 0;
    let mut take = |n: usize| {
        let s = &out[at..at + n];
        at += n;
        s
    };
    for a in args.iter_mut() {
        let width = match a {
            In(_) | Out(_) => 8,
            Index(_) => 4,
            F(_) | U(_) => continue,
        };
        let len = u64::from_le_bytes(take(8).try_into().unwrap()) as usize;
        let bytes = take(len * width);
        if let Out(v) = a {
            assert_eq!(v.len(), len);
            for (x, b) in v.iter_mut().zip(bytes.chunks_exact(8)) {
                *x = f64::from_le_bytes(b.try_into().unwrap());
            }
        }
    }
    let _ = std::fs::remove_file(job_path);
    let _ = std::fs::remove_file(out_path);
}

/// max |got - want| <= tol max |want|, NaN failing.
fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let (mut worst, mut at) = (0.0f64, 0);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if d.is_nan() || d > worst {
            (worst, at) = (if d.is_nan() { f64::INFINITY } else { d }, k);
        }
    }
    eprintln!("{what}: largest difference {worst:.2e} (scale {scale:.2e})");
    assert!(
        worst <= tol * scale,
        "{what}: element {at}: {} vs {}",
        got[at],
        want[at]
    );
}

fn nan(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

fn eigh(lay: &Layout, h: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let cpu = Cpu::with_threads(2).unwrap();
    let spec = EighSpec::ragged(lay.block_sizes()).with_vectors(true);
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    let (mut w, mut v) = (vec![0.0; lay.states], vec![0.0; lay.h_len]);
    cpu.eigh_host(&mut plan, h, &mut w, Some(&mut v)).unwrap();
    (w, v)
}

/// The BCS kernel against `bcs::occupations` from gaps `previous`, with `pairing`.
fn check_bcs(
    bin: &Path,
    lay: &Layout,
    pairing: Pairing,
    energies: &[f64],
    previous: &[f64],
    what: &str,
) -> (Vec<f64>, Vec<f64>) {
    let ns = SPECIES * lay.nuclei_count();
    let (mut v2, mut delta, mut lambda) = (vec![0.0; lay.states], previous.to_vec(), nan(ns));
    bcs::occupations(lay, pairing, energies, &mut v2, &mut delta, &mut lambda);
    let (mut v2_e, mut delta_e, mut lambda_e) = (nan(lay.states), previous.to_vec(), nan(ns));
    emulate(
        bin,
        "scf_bcs",
        ns * WARP,
        BCS_BLOCK,
        &mut [
            In(energies),
            In(&lay.state_deg),
            Index(&lay.ns_state_off),
            In(&lay.particles),
            In(&lay.mass_number),
            Out(&mut v2_e),
            Out(&mut delta_e),
            Out(&mut lambda_e),
            F(pairing.g0),
            F(pairing.window),
            U(ns as u32),
        ],
    );
    eprintln!("{what}: delta {delta_e:?} (CPU {delta:?})");
    for k in 0..ns {
        assert_eq!(
            delta_e[k] == 0.0,
            delta[k] == 0.0,
            "{what}: (nucleus, species) {k}: pairing collapsed on one side only"
        );
        assert!((delta_e[k] - delta[k]).abs() <= 1e-9, "{what}: delta {k}");
        assert!(
            (lambda_e[k] - lambda[k]).abs() <= 1e-9,
            "{what}: lambda {k}"
        );
    }
    let worst = v2_e
        .iter()
        .zip(&v2)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0,
            |m: f64, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        );
    eprintln!("{what}: largest v2 difference {worst:.2e}");
    assert!(worst <= 1e-9, "{what}: v2");
    (v2, delta)
}

#[test]
fn kernels_under_cpu_emulation_match_the_cpu_steps() {
    // 44Ca: closed protons, neutrons half-way through f7/2 (paired; partly filled without
    // pairing); 120Sn: paired neutrons; 208Pb: closed shells, the largest Coulomb field.
    let nuclei = [(20, 24), (50, 70), (82, 126)];
    let p = problem(&nuclei, DEFAULT_N_MAX);
    let (lay, tab, c) = (&p.layout, &p.tables, &p.coefficients);
    let Some(bin) = emulator(lay.states_per_species()) else {
        return;
    };
    let (n, grid, nn) = (lay.grid_len(), lay.grid() as u32, lay.nuclei_count() as u32);
    let points = lay.nuclei_count() * lay.grid();

    // Start: Woods-Saxon fields.
    let mut f = Fields::zeros(n);
    woods_saxon::start_fields(lay, tab, &mut f);
    let mut fe = Fields {
        f_b: nan(n),
        f_l: nan(n),
        f_u: nan(n),
        f_w: nan(n),
    };
    emulate(
        &bin,
        "scf_woods_saxon",
        points,
        POINT_BLOCK,
        &mut [
            In(&lay.particles),
            In(&lay.mass_number),
            In(&lay.osc_length),
            In(&tab.x),
            In(&tab.w),
            Out(&mut fe.f_b),
            Out(&mut fe.f_l),
            Out(&mut fe.f_u),
            Out(&mut fe.f_w),
            F(HBAR2_2M),
            F(super::woods_saxon::E2),
            U(nn),
            U(grid),
        ],
    );
    close("start f_b", &fe.f_b, &f.f_b, 1e-14);
    close("start f_l", &fe.f_l, &f.f_l, 1e-14);
    close("start f_u", &fe.f_u, &f.f_u, 1e-13);
    close("start f_w", &fe.f_w, &f.f_w, 1e-13);

    // H from the CPU's start fields.
    let mut h = vec![0.0; lay.h_len];
    hamiltonian::build(lay, tab, &f, &mut h);
    let (tri_block, tri_rc) = lower_triangle(lay);
    let mut he = nan(lay.h_len);
    emulate(
        &bin,
        "scf_hamiltonian",
        SPECIES * lay.nuclei_count() * tri_block.len(),
        POINT_BLOCK,
        &mut [
            In(&f.f_b),
            In(&f.f_l),
            In(&f.f_u),
            In(&f.f_w),
            In(&tab.u),
            In(&tab.g),
            Index(&lay.ns_block_off),
            Index(&lay.block_nucleus),
            Index(&lay.block_species),
            Index(&lay.block_l),
            Index(&lay.block_j2),
            Index(&lay.block_dim),
            Index(&lay.block_h_off),
            Index(&lay.block_row),
            Index(&tri_block),
            Index(&tri_rc),
            Out(&mut he),
            U(2 * nn),
            U(tri_block.len() as u32),
            U(grid),
        ],
    );
    close("H", &he, &h, 1e-13);

    // BCS on the Woods-Saxon spectrum: cold start, warm start, no pairing (sharp filling).
    let (w, vecs) = eigh(lay, &h);
    let zeros = vec![0.0; 2 * lay.nuclei_count()];
    let (v2, delta) = check_bcs(&bin, lay, p.pairing, &w, &zeros, "BCS cold");
    assert!(
        delta[0] > 0.1 && delta[2] > 0.1,
        "44Ca's and 120Sn's neutrons should pair: {delta:?}"
    );
    check_bcs(&bin, lay, p.pairing, &w, &delta, "BCS warm");
    let unpaired = Pairing {
        g0: 0.0,
        ..p.pairing
    };
    let (sharp, _) = check_bcs(&bin, lay, unpaired, &w, &zeros, "BCS without pairing");
    assert!(
        sharp.iter().any(|&x| x > 0.0 && x < 1.0),
        "no partly filled level to check"
    );

    // Densities from the CPU's eigenvectors and occupations.
    let mut d = Densities::zeros(n);
    densities::compute(lay, tab, &vecs, &v2, &mut d);
    let mut de = Densities {
        rho: nan(n),
        tau: nan(n),
        sj: nan(n),
        drho: nan(n),
        lap_rho: nan(n),
        div_j: nan(n),
    };
    emulate(
        &bin,
        "scf_densities",
        n,
        POINT_BLOCK,
        &mut [
            In(&vecs),
            In(&v2),
            In(&tab.u),
            In(&tab.g),
            In(&tab.d2u),
            In(&tab.x),
            In(&lay.osc_length),
            Index(&lay.ns_block_off),
            Index(&lay.block_l),
            Index(&lay.block_j2),
            Index(&lay.block_dim),
            Index(&lay.block_h_off),
            Index(&lay.block_w_off),
            Index(&lay.block_row),
            Out(&mut de.rho),
            Out(&mut de.tau),
            Out(&mut de.sj),
            Out(&mut de.drho),
            Out(&mut de.lap_rho),
            Out(&mut de.div_j),
            U(nn),
            U(grid),
        ],
    );
    for (name, (got, want)) in ["rho", "tau", "J", "rho'", "lap rho", "div J"]
        .iter()
        .zip(de.arrays().into_iter().zip(d.arrays()))
    {
        close(name, got, want, 1e-13);
    }

    // Coulomb and fields from the CPU's densities.
    let mut vc = vec![0.0; points];
    coulomb::potential(lay, tab, &d.rho, c.e2, &mut vc);
    let mut vce = nan(points);
    emulate(
        &bin,
        "scf_coulomb",
        points,
        POINT_BLOCK,
        &mut [
            In(&d.rho),
            In(&lay.osc_length),
            In(&tab.x),
            In(&tab.w),
            In(&tab.cum),
            Out(&mut vce),
            F(c.e2),
            U(nn),
            U(grid),
        ],
    );
    close("v_coul", &vce, &vc, 1e-13);
    let mut f2 = Fields::zeros(n);
    fields::compute(c, lay, tab, &d, &vc, &mut f2);
    let coef = coefficient_words(c);
    let mut fe2 = Fields {
        f_b: nan(n),
        f_l: nan(n),
        f_u: nan(n),
        f_w: nan(n),
    };
    emulate(
        &bin,
        "scf_fields",
        points,
        POINT_BLOCK,
        &mut [
            In(&coef),
            In(&d.rho),
            In(&d.tau),
            In(&d.drho),
            In(&d.lap_rho),
            In(&d.div_j),
            In(&vc),
            In(&lay.mass_number),
            In(&lay.osc_length),
            In(&tab.x),
            In(&tab.w),
            Out(&mut fe2.f_b),
            Out(&mut fe2.f_l),
            Out(&mut fe2.f_u),
            Out(&mut fe2.f_w),
            U(nn),
            U(grid),
        ],
    );
    close("f_b", &fe2.f_b, &f2.f_b, 1e-14);
    close("f_l", &fe2.f_l, &f2.f_l, 1e-14);
    close("f_u", &fe2.f_u, &f2.f_u, 1e-13);
    close("f_w", &fe2.f_w, &f2.f_w, 1e-13);

    // Mixing into other densities, then the copy of the first iteration.
    let mut old = d.clone();
    for a in old.arrays_mut() {
        a.iter_mut()
            .enumerate()
            .for_each(|(k, x)| *x *= 0.9 + 1e-3 * (k % 7) as f64);
    }
    let mut mixed = old.clone();
    mixing::mix(&mut mixed, &d, p.mixing);
    for copy in [0u32, 1] {
        let mut me = old.clone();
        let Densities {
            rho,
            tau,
            sj,
            drho,
            lap_rho,
            div_j,
        } = &mut me;
        emulate(
            &bin,
            "scf_mix",
            n,
            MIX_BLOCK,
            &mut [
                In(&d.rho),
                In(&d.tau),
                In(&d.sj),
                In(&d.drho),
                In(&d.lap_rho),
                In(&d.div_j),
                Out(rho),
                Out(tau),
                Out(sj),
                Out(drho),
                Out(lap_rho),
                Out(div_j),
                F(p.mixing),
                U(copy),
                U(n as u32),
            ],
        );
        let want = if copy == 1 { &d } else { &mixed };
        assert_eq!(&me, want, "mixing, copy = {copy}");
    }
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}
