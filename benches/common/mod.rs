//! The timing harness of the GPU benches (`eigh_cuda`, `reduce_cuda`, `attention_cuda`,
//! `iteration_cuda`, `eigh_wgpu`, `reduce_wgpu`, `attention_wgpu`): each device-resident case
//! warmed up (pipelines, bind groups, kernel modules), then repeated until a time budget has
//! passed with a synchronisation every 8 calls and at the end; host-to-host cases by their
//! median.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use megabatch::Real;

/// Seconds per call: one warm-up call, then calls until `budget` has passed (three at the
/// least), synchronising every 8 calls and at the end. A case whose warm-up alone exceeds the
/// budget is timed by one more call.
pub fn time_loop(budget: Duration, mut call: impl FnMut(), sync: impl Fn()) -> f64 {
    let warm = Instant::now();
    call();
    sync();
    if warm.elapsed() > budget {
        // Long cases: one timed call after the warm-up.
        let start = Instant::now();
        call();
        sync();
        return start.elapsed().as_secs_f64();
    }
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed() < budget || reps < 3 {
        call();
        reps += 1;
        if reps.is_multiple_of(8) {
            sync();
        }
    }
    sync();
    start.elapsed().as_secs_f64() / f64::from(reps)
}

/// The median of measured times (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Seconds per call of `run`: the median of `count` calls after one warm-up call.
pub fn median_of(count: usize, mut run: impl FnMut()) -> f64 {
    run();
    median(
        (0..count)
            .map(|_| {
                let s = Instant::now();
                run();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Symmetric test matrices with entries uniform in [-1, 1], as the CPU eigh bench makes them.
/// Beyond 4,096 matrices the first 4,096 repeat: drawing billions of entries would take longer
/// than the case, and a batch that large streams through memory either way.
pub fn matrices<T: Real>(n: usize, batch: usize) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(7);
    let size = n * n;
    let distinct = batch.min(4096);
    let mut a = vec![T::zero(); size * batch];
    for m in a.chunks_exact_mut(size.max(1)).take(distinct) {
        for i in 0..n {
            for j in 0..=i {
                let v = T::of(rng.random_range(-1.0..1.0));
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
    }
    if size > 0 {
        let (head, tail) = a.split_at_mut(size * distinct);
        for chunk in tail.chunks_mut(head.len()) {
            chunk.copy_from_slice(&head[..chunk.len()]);
        }
    }
    a
}

/// Issue 26's mixed batch: every order from 0 to `max_order` once, in a fixed shuffled
/// order (so no backend sees sorted input), and the matrices laid out back to back.
#[allow(dead_code)] // Not every bench binary that includes this module uses it.
pub fn ragged_every_order<T: Real>(max_order: usize) -> (Vec<usize>, Vec<T>) {
    let mut rng = StdRng::seed_from_u64(11);
    let mut sizes: Vec<usize> = (0..=max_order).collect();
    for i in (1..sizes.len()).rev() {
        sizes.swap(i, rng.random_range(0..=i));
    }
    let mut a = Vec::with_capacity(sizes.iter().map(|n| n * n).sum());
    for &n in &sizes {
        a.extend(matrices::<T>(n, 1));
    }
    (sizes, a)
}

/// The comma-separated integers after the command-line flag `name`, if given.
pub fn list_arg(name: &str) -> Option<Vec<usize>> {
    let v = std::env::args().skip_while(|a| a != name).nth(1)?;
    Some(
        v.split(',')
            .map(|x| x.parse().expect("a list of integers"))
            .collect(),
    )
}
