//! The spherical Woods-Saxon mean field of Bohr & Mottelson (Nuclear Structure Vol. I, 1969,
//! ch. 2, eqs. 2-181 to 2-183), with spin-orbit and, for protons, the Coulomb field of a
//! uniformly charged sphere.

/// hbar c, MeV fm (CODATA 2018).
pub const HBAR_C: f64 = 197.326_980_4;
/// e^2 / (4 pi eps0), MeV fm.
pub const E2: f64 = 1.439_964_547;

/// Which nucleon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Species {
    Neutron,
    Proton,
}

impl Species {
    pub const BOTH: [Species; 2] = [Species::Neutron, Species::Proton];

    /// Rest energy m c^2, MeV (CODATA 2018).
    pub fn mass(self) -> f64 {
        match self {
            Species::Neutron => 939.565_420_5,
            Species::Proton => 938.272_088_2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Species::Neutron => "neutron",
            Species::Proton => "proton",
        }
    }
}

/// The potential felt by one species in nucleus (Z, N).
#[derive(Debug, Clone, Copy)]
pub struct WoodsSaxon {
    /// Depth V0, MeV: 51 -+ 33 (N - Z) / A (minus for neutrons).
    pub v0: f64,
    /// Half-density radius R = r0 A^(1/3), fm.
    pub radius: f64,
    /// Surface diffuseness a, fm.
    pub diffuseness: f64,
    /// r0, fm (also scales the spin-orbit term).
    pub r0: f64,
    /// Charge (Z - 1) e^2 seen by a proton (a proton does not repel itself), MeV fm; 0 for
    /// neutrons.
    pub coulomb_charge: f64,
    /// Radius of the uniformly charged sphere, 1.25 A^(1/3) fm.
    pub coulomb_radius: f64,
}

impl WoodsSaxon {
    pub fn bohr_mottelson(z: u32, n: u32, species: Species) -> Self {
        let a = f64::from(z + n);
        let asym = 33.0 * (f64::from(n) - f64::from(z)) / a;
        let r0 = 1.27;
        let (v0, coulomb_charge) = match species {
            Species::Neutron => (51.0 - asym, 0.0),
            Species::Proton => (51.0 + asym, f64::from(z.saturating_sub(1)) * E2),
        };
        Self {
            v0,
            radius: r0 * a.cbrt(),
            diffuseness: 0.67,
            r0,
            coulomb_charge,
            coulomb_radius: 1.25 * a.cbrt(),
        }
    }

    /// Central part -V0 f(r) + V_C(r), MeV.
    pub fn central(&self, r: f64) -> f64 {
        let f = 1.0 / (1.0 + ((r - self.radius) / self.diffuseness).exp());
        let rc = self.coulomb_radius;
        let coulomb = if r >= rc {
            self.coulomb_charge / r
        } else {
            self.coulomb_charge / (2.0 * rc) * (3.0 - r * r / (rc * rc))
        };
        -self.v0 * f + coulomb
    }

    /// Radial factor of the spin-orbit term, 0.44 V0 r0^2 (1/r) df/dr, MeV; multiplied by
    /// <l.s> = l/2 (j = l + 1/2) or -(l + 1)/2 (j = l - 1/2).
    pub fn spin_orbit(&self, r: f64) -> f64 {
        let e = ((r - self.radius) / self.diffuseness).exp();
        let df_dr = -e / (self.diffuseness * (1.0 + e) * (1.0 + e));
        0.44 * self.v0 * self.r0 * self.r0 * df_dr / r
    }
}

/// <l.s> in units of hbar^2 for j = l + 1/2 (`j2 = 2l + 1`) or j = l - 1/2 (`j2 = 2l - 1`).
pub fn l_dot_s(l: usize, j2: usize) -> f64 {
    if j2 > 2 * l {
        l as f64 / 2.0
    } else {
        -(l as f64 + 1.0) / 2.0
    }
}
