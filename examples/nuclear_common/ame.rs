//! The 2012 Atomic Mass Evaluation table (data/AME2012.txt): mass excesses and the separation
//! energies derived from them.

use std::collections::HashMap;

/// Neutron mass excess, MeV (AME2012).
pub const DELTA_N: f64 = 8.0713171;
/// Hydrogen-atom mass excess, MeV (AME2012).
pub const DELTA_H: f64 = 7.2889706;

/// Measured mass excesses in MeV, keyed by (Z, N).
pub struct MassTable {
    excess: HashMap<(u32, u32), f64>,
    order: Vec<(u32, u32)>,
}

impl MassTable {
    /// Parses the `Z N M` table (one header line, then one nuclide per line).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut excess = HashMap::new();
        let mut order = Vec::new();
        for (line_no, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.is_empty() {
                continue;
            }
            let bad = || format!("line {}: expected `Z N M`, got {line:?}", line_no + 1);
            if fields.len() != 3 {
                return Err(bad());
            }
            let z: u32 = fields[0].parse().map_err(|_| bad())?;
            let n: u32 = fields[1].parse().map_err(|_| bad())?;
            let m: f64 = fields[2].parse().map_err(|_| bad())?;
            if excess.insert((z, n), m).is_none() {
                order.push((z, n));
            }
        }
        Ok(Self { excess, order })
    }

    /// The table shipped with the crate.
    pub fn ame2012() -> Self {
        Self::parse(include_str!("../../data/AME2012.txt"))
            .expect("data/AME2012.txt is well formed")
    }

    /// Every nuclide as (Z, N), in file order.
    pub fn nuclides(&self) -> &[(u32, u32)] {
        &self.order
    }

    /// Total binding energy B(Z, N) = Z Delta_H + N Delta_n - M(Z, N), MeV (positive; atomic
    /// masses, so the electrons' binding, at most a few hundred keV, is included).
    #[allow(dead_code)] // used by examples/scf_nuclei
    pub fn binding_energy(&self, z: u32, n: u32) -> Option<f64> {
        let m = self.excess.get(&(z, n))?;
        Some(f64::from(z) * DELTA_H + f64::from(n) * DELTA_N - m)
    }

    /// One-neutron separation energy S_n(Z, N) = M(Z, N-1) + Delta_n - M(Z, N), MeV.
    pub fn s_n(&self, z: u32, n: u32) -> Option<f64> {
        let m = self.excess.get(&(z, n))?;
        let m1 = self.excess.get(&(z, n.checked_sub(1)?))?;
        Some(m1 + DELTA_N - m)
    }

    /// One-proton separation energy S_p(Z, N) = M(Z-1, N) + Delta_H - M(Z, N), MeV.
    pub fn s_p(&self, z: u32, n: u32) -> Option<f64> {
        let m = self.excess.get(&(z, n))?;
        let m1 = self.excess.get(&(z.checked_sub(1)?, n))?;
        Some(m1 + DELTA_H - m)
    }
}
