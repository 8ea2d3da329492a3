//! Eight threads share one CUDA handle (see `cpu/concurrency.rs`, whose harness this uses).

use crate::common;
use crate::cpu::concurrency::{hammer, soak, THREADS};

#[test]
fn eight_threads_share_a_cuda_backend_bit_for_bit() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let rounds = hammer(&cuda);
    eprintln!("cuda: {THREADS} threads x {:?}: {rounds} rounds", soak());
}
