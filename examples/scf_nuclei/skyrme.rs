//! The SLy4 Skyrme force and the coefficients of its energy density functional.
//!
//! Parameters: E. Chabanat, P. Bonche, P. Haensel, J. Meyer, R. Schaeffer, Nucl. Phys. A 635
//! (1998) 231, erratum Nucl. Phys. A 643 (1998) 441 (table of SLy4). The functional is the
//! time-even spherical one of D. Vautherin and D. M. Brink, Phys. Rev. C 5 (1972) 626, in the
//! notation of Chabanat et al. (their eqs. for H_K, H_0, H_3, H_eff, H_fin, H_so), with:
//! - the spin-orbit term W0/2 (J.grad rho + J_n.grad rho_n + J_p.grad rho_p);
//! - NO spin-current squared (J^2) terms: SLy4 was fitted without them (SLy5 keeps them);
//! - the one-body centre-of-mass correction of the SLy fits: hbar^2/2m -> hbar^2/2m (1 - 1/A);
//! - Coulomb: direct term from the proton point density, exchange in the Slater approximation,
//!   -3/4 e^2 (3/pi)^(1/3) rho_p^(4/3).
//!
//! Energy density (MeV fm^-3), with rho = rho_n + rho_p and q = n, p:
//! ```text
//! H = hb (1 - 1/A) tau
//!   + t0/4 [(2 + x0) rho^2 - (2 x0 + 1) sum_q rho_q^2]
//!   + t3/24 rho^alpha [(2 + x3) rho^2 - (2 x3 + 1) sum_q rho_q^2]
//!   + B0 tau rho + B1 sum_q tau_q rho_q                       (effective mass)
//!   + D0 (grad rho)^2 + D1 sum_q (grad rho_q)^2               (finite range)
//!   + W0/2 (J.grad rho + sum_q J_q.grad rho_q)                (spin-orbit)
//! B0 = [t1 (2 + x1) + t2 (2 + x2)] / 8, B1 = [t2 (2 x2 + 1) - t1 (2 x1 + 1)] / 8,
//! D0 = [3 t1 (2 + x1) - t2 (2 + x2)] / 32, D1 = -[3 t1 (2 x1 + 1) + t2 (2 x2 + 1)] / 32.
//! ```
//! Its functional derivatives give the mean fields of species q (as in Vautherin & Brink):
//! ```text
//! B_q = hb (1 - 1/A) + B0 rho + B1 rho_q                                      (hbar^2 / 2m*_q)
//! U_q = t0 [(1 + x0/2) rho - (x0 + 1/2) rho_q]
//!     + t3/12 rho^alpha [(1 + x3/2)(2 + alpha) rho - (x3 + 1/2)(2 rho_q + alpha sum rho^2 / rho)]
//!     + B0 tau + B1 tau_q - 2 D0 lap rho - 2 D1 lap rho_q - W0/2 (div J + div J_q)
//!     + [q = p] (V_C - e^2 (3/pi)^(1/3) rho_p^(1/3))
//! W_q = W0/2 (d rho/dr + d rho_q/dr)          (spin-orbit field: h contains (W_q / r) l.sigma)
//! ```

/// hbar^2 / 2m for both species, MeV fm^2 (the SLy4 value, HFBTHO's HBZERO).
pub const HBAR2_2M: f64 = 20.735_53;
/// e^2, MeV fm (as in HFBTHO).
pub const E2: f64 = 1.439_978_4;

/// A Skyrme parameter set. Units: t0 MeV fm^3, t1 and t2 MeV fm^5, t3 MeV fm^(3 + 3 alpha),
/// w0 MeV fm^5, hb MeV fm^2, e2 MeV fm; x0..x3 and alpha dimensionless.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Skyrme {
    pub t0: f64,
    pub t1: f64,
    pub t2: f64,
    pub t3: f64,
    pub x0: f64,
    pub x1: f64,
    pub x2: f64,
    pub x3: f64,
    pub alpha: f64,
    pub w0: f64,
    pub hb: f64,
    pub e2: f64,
}

impl Skyrme {
    /// SLy4 (Chabanat et al. 1998).
    pub const SLY4: Skyrme = Skyrme {
        t0: -2488.913,
        t1: 486.818,
        t2: -546.395,
        t3: 13777.0,
        x0: 0.834,
        x1: -0.344,
        x2: -1.0,
        x3: 1.354,
        alpha: 1.0 / 6.0,
        w0: 123.0,
        hb: HBAR2_2M,
        e2: E2,
    };

    /// The functional's coefficients, as the kernels read them.
    pub fn coefficients(&self) -> Coefficients {
        let s = self;
        Coefficients {
            c0a: s.t0 * (1.0 + 0.5 * s.x0),
            c0b: s.t0 * (s.x0 + 0.5),
            c3a: s.t3 / 12.0 * (1.0 + 0.5 * s.x3) * (2.0 + s.alpha),
            c3b: s.t3 / 12.0 * (s.x3 + 0.5),
            alpha: s.alpha,
            b0: (s.t1 * (2.0 + s.x1) + s.t2 * (2.0 + s.x2)) / 8.0,
            b1: (s.t2 * (2.0 * s.x2 + 1.0) - s.t1 * (2.0 * s.x1 + 1.0)) / 8.0,
            d0: (3.0 * s.t1 * (2.0 + s.x1) - s.t2 * (2.0 + s.x2)) / 32.0,
            d1: -(3.0 * s.t1 * (2.0 * s.x1 + 1.0) + s.t2 * (2.0 * s.x2 + 1.0)) / 32.0,
            e0a: s.t0 / 4.0 * (2.0 + s.x0),
            e0b: s.t0 / 4.0 * (2.0 * s.x0 + 1.0),
            e3a: s.t3 / 24.0 * (2.0 + s.x3),
            e3b: s.t3 / 24.0 * (2.0 * s.x3 + 1.0),
            w0_half: 0.5 * s.w0,
            hb: s.hb,
            e2: s.e2,
            slater: s.e2 * (3.0 / std::f64::consts::PI).cbrt(),
        }
    }
}

/// Coefficients of the mean fields and of the energy density, in the units of [`Skyrme`]
/// (one flat `#[repr(C)]` record: a GPU kernel takes it as one parameter block).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    /// t0 (1 + x0/2) and t0 (x0 + 1/2): U_q's t0 part.
    pub c0a: f64,
    pub c0b: f64,
    /// t3/12 (1 + x3/2)(2 + alpha) and t3/12 (x3 + 1/2): U_q's t3 part.
    pub c3a: f64,
    pub c3b: f64,
    pub alpha: f64,
    /// B0, B1: effective mass (tau rho) terms.
    pub b0: f64,
    pub b1: f64,
    /// D0, D1: (grad rho)^2 terms.
    pub d0: f64,
    pub d1: f64,
    /// t0/4 (2 + x0), t0/4 (2 x0 + 1): energy density's t0 part.
    pub e0a: f64,
    pub e0b: f64,
    /// t3/24 (2 + x3), t3/24 (2 x3 + 1): energy density's t3 part.
    pub e3a: f64,
    pub e3b: f64,
    /// W0 / 2.
    pub w0_half: f64,
    /// hbar^2 / 2m (before the c.m. factor).
    pub hb: f64,
    /// e^2 and e^2 (3/pi)^(1/3) (Slater exchange).
    pub e2: f64,
    pub slater: f64,
}

/// rho^(1/6) from sqrt and cbrt only (WGSL has no reliable f64 pow).
pub fn pow_sixth(rho: f64) -> f64 {
    rho.cbrt().sqrt()
}
