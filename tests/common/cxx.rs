//! The C++20 compiler that the CUDA emulation tests build `scripts/cuda_emu` with: `g++`,
//! found and able to compile the C++20 the emulation uses, or a skip notice that `cargo test`
//! shows.
//!
//! libtest keeps what a passing test prints with `eprintln!` to itself, so a test that only
//! printed why it skipped would read as a pass: the notice goes to the process's stderr
//! directly, which libtest does not capture, and the test returns early.
//! `MEGABATCH_REQUIRE_GXX=1` (CI sets it; `CI` set does the same) turns a missing or pre-C++20
//! compiler into a failure, as `MEGABATCH_REQUIRE_CUDA` does for a missing device.

use std::io::Write;
use std::process::{Command, Stdio};

/// The compiler the emulation tests run.
pub const COMPILER: &str = "g++";

/// Set to `1`, a missing or pre-C++20 compiler fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "MEGABATCH_REQUIRE_GXX";

/// The C++20 the emulation needs beyond C++17 (`<bit>`'s `popcount` and `countr_zero`).
const PROBE_SOURCE: &str =
    "#include <bit>\nint main() { return std::popcount(5u) - 2 * std::countr_zero(2u); }\n";

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `g++ -std=c++20` compiles the probe.
    Ready,
    /// `g++` could not be started (the error).
    Missing(String),
    /// `g++` runs but rejects the C++20 probe (its diagnostics): older than g++ 10.
    NoCxx20(String),
}

/// What a test does with a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Build the emulation and run.
    Run,
    /// Return early after printing this notice.
    Skip(String),
    /// Fail with this message: the compiler is missing where it is required.
    Fail(String),
}

/// Checks that `g++ -std=c++20` compiles a C++20 program (syntax only, nothing written).
pub fn probe() -> Probe {
    let spawned = Command::new(COMPILER)
        .args(["-std=c++20", "-fsyntax-only", "-x", "c++", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Probe::Missing(e.to_string()),
    };
    let written = child
        .stdin
        .take()
        .expect("the probe's stdin is piped")
        .write_all(PROBE_SOURCE.as_bytes());
    let out = child.wait_with_output().expect("waiting for g++");
    match written {
        Ok(()) if out.status.success() => Probe::Ready,
        Ok(()) => Probe::NoCxx20(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Probe::NoCxx20(format!("g++ closed its input: {e}")),
    }
}

/// Whether a missing compiler fails the test: `MEGABATCH_REQUIRE_GXX=1`, or `CI` set.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") || std::env::var_os("CI").is_some()
}

/// What to do with `probe` when the compiler is `required` or not.
pub fn verdict(probe: &Probe, required: bool) -> Verdict {
    let why = match probe {
        Probe::Ready => return Verdict::Run,
        Probe::Missing(e) => format!("{COMPILER} not found ({e})"),
        Probe::NoCxx20(log) => {
            format!("{COMPILER} -std=c++20 failed (g++ 10 or newer needed): {log}")
        }
    };
    if required {
        Verdict::Fail(format!("{why}, but {REQUIRE_ENV}=1 or CI is set"))
    } else {
        Verdict::Skip(format!(
            "{why}; the CUDA emulation needs a C++20 g++ (Debian/Ubuntu: apt install g++); \
             {REQUIRE_ENV}=1 makes this a failure"
        ))
    }
}

/// `true` if the calling test can build the emulation; otherwise `false` after a notice on
/// stderr naming the test (libtest names its thread after it). Panics where the compiler is
/// [`required`].
pub fn gxx_or_skip() -> bool {
    match verdict(&probe(), required()) {
        Verdict::Run => true,
        Verdict::Fail(message) => panic!("{message}"),
        Verdict::Skip(notice) => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("a CUDA emulation test");
            // Not eprintln!: libtest would capture it and show the test as a plain pass.
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {notice}");
            false
        }
    }
}
