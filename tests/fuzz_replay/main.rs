//! Replays every input under `regressions/<target>/` (inputs that once found a bug, and
//! hand-made seeds of the hostile cases) through the same harness the libFuzzer targets run,
//! on stable Rust, so CI keeps them fixed. See `fuzz/README.md` for the fuzzers themselves.
//! The harness and the inputs live here rather than in `fuzz/` because `cargo package` leaves
//! out `fuzz/` (a package of its own), and the published crate's tests need them.

mod harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_replay/regressions")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "README.md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn eigh_regressions() {
    replay("eigh", harness::eigh);
}

#[test]
fn block_mask_regressions() {
    replay("block_mask", harness::block_mask);
}

#[test]
fn reduce_regressions() {
    replay("reduce", harness::reduce);
}

#[test]
fn npy_regressions() {
    replay("npy", harness::npy);
}
