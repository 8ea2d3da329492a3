#![no_main]

#[path = "../../tests/fuzz_replay/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::eigh(data));
