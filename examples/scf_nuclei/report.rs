//! What the example prints: the loop's timing, binding energies against AME2012, and 208Pb's
//! levels and shell gaps.

use crate::ame::MassTable;
use crate::elements;
use crate::layout::SPECIES;
use crate::levels::{closure_gap, levels, particle_number, Level};
use crate::runner::{Problem, Results};
use crate::scf::Outcome;

/// Nuclei always listed with their energies (when in the batch).
const LISTED: [(u32, u32); 8] = [
    (8, 8),
    (20, 20),
    (20, 28),
    (28, 28),
    (50, 70),
    (50, 82),
    (82, 126),
    (92, 146),
];

/// Whole tables are printed up to this many nuclei.
const FULL_LIST: usize = 40;

/// Calculated minus measured total energy (E = -B), MeV, for every nucleus with a mass.
pub fn deviations(p: &Problem, table: &MassTable, res: &Results) -> Vec<(usize, f64)> {
    (0..p.layout.nuclei_count())
        .filter_map(|i| {
            let (z, n) = p.layout.nuclei[i];
            let b = table.binding_energy(z, n)?;
            Some((i, res.energy[i].total() + b))
        })
        .collect()
}

pub fn print(p: &Problem, table: &MassTable, backend: &str, setup: f64, out: &Outcome) {
    let lay = &p.layout;
    let res = &out.results;
    let sizes = lay.block_sizes();
    println!(
        "{} even-even nuclei; oscillator shells 2n + l <= {}, {} grid points; {} blocks of \
         order {}..={} per iteration in ONE ragged eigh (backend `{backend}`, {} threads)",
        lay.nuclei_count(),
        lay.basis.n_max,
        lay.grid(),
        lay.blocks(),
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let it = out.iterations.max(1) as f64;
    println!(
        "setup {:.3} s, start (Woods-Saxon + first densities) {:.3} s",
        setup, out.start_seconds
    );
    println!(
        "{} after {} iterations (max |rho_new - rho| = {:.2e} fm^-3); {:.2} s in the loop, \
         {:.2} ms per iteration:",
        if out.converged {
            "converged"
        } else {
            "NOT converged"
        },
        out.iterations,
        out.history.last().copied().unwrap_or(f64::NAN),
        out.loop_seconds,
        out.loop_seconds * 1e3 / it
    );
    for (name, s) in out.times.named() {
        println!(
            "  {name:<18} {:8.3} ms/iteration ({:4.1}%)",
            s * 1e3 / it,
            100.0 * s / out.times.total().max(1e-300)
        );
    }

    let dev = deviations(p, table, res);
    let listed: Vec<&(usize, f64)> = if dev.len() <= FULL_LIST {
        dev.iter().collect()
    } else {
        dev.iter()
            .filter(|(i, _)| LISTED.contains(&lay.nuclei[*i]))
            .collect()
    };
    println!("\nTotal binding energy (MeV): SLy4 HF+BCS vs AME2012");
    println!("  nucleus     E_calc      E_exp    calc-exp   Delta_n  Delta_p");
    for &&(i, d) in &listed {
        let (z, n) = lay.nuclei[i];
        let e = res.energy[i].total();
        println!(
            "  {:>7} {:10.3} {:10.3} {:10.3} {:8.3} {:8.3}",
            elements::name(z, n),
            e,
            e - d,
            d,
            res.delta[i * SPECIES],
            res.delta[i * SPECIES + 1]
        );
    }
    if !dev.is_empty() {
        let rms = (dev.iter().map(|d| d.1 * d.1).sum::<f64>() / dev.len() as f64).sqrt();
        let mean = dev.iter().map(|d| d.1).sum::<f64>() / dev.len() as f64;
        let worst = dev
            .iter()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        let (z, n) = lay.nuclei[worst.0];
        println!(
            "RMS (calc - exp) over {} nuclei: {:.3} MeV (mean {:+.3} MeV; largest {:+.3} MeV for \
             {}; spherical HF+BCS has no deformation, so deformed nuclei come out underbound)",
            dev.len(),
            rms,
            mean,
            worst.1,
            elements::name(z, n)
        );
    }

    let mut worst = 0.0f64;
    for i in 0..lay.nuclei_count() {
        for s in 0..SPECIES {
            let n = particle_number(&levels(lay, res, i, s));
            worst = worst.max((n - lay.particles[i * SPECIES + s]).abs());
        }
    }
    println!(
        "particle numbers: max |sum (2j+1) v^2 - N| over all nuclei and species = {worst:.1e}"
    );

    if let Some(pb) = lay.find(82, 126) {
        for (s, count, name) in [(0, 126, "neutron"), (1, 82, "proton")] {
            let lv = levels(lay, res, pb, s);
            print_levels(&lv, count, name, res.lambda[pb * SPECIES + s]);
        }
        let (rn, rp) = (rms_radius(p, res, pb, 0), rms_radius(p, res, pb, 1));
        println!(
            "\n208Pb rms radii of the point densities: neutrons {rn:.3} fm, protons {rp:.3} fm, \
             neutron skin {:.3} fm",
            rn - rp
        );
    }
}

/// Root-mean-square radius of species `s` of nucleus `i`, fm.
pub fn rms_radius(p: &Problem, res: &Results, i: usize, s: usize) -> f64 {
    let (tab, grid) = (&p.tables, p.layout.grid());
    let b = p.layout.osc_length[i];
    let (mut num, mut den) = (0.0, 0.0);
    for q in 0..grid {
        let r = b * tab.x[q];
        let rho = res.rho[(i * SPECIES + s) * grid + q];
        den += tab.w[q] * r * r * rho;
        num += tab.w[q] * r * r * r * r * rho;
    }
    (num / den).sqrt()
}

fn print_levels(lv: &[Level], count: u32, name: &str, lambda: f64) {
    let (last, gap) = closure_gap(lv, count);
    let Some(last) = last else { return };
    println!("\n208Pb {name} levels near the Fermi surface (MeV), lambda = {lambda:.3}:");
    for (k, level) in lv
        .iter()
        .enumerate()
        .take(last + 6)
        .skip(last.saturating_sub(5))
    {
        let mark = if k == last { "  <- last occupied" } else { "" };
        println!(
            "  {:>7} {:9.3}   v2 = {:.3}{mark}",
            level.label(),
            level.energy,
            level.v2
        );
    }
    match gap {
        Some(g) => println!("  {name} shell gap at {count}: {g:.3} MeV"),
        None => println!("  {count} {name}s do not close a level"),
    }
}
