//! The example's input: a ragged batch of random symmetric matrices, the same on every run.

/// SplitMix64 (Steele, Lea and Flood, 2014): a fixed sequence from a seed, so that every rank
/// and every run draws the same batch without a random-number crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn symmetric_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Orders of `count` matrices, uniform in `1..=max_order` (a mass table's blocks mix orders
/// like this), drawn from `seed`.
pub fn orders(count: usize, max_order: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    (0..count)
        .map(|_| 1 + (rng.next() % max_order.max(1) as u64) as usize)
        .collect()
}

/// The matrices of orders `sizes`, row-major and back to back (megabatch's ragged layout),
/// symmetric with entries uniform in [-1, 1), drawn from `seed`.
pub fn matrices(sizes: &[usize], seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64(seed ^ 0x5eed);
    let mut a = Vec::with_capacity(sizes.iter().map(|n| n * n).sum());
    for &n in sizes {
        let at = a.len();
        a.resize(at + n * n, 0.0);
        let m = &mut a[at..];
        for i in 0..n {
            for j in 0..=i {
                let x = rng.symmetric_unit();
                m[i * n + j] = x;
                m[j * n + i] = x;
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_symmetric_in_range_and_repeatable() {
        let sizes = orders(50, 9, 3);
        assert!(sizes.iter().all(|&n| (1..=9).contains(&n)));
        assert!(sizes.contains(&9) && sizes.contains(&1));
        let a = matrices(&sizes, 3);
        assert_eq!(a, matrices(&sizes, 3));
        assert_ne!(a, matrices(&sizes, 4));
        let mut at = 0;
        for &n in &sizes {
            let m = &a[at..at + n * n];
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(m[i * n + j], m[j * n + i]);
                    assert!((-1.0..1.0).contains(&m[i * n + j]));
                }
            }
            at += n * n;
        }
        assert_eq!(at, a.len());
    }
}
