//! Single-particle levels read back from the batch: labels, occupations, shell gaps.

use crate::layout::{Layout, SPECIES};
use crate::runner::Results;

/// One level of one (nucleus, species).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Radial quantum number counted from 1 (1s, 2s, ...).
    pub n: usize,
    pub l: u32,
    pub j2: u32,
    /// MeV.
    pub energy: f64,
    /// BCS occupation probability v^2.
    pub v2: f64,
}

impl Level {
    pub fn label(&self) -> String {
        const L: &[u8] = b"spdfghijklmnoqrtuvwxyz";
        let letter = L.get(self.l as usize).map_or('?', |&c| c as char);
        format!("{}{}{}/2", self.n, letter, self.j2)
    }

    /// 2j + 1.
    pub fn capacity(&self) -> u32 {
        self.j2 + 1
    }
}

/// Levels of species `s` of nucleus `i`, ascending in energy.
pub fn levels(lay: &Layout, res: &Results, i: usize, s: usize) -> Vec<Level> {
    let ns = i * SPECIES + s;
    let mut out = Vec::new();
    for blk in lay.ns_block_off[ns] as usize..lay.ns_block_off[ns + 1] as usize {
        let w0 = lay.block_w_off[blk] as usize;
        for c in 0..lay.block_dim[blk] as usize {
            out.push(Level {
                n: c + 1,
                l: lay.block_l[blk],
                j2: lay.block_j2[blk],
                energy: res.energies[w0 + c],
                v2: res.v2[w0 + c],
            });
        }
    }
    out.sort_by(|a, b| a.energy.total_cmp(&b.energy));
    out
}

/// Index of the last level filled by `particles` nucleons from the bottom, and the gap to the
/// next level (MeV) if the particles end exactly at that level's top (a shell closure).
pub fn closure_gap(levels: &[Level], particles: u32) -> (Option<usize>, Option<f64>) {
    let mut filled = 0;
    for (k, level) in levels.iter().enumerate() {
        filled += level.capacity();
        if filled >= particles && particles > 0 {
            let gap = (filled == particles)
                .then(|| levels.get(k + 1).map(|next| next.energy - level.energy))
                .flatten();
            return (Some(k), gap);
        }
    }
    (None, None)
}

/// Sum of (2j + 1) v^2 over the levels: the particle number of the occupations.
pub fn particle_number(levels: &[Level]) -> f64 {
    levels.iter().map(|l| f64::from(l.capacity()) * l.v2).sum()
}
