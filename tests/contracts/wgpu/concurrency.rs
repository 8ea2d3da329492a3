//! Eight threads share one wgpu handle (see `cpu/concurrency.rs`, whose harness this uses).

use crate::common;
use crate::cpu::concurrency::{hammer, soak, THREADS};

#[test]
fn eight_threads_share_a_wgpu_backend_bit_for_bit() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    if !gpu.adapter().f64 {
        eprintln!("skipping: adapter without SHADER_F64");
        return;
    }
    let rounds = hammer(&gpu);
    eprintln!("wgpu: {THREADS} threads x {:?}: {rounds} rounds", soak());
}
