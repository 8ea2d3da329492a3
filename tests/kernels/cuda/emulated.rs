//! The CUDA eigh kernels' logic on a machine without a GPU: `scripts/cuda_emu` compiles
//! `kernels/eigh/*.cu` as C++ against a CPU emulation of the CUDA execution model (a thread per
//! lane, warp collectives as barriers over their masks, so a lane racing ahead of lane 0 is
//! possible as under independent thread scheduling) and checks every result against LAPACK
//! dsyt21's residual and orthogonality ratios (< 30) and a long-double Jacobi reference for the
//! eigenvalues, on LAPACK-style matrix types including zero, graded, clustered, tiny, huge and
//! NaN inputs. The classes checked span every kernel path: a 16-lane group with 12-long rows
//! (nested-loop QL), a 32-lane group (read-ahead chase), a block with its chain warp, the
//! chains kernel (a chain per lane, rotations replayed in rounds), the split classes' launch
//! sequence, the divide-and-conquer class's launches in waves (deflation by clustered, rank-one,
//! Wilkinson and graded spectra; leaves, merges in place through a row panel, the blocked
//! reduction and back-transformation; the per-order vectors in shared memory, and in the slots
//! as at the large orders) and the Jacobi kernel. Each also checks the per-matrix status array every kernel
//! writes (non-finite input flagged for exactly the NaN matrices, solved for the others, none
//! left unwritten) and NaN eigenvalues and eigenvectors for the bad ones.
//! Needs g++ (C++20): without it, prints `SKIPPED` and returns, unless `MEGABATCH_REQUIRE_GXX=1`
//! or `CI` is set (see `tests/common/cxx.rs`).

use std::path::PathBuf;
use std::process::Command;

use crate::common::cxx::{self, Probe, Verdict};

/// The emulator, built for this test process; `None` after a skip notice without a C++20 g++.
/// Each caller gets its own binary (`tag` in its name), which it removes when done.
pub(super) fn emulator_tagged(tag: &str) -> Option<PathBuf> {
    if !cxx::gxx_or_skip() {
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("megabatch-eigh-emu-{tag}{}", std::process::id()));
    let built = Command::new("g++")
        .args([
            "-std=c++20",
            "-O1",
            "-Wno-unknown-pragmas",
            "-pthread",
            "-o",
        ])
        .arg(&out)
        .arg(root.join("scripts/cuda_emu/eigh_emu.cpp"))
        .status();
    match built {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("g++ failed to build the kernel emulation: {s}"),
        Err(e) => panic!("g++ passed its C++20 probe but did not start again: {e}"),
    }
}

fn emulator() -> Option<PathBuf> {
    emulator_tagged("")
}

#[test]
fn a_missing_or_old_compiler_skips_with_a_notice_unless_required() {
    let missing = Probe::Missing("No such file or directory (os error 2)".into());
    let old = Probe::NoCxx20("error: unrecognized command-line option '-std=c++20'".into());
    for probe in [&missing, &old] {
        let Verdict::Skip(notice) = cxx::verdict(probe, false) else {
            panic!("{probe:?} without the requirement must skip");
        };
        assert!(
            notice.contains("g++") && notice.contains(cxx::REQUIRE_ENV),
            "{notice}"
        );
        assert!(
            matches!(cxx::verdict(probe, true), Verdict::Fail(m) if m.contains(cxx::REQUIRE_ENV)),
            "{probe:?} must fail where g++ is required"
        );
    }
    assert!(matches!(cxx::verdict(&old, false), Verdict::Skip(n) if n.contains("c++20")));
    assert_eq!(cxx::verdict(&Probe::Ready, false), Verdict::Run);
    assert_eq!(cxx::verdict(&Probe::Ready, true), Verdict::Run);
}

#[test]
fn eigh_size_class_kernels_pass_the_lapack_checks_under_emulation() {
    let Some(bin) = emulator() else { return };
    let cases: [&[&str]; 13] = [
        &["warp:16:12", "f64", "1", "2", "9", "12"],
        &["warp:32:24", "f32", "17", "24"],
        &["block:2", "f64", "33"],
        // Full blocks of 32 chains, and 5 per block (a partial last block), each pausing
        // when a matrix's rotation list fills.
        &["chains:16:12:32", "f64", "1", "9", "12"],
        &["chains:32:32:5", "f32", "2", "17", "32"],
        // The split classes' launch sequence: three rounds, and one (every chain still running
        // after the first list finishes inside its replay block).
        &["split:2:3", "f64", "1", "33", "40"],
        &["split:2:1", "f32", "2", "34"],
        // The Jacobi kernel of the orders above the block classes (here in shared memory).
        &["jacobi", "f64", "1", "4", "7"],
        // Divide and conquer (dc.cu): one leaf (5), two (33: one merge), four (100: two levels,
        // panels of the reduction with a trailing update), in waves of 5 slots (a ragged
        // batch over three waves) and of 64 (one wave).
        &["dc:5", "f64", "1", "5", "33", "100"],
        &["dc:64", "f32", "2", "64", "65"],
        &["dc:3", "f64", "70"],
        // The layout of the large orders at small ones: every per-order vector in the slots
        // (3), and the solve step's alone (2, the layout from f64 n = 1858 on a 227 KiB device).
        &["dc:4:3", "f64", "1", "70"],
        &["dc:5:2", "f32", "40"],
    ];
    let results: Vec<(String, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|args| {
                let bin = &bin;
                s.spawn(move || {
                    let out = Command::new(bin)
                        .args(*args)
                        .output()
                        .expect("emulator runs");
                    (args.join(" "), out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_file(&bin);
    for (case, out) in results {
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{case}:\n{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{case}: failures\n{text}");
        // Both passes (vectors, values only) report zero failures.
        assert_eq!(text.matches(", 0 failures").count(), 2, "{case}:\n{text}");
    }
}
