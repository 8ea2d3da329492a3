//! Total binding energy from the energy density functional (skyrme.rs):
//! E = 4 pi int r^2 H(r) dr + E_Coulomb + E_pair, with
//! E_Coulomb = 1/2 int rho_p V_C d^3r - 3/4 e^2 (3/pi)^(1/3) int rho_p^(4/3) d^3r and
//! E_pair = -sum_q Delta_q^2 / G. All parts in MeV.

use rayon::prelude::*;

use super::densities::Densities;
use crate::layout::{Layout, SPECIES};
use crate::skyrme::{pow_sixth, Coefficients};
use crate::tables::Tables;

/// The terms of the functional for one nucleus, MeV.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyParts {
    /// hb (1 - 1/A) (tau_n + tau_p).
    pub kinetic: f64,
    pub t0: f64,
    pub t3: f64,
    /// tau rho terms (effective mass).
    pub effective_mass: f64,
    /// (grad rho)^2 terms.
    pub finite_range: f64,
    pub spin_orbit: f64,
    pub coulomb_direct: f64,
    pub coulomb_exchange: f64,
    pub pairing: f64,
}

impl EnergyParts {
    pub fn total(&self) -> f64 {
        self.kinetic
            + self.t0
            + self.t3
            + self.effective_mass
            + self.finite_range
            + self.spin_orbit
            + self.coulomb_direct
            + self.coulomb_exchange
            + self.pairing
    }
}

/// One thread's work: the energy of nucleus `i` without pairing (`pairing` is left 0).
pub fn nucleus_energy(
    c: &Coefficients,
    lay: &Layout,
    tab: &Tables,
    dens: &Densities,
    v_coul: &[f64],
    i: usize,
) -> EnergyParts {
    let grid = tab.grid;
    let b = lay.osc_length[i];
    let hb = c.hb * (1.0 - 1.0 / lay.mass_number[i]);
    let mut e = EnergyParts::default();
    for q in 0..grid {
        let r = b * tab.x[q];
        // d^3 r = 4 pi r^2 b dx.
        let dv = 4.0 * std::f64::consts::PI * r * r * b * tab.w[q];
        let n = dens.at(i * SPECIES * grid + q);
        let p = dens.at((i * SPECIES + 1) * grid + q);
        let (rho, tau, sj, drho) = (n[0] + p[0], n[1] + p[1], n[2] + p[2], n[3] + p[3]);
        let sum_sq = n[0] * n[0] + p[0] * p[0];
        e.kinetic += dv * hb * tau;
        e.t0 += dv * (c.e0a * rho * rho - c.e0b * sum_sq);
        e.t3 += dv * pow_sixth(rho) * (c.e3a * rho * rho - c.e3b * sum_sq);
        e.effective_mass += dv * (c.b0 * tau * rho + c.b1 * (n[1] * n[0] + p[1] * p[0]));
        e.finite_range += dv * (c.d0 * drho * drho + c.d1 * (n[3] * n[3] + p[3] * p[3]));
        e.spin_orbit += dv * c.w0_half * (sj * drho + n[2] * n[3] + p[2] * p[3]);
        e.coulomb_direct += dv * 0.5 * p[0] * v_coul[i * grid + q];
        e.coulomb_exchange -= dv * 0.75 * c.slater * p[0] * p[0].cbrt();
    }
    e
}

/// Energies of every nucleus (parallel over nuclei). `g0`: G = g0 / A.
pub fn per_nucleus(
    c: &Coefficients,
    lay: &Layout,
    tab: &Tables,
    dens: &Densities,
    v_coul: &[f64],
    delta: &[f64],
    g0: f64,
) -> Vec<EnergyParts> {
    (0..lay.nuclei_count())
        .into_par_iter()
        .map(|i| {
            let mut e = nucleus_energy(c, lay, tab, dens, v_coul, i);
            let g = g0 / lay.mass_number[i];
            if g > 0.0 {
                let (dn, dp) = (delta[i * SPECIES], delta[i * SPECIES + 1]);
                e.pairing = -(dn * dn + dp * dp) / g;
            }
            e
        })
        .collect()
}
