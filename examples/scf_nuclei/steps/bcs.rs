//! BCS occupations with a constant pairing strength (seniority force), per nucleus and species.
//!
//! Model: constant-G BCS (Ring & Schuck, The Nuclear Many-Body Problem, 1980, ch. 6) with
//! G = G0 / A and a smooth cutoff of the pairing window (introduced by Bonche et al., Nucl.
//! Phys. A 443 (1985) 39, and Krieger et al., Nucl. Phys. A 517 (1990) 275, with a Fermi
//! function; here a polynomial, so no exp). Levels k of the spherical spectrum (energy e_k,
//! degeneracy d_k = 2j + 1) pair with strength f_k G f_k', where f_k falls from 1 to 0 (a C^1
//! smoothstep) as |e_k - e_ref| goes from window - RAMP to window + RAMP.
//!
//! The window's centre e_ref fills the same spectrum with the smooth occupations
//! s(x) = (1 - x |x| / (x^2 + DELTA_REF^2)) / 2, x = e - e_ref (a sigmoid with BCS-like
//! DELTA_REF^2 / (2 x^2) tails and no sqrt), found by bisection on the particle number like
//! lambda. Unlike the sharp Fermi energy, e_ref moves continuously with the levels, so the
//! window, and with it the whole step, depends continuously on the spectrum (a sharp window
//! made 94Sr's iteration flip between two states forever).
//!
//! With E_k = sqrt((e_k - lambda)^2 + f_k^2 Delta^2):
//! ```text
//! v_k^2 = (1 - (e_k - lambda) / E_k) / 2       (f_k > 0; for f_k = 0: 1 below e_ref, else 0)
//! number:  sum_k d_k v_k^2 = N
//! gap:     Delta = G/4 sum_k d_k f_k^2 Delta / E_k   (Delta = G sum_k (d_k/2) f_k u_k v_k)
//! ```
//! Solved without library root finders, as one GPU thread would:
//! - for a trial Delta, the Fermi level lambda(Delta) by BISECTION on the particle number
//!   (continuous and increasing in lambda);
//! - the gap equation F(Delta) = G/4 sum d f^2 Delta / E - Delta = 0, bracketed in
//!   [DELTA_MIN, G/4 sum d f] (F < 0 at the top since E >= f Delta), by regula falsi with the
//!   Illinois modification (Dowell & Jarratt, BIT 11 (1971) 168), which keeps the bracket. It
//!   starts from a bracket of +-1% around the previous iteration's gap when that holds the
//!   root (near convergence: three or four evaluations of F).
//! - Collapse: if F(DELTA_MIN) <= 0, or the window holds fewer than 2 particles or 2 holes,
//!   Delta = 0 (as at closed shells) and the occupations are the sharp filling, the last level
//!   partly filled if the nucleons end inside it (the filling approximation): the particle
//!   number stays exact.
//!
//! Pairing energy -Delta^2 / G (energy.rs; the -G sum v^4 self-energy is left out, as usual
//! with a constant G).

use rayon::prelude::*;

use crate::layout::{Layout, SPECIES};

/// Largest number of states of one (nucleus, species): the size of a thread's local arrays.
pub const MAX_STATES: usize = 512;
/// Gap below which pairing counts as collapsed, MeV.
pub const DELTA_MIN: f64 = 1e-4;
/// Smoothing width of the reference Fermi energy that centres the window, MeV.
pub const DELTA_REF: f64 = 1.0;
/// Relative half-width of the first bracket around the previous gap.
pub const WARM: f64 = 1e-2;
/// Half-width of the window's smooth edge, MeV.
pub const RAMP: f64 = 0.5;
/// Bisection on lambda stops when the bracket is this narrow (MeV) or stops shrinking.
pub const LAMBDA_TOL: f64 = 1e-12;
/// The gap equation is solved to |F| <= GAP_TOL * Delta or a bracket this narrow (MeV).
pub const GAP_TOL: f64 = 1e-12;
/// Most bisection and regula falsi steps.
pub const MAX_STEPS: usize = 200;

/// Constant-G pairing: G = g0 / A MeV for both species, window half-width in MeV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pairing {
    pub g0: f64,
    pub window: f64,
}

/// Result of one (nucleus, species).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BcsResult {
    /// Gap at the Fermi surface, MeV (0 when pairing collapsed).
    pub delta: f64,
    /// Fermi level, MeV (e_ref when pairing collapsed).
    pub lambda: f64,
    /// Centre of the pairing window, MeV.
    pub e_ref: f64,
}

/// v^2 of a level at e - lambda = x with gap delta > 0. Far above lambda the subtraction
/// cancels, but its absolute error stays near 1e-16, which is what the particle number sees;
/// without a branch the loops over levels vectorise.
#[inline]
pub fn v2_of(x: f64, delta: f64) -> f64 {
    0.5 * (1.0 - x / (x * x + delta * delta).sqrt())
}

/// Smooth occupation of a level at e - e_ref = x for the window's centre (no sqrt).
#[inline]
fn smooth_step(x: f64) -> f64 {
    0.5 * (1.0 - x * x.abs() / (x * x + DELTA_REF * DELTA_REF))
}

/// Cutoff factor of a level at distance |e - e_ref| = dist from the window's centre.
#[inline]
pub fn cutoff(dist: f64, window: f64) -> f64 {
    let s = ((window + RAMP - dist) / (2.0 * RAMP)).clamp(0.0, 1.0);
    s * s * (3.0 - 2.0 * s)
}

/// Smallest lambda (to LAMBDA_TOL) at which `count(lambda)`, continuous and increasing, reaches
/// `target`, by bisection in [lo, hi].
fn bisect(mut lo: f64, mut hi: f64, target: f64, count: impl Fn(f64) -> f64) -> f64 {
    for _ in 0..MAX_STEPS {
        let mid = 0.5 * (lo + hi);
        if hi - lo <= LAMBDA_TOL || mid <= lo || mid >= hi {
            break;
        }
        if count(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A bracket [lo, hi] for the Fermi level of levels spanning [e_min, e_max] with `deg`
/// nucleons of room and gaps up to `delta`: beyond `margin` every level holds (or lacks) less
/// than 2 / deg of its room, fewer than the 2 particles (holes) an even nucleus has.
fn bracket(e_min: f64, e_max: f64, deg: f64, delta: f64) -> (f64, f64) {
    let margin = delta * (deg / 8.0).sqrt() + 1.0;
    (e_min - margin, e_max + margin)
}

/// One thread's work: occupations `v2`, gap and Fermi level of one (nucleus, species) whose
/// levels have energies `e` (MeV) and degeneracies `d`, with `particles` nucleons and
/// G = `g` MeV; `previous` is the last iteration's gap (0 if none), a starting guess only.
pub fn solve(
    e: &[f64],
    d: &[f64],
    particles: f64,
    g: f64,
    window: f64,
    previous: f64,
    v2: &mut [f64],
) -> BcsResult {
    let states = e.len();
    // Reference Fermi energy. s(x) <= DELTA_REF^2 / (2 x^2) far away, so a margin of
    // DELTA_REF sqrt(room / 4) leaves fewer than 2 particles (holes) beyond it.
    let (mut e_min, mut e_max, mut room) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for k in 0..states {
        e_min = e_min.min(e[k]);
        e_max = e_max.max(e[k]);
        room += d[k];
    }
    let margin = DELTA_REF * (room / 4.0).sqrt() + 1.0;
    let e_ref = bisect(e_min - margin, e_max + margin, particles, |lambda| {
        // Four partial sums (k mod 4) so the CPU can use SIMD lanes.
        let mut n = [0.0; 4];
        let (ec, dc) = (e.chunks_exact(4), d.chunks_exact(4));
        let (er, dr) = (ec.remainder(), dc.remainder());
        for (e4, d4) in ec.zip(dc) {
            for k in 0..4 {
                n[k] += d4[k] * smooth_step(e4[k] - lambda);
            }
        }
        for (k, (&ek, &dk)) in er.iter().zip(dr).enumerate() {
            n[k] += dk * smooth_step(ek - lambda);
        }
        (n[0] + n[1]) + (n[2] + n[3])
    });

    // The window's levels in local arrays; those outside are full below e_ref, empty above.
    let mut we = [0.0; MAX_STATES];
    let mut wd = [0.0; MAX_STATES];
    let mut wf = [0.0; MAX_STATES];
    let (mut count, mut core, mut room_w, mut sum_df) = (0, 0.0, 0.0, 0.0);
    let (mut w_min, mut w_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for k in 0..states {
        let f = cutoff((e[k] - e_ref).abs(), window);
        if f > 0.0 {
            we[count] = e[k];
            wd[count] = d[k];
            wf[count] = f;
            count += 1;
            room_w += d[k];
            sum_df += d[k] * f;
            w_min = w_min.min(e[k]);
            w_max = w_max.max(e[k]);
        } else if e[k] < e_ref {
            core += d[k];
        }
    }
    let target = particles - core;
    let (we, wd, wf) = (&we[..count], &wd[..count], &wf[..count]);
    // sum of d f^2 / E over the window at (lambda, delta).
    let gap_sum = |lambda: f64, delta: f64| {
        let mut inv_e = 0.0;
        for ((&ek, &dk), &fk) in we.iter().zip(wd).zip(wf) {
            let x = ek - lambda;
            let fd = fk * delta;
            inv_e += dk * fk * fk / (x * x + fd * fd).sqrt();
        }
        inv_e
    };
    let fermi = |delta: f64| {
        let (lo, hi) = bracket(w_min, w_max, room_w, delta);
        bisect(lo, hi, target, |lambda| {
            let mut n = 0.0;
            for ((&ek, &dk), &fk) in we.iter().zip(wd).zip(wf) {
                n += dk * v2_of(ek - lambda, fk * delta);
            }
            n
        })
    };
    // F(delta) = G/4 sum d f^2 delta / E - delta, and lambda(delta).
    let gap_fn = |delta: f64| {
        let lambda = fermi(delta);
        (g / 4.0 * gap_sum(lambda, delta) * delta - delta, lambda)
    };

    let can_pair = g > 0.0 && target >= 2.0 && room_w - target >= 2.0;
    // The bracket [a, b] of the gap: around the previous gap if it holds the root, else
    // [DELTA_MIN, top], where F(DELTA_MIN) <= 0 means collapse.
    let (mut a, mut fa, mut b, mut fb) = (0.0, 0.0, 0.0, 0.0);
    let mut bracketed = false;
    if can_pair && previous > DELTA_MIN / (1.0 - WARM) {
        (a, b) = (previous * (1.0 - WARM), previous * (1.0 + WARM));
        (fa, fb) = (gap_fn(a).0, gap_fn(b).0);
        bracketed = fa > 0.0 && fb < 0.0;
    }
    if can_pair && !bracketed {
        a = DELTA_MIN;
        fa = gap_fn(a).0;
    }
    if !can_pair || fa <= 0.0 {
        // Collapse: sharp filling in the order (energy, index), the last level partly filled.
        for k in 0..states {
            let mut below = 0.0;
            for j in 0..states {
                if e[j] < e[k] || (e[j] == e[k] && j < k) {
                    below += d[j];
                }
            }
            v2[k] = ((particles - below) / d[k]).clamp(0.0, 1.0);
        }
        return BcsResult {
            delta: 0.0,
            lambda: e_ref,
            e_ref,
        };
    }
    if !bracketed {
        b = g / 4.0 * sum_df * 1.01 + 1e-3;
        fb = gap_fn(b).0;
    }
    let mut side = 0;
    let mut delta = b;
    for _ in 0..MAX_STEPS {
        let c = (a * fb - b * fa) / (fb - fa);
        let fc = gap_fn(c).0;
        delta = c;
        if fc.abs() <= GAP_TOL * c || b - a <= GAP_TOL {
            break;
        }
        if fc > 0.0 {
            a = c;
            fa = fc;
            if side == 1 {
                fb *= 0.5;
            }
            side = 1;
        } else {
            b = c;
            fb = fc;
            if side == -1 {
                fa *= 0.5;
            }
            side = -1;
        }
    }
    let lambda = fermi(delta);
    for k in 0..states {
        let f = cutoff((e[k] - e_ref).abs(), window);
        v2[k] = if f > 0.0 {
            v2_of(e[k] - lambda, f * delta)
        } else if e[k] < e_ref {
            1.0
        } else {
            0.0
        };
    }
    BcsResult {
        delta,
        lambda,
        e_ref,
    }
}

/// Occupations of the whole batch (parallel over nuclei): `v2` in the layout of `energies`,
/// `delta` and `lambda` per `i * 2 + s`; `delta` holds the previous gaps on entry (zeros at
/// the start).
pub fn occupations(
    lay: &Layout,
    pairing: Pairing,
    energies: &[f64],
    v2: &mut [f64],
    delta: &mut [f64],
    lambda: &mut [f64],
) {
    let per = lay.states_per_nucleus();
    (
        v2.par_chunks_mut(per),
        delta.par_chunks_mut(SPECIES),
        lambda.par_chunks_mut(SPECIES),
    )
        .into_par_iter()
        .enumerate()
        .for_each(|(i, (v2, delta, lambda))| {
            let g = pairing.g0 / lay.mass_number[i];
            let base = lay.ns_state_off[i * SPECIES] as usize;
            for s in 0..SPECIES {
                let ns = i * SPECIES + s;
                let (k0, k1) = (
                    lay.ns_state_off[ns] as usize,
                    lay.ns_state_off[ns + 1] as usize,
                );
                let r = solve(
                    &energies[k0..k1],
                    &lay.state_deg[k0..k1],
                    lay.particles[ns],
                    g,
                    pairing.window,
                    delta[s],
                    &mut v2[k0 - base..k1 - base],
                );
                delta[s] = r.delta;
                lambda[s] = r.lambda;
            }
        });
}
