//! The timing harness of the wgpu benches (`eigh_wgpu`, `reduce_wgpu`, `attention_wgpu`):
//! each case warmed up (pipelines, bind groups), then repeated until a time budget has passed,
//! with a synchronisation every 8 calls and at the end; host-to-host cases by their median.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use megabatch::Real;

pub fn time_loop(budget: Duration, mut call: impl FnMut(), sync: impl Fn()) -> f64 {
    call();
    sync();
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed() < budget || reps < 2 {
        call();
        reps += 1;
        if reps.is_multiple_of(8) {
            sync();
        }
    }
    sync();
    start.elapsed().as_secs_f64() / f64::from(reps)
}

pub fn median_of(count: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut xs: Vec<f64> = (0..count)
        .map(|_| {
            let s = Instant::now();
            run();
            s.elapsed().as_secs_f64()
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Symmetric matrices with entries uniform in [-1, 1], as the other eigh benches make them.
pub fn matrices<T: Real>(n: usize, batch: usize) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut a = vec![T::zero(); n * n * batch];
    for m in a.chunks_exact_mut(n * n).take(batch) {
        for i in 0..n {
            for j in 0..=i {
                let v = T::of(rng.random_range(-1.0..1.0));
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
    }
    a
}
