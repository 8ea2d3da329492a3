//! Single-particle shell structure of every measured nuclide, in one batched `eigh` call.
//!
//! For each of the 2,438 nuclides of the 2012 Atomic Mass Evaluation this builds the neutron and
//! proton Hamiltonians of a spherical Woods-Saxon mean field (Bohr & Mottelson parameters, with
//! spin-orbit and Coulomb terms) in a harmonic-oscillator basis, one block per (species, l, j),
//! sends all blocks through ONE ragged `eigh` via `Auto`, and compares the last occupied levels
//! with the measured separation energies.
//!
//! Run: `cargo run --release -p nuclear_shells` (`--features cuda` or `wgpu` lets `Auto` pick a
//! GPU). Its physics checks: `cargo test -p nuclear_shells`.

#[path = "../../nuclear_common/ame.rs"]
mod ame;
#[path = "../../nuclear_common/ho_basis.rs"]
mod ho_basis;
mod shell_model;
#[cfg(test)]
mod tests;
#[path = "../../nuclear_common/woods_saxon.rs"]
mod woods_saxon;

use std::time::Instant;

use megabatch::{Auto, BatchedEigh, EighSpec};

use ame::MassTable;
use ho_basis::HoBasis;
use shell_model::{last_filled, levels, push_blocks, BlockLabel, Level};
use woods_saxon::Species;

/// Oscillator shells 2n + l <= N_MAX. Chosen by the convergence test in tests.rs: 208Pb levels
/// below -2 MeV move by less than 10 keV from N_MAX to N_MAX + 2.
pub const N_MAX: usize = 20;

/// Eigenvalues of every block of a set of nuclides, with the labels to read them back.
pub struct Spectra {
    labels: Vec<BlockLabel>,
    sizes: Vec<usize>,
    starts: Vec<usize>,
    values: Vec<f64>,
    /// Per nuclide, the range of its blocks in `labels`.
    nuclide_blocks: Vec<std::ops::Range<usize>>,
    pub build_seconds: f64,
    /// The eigh call, host arrays to host arrays (its first call: one-time staging included).
    pub eigh_seconds: f64,
    /// Making the plan (the backend's kernels compile or load from the cache here).
    pub plan_seconds: f64,
    /// The same call again, as a self-consistent iteration would repeat it.
    pub repeat_seconds: f64,
    pub backend: megabatch::BackendKind,
}

impl Spectra {
    /// Builds all blocks of `nuclides` (in parallel) and diagonalises them in one call.
    pub fn compute(
        auto: &Auto,
        nuclides: &[(u32, u32)],
        n_max: usize,
    ) -> Result<Self, megabatch::Error> {
        let t0 = Instant::now();
        let basis = HoBasis::new(n_max);
        let per_nuclide: Vec<(Vec<f64>, Vec<usize>, Vec<BlockLabel>)> =
            parallel_map(nuclides, |i, &zn| {
                let (mut a, mut sizes, mut labels) = (Vec::new(), Vec::new(), Vec::new());
                for species in Species::BOTH {
                    push_blocks(&basis, i, zn, species, &mut a, &mut sizes, &mut labels);
                }
                (a, sizes, labels)
            });
        let (mut a, mut sizes, mut labels, mut nuclide_blocks) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (ai, si, li) in per_nuclide {
            nuclide_blocks.push(labels.len()..labels.len() + li.len());
            a.extend(ai);
            sizes.extend(si);
            labels.extend(li);
        }
        let build_seconds = t0.elapsed().as_secs_f64();

        let spec = EighSpec::ragged(sizes.clone());
        let offsets = spec.offsets(8)?;
        let tp = Instant::now();
        let mut plan = auto.plan_eigh(&spec)?;
        let plan_seconds = tp.elapsed().as_secs_f64();
        let mut values = vec![0.0; offsets.w_len()];
        let t1 = Instant::now();
        auto.eigh_host(&mut plan, &a, &mut values, None)?;
        let eigh_seconds = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        auto.eigh_host(&mut plan, &a, &mut values, None)?;
        let repeat_seconds = t2.elapsed().as_secs_f64();
        let starts = (0..sizes.len()).map(|i| offsets.slot(i).w_start).collect();
        Ok(Self {
            labels,
            sizes,
            starts,
            values,
            nuclide_blocks,
            build_seconds,
            eigh_seconds,
            plan_seconds,
            repeat_seconds,
            backend: plan.backend(),
        })
    }

    pub fn matrix_count(&self) -> usize {
        self.sizes.len()
    }

    pub fn size_range(&self) -> (usize, usize) {
        (
            self.sizes.iter().copied().min().unwrap_or(0),
            self.sizes.iter().copied().max().unwrap_or(0),
        )
    }

    /// Levels of one species of nuclide number `nuclide`, ascending.
    pub fn levels(&self, nuclide: usize, species: Species) -> Vec<Level> {
        let blocks: Vec<(BlockLabel, &[f64])> = self.nuclide_blocks[nuclide]
            .clone()
            .filter(|&b| self.labels[b].species == species)
            .map(|b| {
                (
                    self.labels[b],
                    &self.values[self.starts[b]..self.starts[b] + self.sizes[b]],
                )
            })
            .collect();
        levels(&blocks)
    }
}

/// `f(i, &items[i])` for every item, in order, on one scoped thread per hardware thread, each
/// taking a contiguous share (every nuclide's blocks cost about the same: one basis for all).
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(share)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    let first = c * share;
                    part.iter()
                        .enumerate()
                        .map(|(j, x)| f(first + j, x))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a block-building thread panicked"))
            .collect()
    })
}

/// Last occupied level and the gap to the next one, for `particles` nucleons.
pub fn fermi_level(levels: &[Level], particles: usize) -> Option<(Level, f64)> {
    let i = last_filled(levels, particles)?;
    let gap = levels
        .get(i + 1)
        .map_or(f64::NAN, |next| next.energy - levels[i].energy);
    Some((levels[i], gap))
}

/// Particle numbers (cumulative occupancies) after which the next bound level is more than
/// `min_gap` MeV higher.
pub fn shell_closures(levels: &[Level], min_gap: f64) -> Vec<usize> {
    let mut filled = 0;
    let mut out = Vec::new();
    for pair in levels.windows(2) {
        filled += pair[0].capacity();
        if pair[1].energy < 0.0 && pair[1].energy - pair[0].energy > min_gap {
            out.push(filled);
        }
    }
    out
}

const DOUBLY_MAGIC: [(&str, u32, u32); 5] = [
    ("16O", 8, 8),
    ("40Ca", 20, 20),
    ("48Ca", 20, 28),
    ("132Sn", 50, 82),
    ("208Pb", 82, 126),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = MassTable::ame2012();
    let nuclides = table.nuclides();
    let auto = Auto::new()?;
    let spectra = Spectra::compute(&auto, nuclides, N_MAX)?;
    let (lo, hi) = spectra.size_range();
    println!(
        "AME2012: {} nuclides; oscillator shells up to N_max = {N_MAX}",
        nuclides.len()
    );
    println!(
        "{} Hamiltonian blocks of order {lo}..={hi}, one ragged eigh on backend `{}`",
        spectra.matrix_count(),
        spectra.backend.name()
    );
    println!(
        "time: matrix elements {:.3} s, eigh {:.4} s ({:.3} us per matrix; plan {:.4} s, \
         the same call again {:.4} s)",
        spectra.build_seconds,
        spectra.eigh_seconds,
        spectra.eigh_seconds * 1e6 / spectra.matrix_count() as f64,
        spectra.plan_seconds,
        spectra.repeat_seconds
    );

    let index = |z: u32, n: u32| nuclides.iter().position(|&x| x == (z, n));
    if let Some(pb) = index(82, 126) {
        for (species, count, sep) in [
            (Species::Neutron, 126, table.s_n(82, 126)),
            (Species::Proton, 82, table.s_p(82, 126)),
        ] {
            let lv = spectra.levels(pb, species);
            let last = last_filled(&lv, count).unwrap_or(0);
            println!(
                "\n208Pb {} levels near the Fermi surface (MeV):",
                species.name()
            );
            for (i, level) in lv
                .iter()
                .enumerate()
                .take(last + 5)
                .skip(last.saturating_sub(5))
            {
                let mark = if i == last {
                    "  <- last occupied"
                } else if i < last {
                    ""
                } else {
                    "  (empty)"
                };
                println!("  {:>7}  {:8.3}{mark}", level.label(), level.energy);
            }
            if let Some(s) = sep {
                println!(
                    "  -S = {:.3} MeV (AME2012); last level - (-S) = {:+.3} MeV",
                    -s,
                    lv[last].energy + s
                );
            }
        }
    }

    println!(
        "\nDoubly magic nuclei: last occupied level, gap above it, shell closures (gaps > 3 MeV)"
    );
    for (name, z, n) in DOUBLY_MAGIC {
        let Some(i) = index(z, n) else { continue };
        for (species, count) in [
            (Species::Neutron, n as usize),
            (Species::Proton, z as usize),
        ] {
            let lv = spectra.levels(i, species);
            if let Some((last, gap)) = fermi_level(&lv, count) {
                println!(
                    "  {name:>6} {:<7}: {:>7} at {:8.3} MeV, gap {:5.2} MeV; closures at {:?}",
                    species.name(),
                    last.label(),
                    last.energy,
                    gap,
                    shell_closures(&lv, 3.0)
                );
            }
        }
    }

    let mut sum_sq = 0.0;
    let mut count = 0;
    for (i, &(z, n)) in nuclides.iter().enumerate() {
        let (Some(s_n), Some((last, _))) = (
            table.s_n(z, n),
            fermi_level(&spectra.levels(i, Species::Neutron), n as usize),
        ) else {
            continue;
        };
        sum_sq += (-last.energy - s_n).powi(2);
        count += 1;
    }
    println!(
        "\nRMS of (-e_last - S_n) over {count} nuclides with a measured S_n: {:.3} MeV",
        (sum_sq / count as f64).sqrt()
    );
    Ok(())
}
