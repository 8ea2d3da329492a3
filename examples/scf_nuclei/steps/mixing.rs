//! Linear mixing of the densities: old <- old + beta (new - old), elementwise on all six
//! arrays (so rho', lap rho and div J stay the derivatives of the mixed rho and J).

use rayon::prelude::*;

use super::densities::Densities;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// One thread's work: one element.
#[inline]
pub fn mix_one(old: f64, new: f64, beta: f64) -> f64 {
    old + beta * (new - old)
}

/// Mixes every array of `new` into `old` with factor `beta`.
pub fn mix(old: &mut Densities, new: &Densities, beta: f64) {
    for (o, n) in old.arrays_mut().into_iter().zip(new.arrays()) {
        o.par_chunks_mut(CHUNK)
            .zip(n.par_chunks(CHUNK))
            .for_each(|(o, n)| {
                for (a, &b) in o.iter_mut().zip(n) {
                    *a = mix_one(*a, b, beta);
                }
            });
    }
}
