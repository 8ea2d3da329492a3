// BCS occupations, gap and Fermi level of each (nucleus, species) (steps/bcs.rs's `solve`):
// one WARP per (nucleus, species) ns = i * 2 + s. Lane L holds states k = L + 32 m
// (m < BCS_PER_LANE) of the species in registers; every sum over states is a per-lane sum
// followed by an XOR-butterfly warp sum that leaves the same bits in every lane, so the
// bisections, the bracket choice and the regula falsi run the same control flow in all
// lanes, with the same constants and in the same order as the CPU's single thread.
//
// The constants come from the Rust side (cuda.rs prepends #defines generated from bcs.rs):
// BCS_PER_LANE (ceil(states per species / 32) <= MAX_STATES / 32), BCS_DELTA_MIN,
// BCS_DELTA_REF, BCS_WARM, BCS_RAMP, BCS_LAMBDA_TOL, BCS_GAP_TOL, BCS_MAX_STEPS.
//
// Reads energies and state_deg (`block_w_off[b] + c`, MeV and 2j + 1), ns_state_off,
// particles (`i * 2 + s`: N, Z), mass_number; delta holds the previous gaps on entry (a
// starting guess); writes v2 (state layout), delta and lambda (`i * 2 + s`, MeV).
// g = g0 / A MeV; window: half-width of the pairing window, MeV.
#ifndef BCS_PER_LANE
#define BCS_PER_LANE 16
#endif

// v^2 of a level at e - lambda = x with gap delta (bcs.rs's v2_of).
__device__ __forceinline__ double bcs_v2_of(double x, double delta) {
    return 0.5 * (1.0 - x / sqrt(x * x + delta * delta));
}

// Smooth occupation around the window's centre (bcs.rs's smooth_step).
__device__ __forceinline__ double bcs_smooth_step(double x) {
    return 0.5 * (1.0 - x * fabs(x) / (x * x + BCS_DELTA_REF * BCS_DELTA_REF));
}

// Cutoff factor at distance |e - e_ref| = dist (bcs.rs's cutoff).
__device__ __forceinline__ double bcs_cutoff(double dist, double window) {
    const double s = scf_clamp((window + BCS_RAMP - dist) / (2.0 * BCS_RAMP), 0.0, 1.0);
    return s * s * (3.0 - 2.0 * s);
}

// bcs.rs's bisect: smallest lambda (to BCS_LAMBDA_TOL) at which count(lambda) reaches
// target. `count` returns the same value in every lane, so the loop is warp-uniform.
template <typename F>
__device__ __forceinline__ double bcs_bisect(double lo, double hi, double target, F count) {
    for (int it = 0; it < BCS_MAX_STEPS; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (hi - lo <= BCS_LAMBDA_TOL || mid <= lo || mid >= hi) break;
        if (count(mid) < target) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return 0.5 * (lo + hi);
}

extern "C" __global__ void scf_bcs(const double* __restrict__ energies,
                                   const double* __restrict__ state_deg,
                                   const unsigned* __restrict__ ns_state_off,
                                   const double* __restrict__ particles,
                                   const double* __restrict__ mass_number,
                                   double* __restrict__ v2, double* __restrict__ delta,
                                   double* __restrict__ lambda, double g0, double window,
                                   unsigned ns_count) {
    const unsigned ns = (blockIdx.x * blockDim.x + threadIdx.x) / 32u;
    const unsigned lane = threadIdx.x & 31u;
    // Warp-uniform: the whole warp leaves or stays.
    if (ns >= ns_count) return;
    const unsigned k0 = ns_state_off[ns];
    const unsigned states = ns_state_off[ns + 1] - k0;
    const double* __restrict__ e = energies + k0;
    const double* __restrict__ d = state_deg + k0;
    const double n_target = particles[ns];
    const double g = g0 / mass_number[ns / SCF_SPECIES];
    // Read by every lane before lane 0 writes it at the end (past many warp collectives).
    const double previous = delta[ns];

    // This lane's states: energy, degeneracy, cutoff factor (0 outside the window).
    double le[BCS_PER_LANE], ld[BCS_PER_LANE], lf[BCS_PER_LANE];
    double e_min = SCF_INF, e_max = -SCF_INF, room = 0.0;
#pragma unroll
    for (int m = 0; m < BCS_PER_LANE; ++m) {
        const unsigned k = lane + 32u * m;
        le[m] = 0.0;
        ld[m] = 0.0;
        lf[m] = 0.0;
        if (k < states) {
            le[m] = e[k];
            ld[m] = d[k];
            e_min = fmin(e_min, le[m]);
            e_max = fmax(e_max, le[m]);
            room += ld[m];
        }
    }
    e_min = scf_warp_min(e_min);
    e_max = scf_warp_max(e_max);
    room = scf_warp_sum(room);

    // Reference Fermi energy: the centre of the window.
    const double margin = BCS_DELTA_REF * sqrt(room / 4.0) + 1.0;
    const double e_ref = bcs_bisect(e_min - margin, e_max + margin, n_target, [&](double lam) {
        double n = 0.0;
#pragma unroll
        for (int m = 0; m < BCS_PER_LANE; ++m)
            if (lane + 32u * m < states) n += ld[m] * bcs_smooth_step(le[m] - lam);
        return scf_warp_sum(n);
    });

    // The window's levels (f > 0); those outside are full below e_ref, empty above.
    double core = 0.0, room_w = 0.0, sum_df = 0.0;
    double w_min = SCF_INF, w_max = -SCF_INF;
#pragma unroll
    for (int m = 0; m < BCS_PER_LANE; ++m) {
        if (lane + 32u * m < states) {
            const double f = bcs_cutoff(fabs(le[m] - e_ref), window);
            if (f > 0.0) {
                lf[m] = f;
                room_w += ld[m];
                sum_df += ld[m] * f;
                w_min = fmin(w_min, le[m]);
                w_max = fmax(w_max, le[m]);
            } else if (le[m] < e_ref) {
                core += ld[m];
            }
        }
    }
    core = scf_warp_sum(core);
    room_w = scf_warp_sum(room_w);
    sum_df = scf_warp_sum(sum_df);
    w_min = scf_warp_min(w_min);
    w_max = scf_warp_max(w_max);
    const double target = n_target - core;

    // sum of d f^2 / E over the window at (lambda, delta).
    auto gap_sum = [&](double lam, double dl) {
        double inv_e = 0.0;
#pragma unroll
        for (int m = 0; m < BCS_PER_LANE; ++m) {
            if (lf[m] > 0.0) {
                const double xk = le[m] - lam;
                const double fd = lf[m] * dl;
                inv_e += ld[m] * lf[m] * lf[m] / sqrt(xk * xk + fd * fd);
            }
        }
        return scf_warp_sum(inv_e);
    };
    // lambda(delta) by bisection on the window's particle number, in bcs.rs's bracket.
    auto fermi = [&](double dl) {
        const double bmargin = dl * sqrt(room_w / 8.0) + 1.0;
        return bcs_bisect(w_min - bmargin, w_max + bmargin, target, [&](double lam) {
            double n = 0.0;
#pragma unroll
            for (int m = 0; m < BCS_PER_LANE; ++m)
                if (lf[m] > 0.0) n += ld[m] * bcs_v2_of(le[m] - lam, lf[m] * dl);
            return scf_warp_sum(n);
        });
    };
    // F(delta) = G/4 sum d f^2 delta / E - delta.
    auto gap_fn = [&](double dl) {
        const double lam = fermi(dl);
        return g / 4.0 * gap_sum(lam, dl) * dl - dl;
    };

    const bool can_pair = g > 0.0 && target >= 2.0 && room_w - target >= 2.0;
    double a = 0.0, fa = 0.0, b = 0.0, fb = 0.0;
    bool bracketed = false;
    if (can_pair && previous > BCS_DELTA_MIN / (1.0 - BCS_WARM)) {
        a = previous * (1.0 - BCS_WARM);
        b = previous * (1.0 + BCS_WARM);
        fa = gap_fn(a);
        fb = gap_fn(b);
        bracketed = fa > 0.0 && fb < 0.0;
    }
    if (can_pair && !bracketed) {
        a = BCS_DELTA_MIN;
        fa = gap_fn(a);
    }
    if (!can_pair || fa <= 0.0) {
        // Collapse: sharp filling in the order (energy, index), the last level partly filled.
#pragma unroll
        for (int m = 0; m < BCS_PER_LANE; ++m) {
            const unsigned k = lane + 32u * m;
            if (k < states) {
                double below = 0.0;
                for (unsigned j = 0; j < states; ++j) {
                    const double ej = e[j];
                    if (ej < le[m] || (ej == le[m] && j < k)) below += d[j];
                }
                v2[k0 + k] = scf_clamp((n_target - below) / ld[m], 0.0, 1.0);
            }
        }
        if (lane == 0) {
            delta[ns] = 0.0;
            lambda[ns] = e_ref;
        }
        return;
    }
    if (!bracketed) {
        b = g / 4.0 * sum_df * 1.01 + 1e-3;
        fb = gap_fn(b);
    }
    // Regula falsi with the Illinois modification.
    int side = 0;
    double dl = b;
    for (int it = 0; it < BCS_MAX_STEPS; ++it) {
        const double c = (a * fb - b * fa) / (fb - fa);
        const double fc = gap_fn(c);
        dl = c;
        if (fabs(fc) <= BCS_GAP_TOL * c || b - a <= BCS_GAP_TOL) break;
        if (fc > 0.0) {
            a = c;
            fa = fc;
            if (side == 1) fb *= 0.5;
            side = 1;
        } else {
            b = c;
            fb = fc;
            if (side == -1) fa *= 0.5;
            side = -1;
        }
    }
    const double lam = fermi(dl);
#pragma unroll
    for (int m = 0; m < BCS_PER_LANE; ++m) {
        const unsigned k = lane + 32u * m;
        if (k < states) {
            // lf[m] is cutoff(|e - e_ref|, window) where that is > 0, as the CPU recomputes it.
            v2[k0 + k] = lf[m] > 0.0 ? bcs_v2_of(le[m] - lam, lf[m] * dl)
                                     : (le[m] < e_ref ? 1.0 : 0.0);
        }
    }
    if (lane == 0) {
        delta[ns] = dl;
        lambda[ns] = lam;
    }
}
