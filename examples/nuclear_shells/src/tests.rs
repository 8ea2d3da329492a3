//! Physics checks: the basis and quadrature against the exactly solvable oscillator, the shell
//! model's textbook orbitals and magic gaps, AME2012 separation energies, basis convergence.

use megabatch::backends::cpu::Cpu;
use megabatch::{Auto, BatchedEigh, EighSpec};

use super::ame::MassTable;
use super::ho_basis::HoBasis;
use super::shell_model::{hbar_omega, levels, push_blocks_for, BlockLabel};
use super::woods_saxon::{Species, HBAR_C};
use super::{fermi_level, Spectra, N_MAX};

fn auto() -> Auto {
    Auto::with_cpu(Cpu::with_threads(2).unwrap())
}

#[test]
fn oscillator_potential_gives_exact_oscillator_levels() {
    // V = m w^2 r^2 / 2 in the same basis and quadrature: H must be diagonal with
    // e = hbar w (2n + l + 3/2). Checks the radial functions, the quadrature and the kinetic
    // matrix elements (including their off-diagonal sign) independently of Woods-Saxon.
    let basis = HoBasis::new(N_MAX);
    let a = 100;
    let hw = hbar_omega(a);
    let species = Species::Neutron;
    let b = HBAR_C / (species.mass() * hw).sqrt();
    let (mut m, mut sizes, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    push_blocks_for(
        &basis,
        0,
        a,
        species,
        |r| 0.5 * hw * (r / b).powi(2),
        |_| 0.0,
        &mut m,
        &mut sizes,
        &mut labels,
    );
    let spec = EighSpec::ragged(sizes.clone());
    let auto = auto();
    let mut plan = auto.plan_eigh(&spec).unwrap();
    let mut w = vec![0.0; sizes.iter().sum()];
    auto.eigh_host(&mut plan, &m, &mut w, None).unwrap();
    let mut start = 0;
    for (label, &size) in labels.iter().zip(&sizes) {
        for (k, e) in w[start..start + size].iter().enumerate() {
            let exact = hw * (2.0 * k as f64 + label.l as f64 + 1.5);
            assert!(
                (e - exact).abs() < 1e-9 * exact,
                "l={} n={k}: {e} vs {exact}",
                label.l
            );
        }
        start += size;
    }
}

fn spectra(nuclides: &[(u32, u32)], n_max: usize) -> Spectra {
    Spectra::compute(&auto(), nuclides, n_max).unwrap()
}

const CASES: [((u32, u32), &str, &str); 5] = [
    ((8, 8), "1p1/2", "1p1/2"),
    ((20, 20), "1d3/2", "1d3/2"),
    ((20, 28), "1f7/2", "1d3/2"),
    ((50, 82), "1h11/2", "1g9/2"),
    ((82, 126), "3p1/2", "3s1/2"),
];

#[test]
fn doubly_magic_nuclei_fill_the_textbook_orbitals_with_large_gaps() {
    let nuclides: Vec<(u32, u32)> = CASES.iter().map(|c| c.0).collect();
    let s = spectra(&nuclides, N_MAX);
    for (i, ((z, n), neutron, proton)) in CASES.iter().enumerate() {
        for (species, count, expected) in [
            (Species::Neutron, *n, neutron),
            (Species::Proton, *z, proton),
        ] {
            let (last, gap) = fermi_level(&s.levels(i, species), count as usize).unwrap();
            assert_eq!(last.label(), *expected, "Z={z} N={n} {species:?}");
            assert!(
                gap > 3.0,
                "Z={z} N={n} {species:?}: gap above {} is only {gap:.2} MeV",
                last.label()
            );
        }
    }
}

#[test]
fn lead_208_last_levels_match_measured_separation_energies() {
    let table = MassTable::ame2012();
    let s = spectra(&[(82, 126)], N_MAX);
    let (neutron, _) = fermi_level(&s.levels(0, Species::Neutron), 126).unwrap();
    let (proton, _) = fermi_level(&s.levels(0, Species::Proton), 82).unwrap();
    let s_n = table.s_n(82, 126).unwrap();
    let s_p = table.s_p(82, 126).unwrap();
    // AME2012 values computed by hand from the table: S_n = 7.368 MeV, S_p = 8.004 MeV.
    assert!(
        (s_n - 7.368).abs() < 0.01 && (s_p - 8.004).abs() < 0.01,
        "S_n {s_n}, S_p {s_p}"
    );
    assert!(
        (neutron.energy + s_n).abs() < 1.0,
        "neutron {} vs -S_n {}",
        neutron.energy,
        -s_n
    );
    assert!(
        (proton.energy + s_p).abs() < 1.5,
        "proton {} vs -S_p {}",
        proton.energy,
        -s_p
    );
}

#[test]
fn basis_is_converged_for_bound_levels_of_lead_208() {
    let coarse = spectra(&[(82, 126)], N_MAX);
    let fine = spectra(&[(82, 126)], N_MAX + 2);
    let mut worst = 0.0f64;
    for species in Species::BOTH {
        let (a, b) = (coarse.levels(0, species), fine.levels(0, species));
        for level in a.iter().filter(|l| l.energy < -2.0) {
            let twin = b
                .iter()
                .find(|x| (x.n, x.l, x.j2) == (level.n, level.l, level.j2))
                .unwrap();
            let shift = (twin.energy - level.energy).abs();
            assert!(
                shift < 0.010,
                "{species:?} {}: moved {:.1} keV",
                level.label(),
                shift * 1e3
            );
            worst = worst.max(shift);
        }
    }
    eprintln!(
        "largest shift of a level below -2 MeV from N_max {N_MAX} to {}: {:.2} keV",
        N_MAX + 2,
        worst * 1e3
    );
}

#[test]
fn levels_are_labelled_by_block() {
    // Two blocks, l = 1 (j = 3/2 and 1/2): levels come back ascending with n counted per block.
    let w3 = [-5.0, 1.0];
    let w1 = [-3.0, 2.0];
    let label = |j2| BlockLabel {
        nuclide: 0,
        species: Species::Neutron,
        l: 1,
        j2,
    };
    let lv = levels(&[(label(3), &w3[..]), (label(1), &w1[..])]);
    let names: Vec<String> = lv.iter().map(|l| l.label()).collect();
    assert_eq!(names, ["1p3/2", "1p1/2", "2p3/2", "2p1/2"]);
}
