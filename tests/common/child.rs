//! Tests of process-wide state (the counting global allocator, CUDA's device-allocation count,
//! a sticky CUDA fault, environment variables) share their test binary with tests that run on
//! parallel threads. Each such test starts with `if common::child::ran_alone() { return; }`:
//! its module then runs alone in a child process of the test binary (the binary re-run with
//! the module's path as its filter), as it did when it had a binary of its own.

use std::process::Command;
use std::sync::Mutex;

/// Set in the child process, to the module whose tests it runs.
const CHILD_ENV: &str = "MEGABATCH_TEST_CHILD_MODULE";

/// `false` in the child process: the caller runs its test. In the test binary's own process
/// the calling test's module runs in a child process (once, for all of its tests, started by
/// whichever comes first) and this returns `true` once the calling test passed there; it
/// panics, with the child's output, if the test failed or did not run.
pub fn ran_alone() -> bool {
    if std::env::var_os(CHILD_ENV).is_some() {
        return false;
    }
    let thread = std::thread::current();
    // libtest runs each test on a thread named after the test's path.
    let test = thread.name().expect("a test thread named by libtest");
    let (module, _) = test
        .rsplit_once("::")
        .expect("a test inside a module of its binary");
    /// The child's output by module; the lock also keeps one child running at a time.
    static RUNS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let output = {
        let mut runs = RUNS.lock().unwrap_or_else(|p| p.into_inner());
        match runs.iter().find(|(m, _)| m == module) {
            Some((_, output)) => output.clone(),
            None => {
                let exe = std::env::current_exe().expect("the test binary's path");
                let out = Command::new(exe)
                    .arg(format!("{module}::"))
                    .env(CHILD_ENV, module)
                    // Captured output keeps each result on its own line.
                    .env_remove("RUST_TEST_NOCAPTURE")
                    .output()
                    .expect("the test binary re-run as a child process");
                let output = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                runs.push((module.to_owned(), output.clone()));
                output
            }
        }
    };
    // Shown with the test's own output (by a failure, or --nocapture).
    eprint!("{output}");
    let passed = format!("test {test} ... ok");
    assert!(
        output.lines().any(|line| line == passed),
        "{test} did not pass in its child process (output above)"
    );
    true
}
