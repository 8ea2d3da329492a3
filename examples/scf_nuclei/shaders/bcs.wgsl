// BCS occupations, gap and Fermi level of one (nucleus, species) per WORKGROUP (steps/bcs.rs,
// `solve`, step for step: the same bisections, the same Illinois regula falsi, the same warm
// start, window and collapse). Invocation `lid` owns states lid + m * WG (m < SLOTS) in private
// arrays; every sum, minimum and maximum over the states is a tree in workgroup memory whose
// result every invocation reads through workgroupUniformLoad, so all invocations take the
// same branches and the loops' barriers stay in uniform control flow.
//
// wgpu.rs prepends `const WG: u32` (invocations, a power of two, 32..=256) and
// `const SLOTS: u32` (states per invocation, WG * SLOTS >= states_ns). Loop trips per
// invocation (lavapipe stops an invocation after 65,535): about 50 per bisection (from a
// bracket of at most a few hundred MeV to 1e-12 MeV) plus SLOTS per sum; a solve is one
// bisection for the window's centre and one per evaluation of the gap function (typically 5
// to 30), plus states_ns * SLOTS when pairing collapses.
//
// Dispatch: (nuclei * 2, 1, 1); workgroup id x = ns.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> energies: array<f64>;
@group(0) @binding(2) var<storage, read> deg: array<f64>;
@group(0) @binding(3) var<storage, read> nuc: array<f64>;
@group(0) @binding(4) var<storage, read_write> v2: array<f64>;
// delta, lambda at ns * 2, ns * 2 + 1; delta holds the previous gap on entry.
@group(0) @binding(5) var<storage, read_write> pair: array<f64>;

// Untyped: abstract constants fold in f64 precision (naga folds no f64 arithmetic).
const MAX_STEPS: u32 = 200u;
const DELTA_MIN = 1e-4;
const DELTA_REF = 1.0;
const WARM = 1e-2;
const RAMP = 0.5;
const LAMBDA_TOL = 1e-12;
const GAP_TOL = 1e-12;
const INF = 1e300;

const OP_SUM: u32 = 0u;
const OP_MIN: u32 = 1u;
const OP_MAX: u32 = 2u;

var<workgroup> red: array<f64, WG>;
var<workgroup> wg_prev: f64;

var<private> lid: u32;
// This invocation's states: energy, degeneracy 2j + 1, cutoff factor (0 outside the window
// or for slots past the last state), whether the slot holds a state.
var<private> pe: array<f64, SLOTS>;
var<private> pd: array<f64, SLOTS>;
var<private> pf: array<f64, SLOTS>;
var<private> live: array<bool, SLOTS>;

fn combine(a: f64, b: f64, op: u32) -> f64 {
    if op == OP_MIN {
        return min(a, b);
    }
    if op == OP_MAX {
        return max(a, b);
    }
    return a + b;
}

fn tree_step(half: u32, op: u32) {
    if lid < half {
        red[lid] = combine(red[lid], red[lid + half], op);
    }
    workgroupBarrier();
}

// The sum (minimum, maximum) of `v` over the workgroup, the same value in every invocation.
fn reduce(v: f64, op: u32) -> f64 {
    // The previous reduction's result has been read by everyone.
    workgroupBarrier();
    red[lid] = v;
    workgroupBarrier();
    if WG > 128u {
        tree_step(128u, op);
    }
    if WG > 64u {
        tree_step(64u, op);
    }
    if WG > 32u {
        tree_step(32u, op);
    }
    tree_step(16u, op);
    tree_step(8u, op);
    tree_step(4u, op);
    tree_step(2u, op);
    tree_step(1u, op);
    return workgroupUniformLoad(&red[0]);
}

fn v2_of(x: f64, delta: f64) -> f64 {
    return 0.5 * (1.0 - x / sqrt(x * x + delta * delta));
}

fn smooth_step(x: f64) -> f64 {
    return 0.5 * (1.0 - x * abs(x) / (x * x + DELTA_REF * DELTA_REF));
}

fn cutoff(dist: f64, window: f64) -> f64 {
    let s = clamp((window + RAMP - dist) / (2.0 * RAMP), 0.0, 1.0);
    return s * s * (3.0 - 2.0 * s);
}

// Particles of the smooth occupations around e_ref = lambda (all states).
fn count_ref(lambda: f64) -> f64 {
    var n: f64 = 0.0;
    for (var m = 0u; m < SLOTS; m++) {
        if live[m] {
            n += pd[m] * smooth_step(pe[m] - lambda);
        }
    }
    return reduce(n, OP_SUM);
}

// Particles in the window at (lambda, delta).
fn count_window(lambda: f64, delta: f64) -> f64 {
    var n: f64 = 0.0;
    for (var m = 0u; m < SLOTS; m++) {
        if pf[m] > 0.0 {
            n += pd[m] * v2_of(pe[m] - lambda, pf[m] * delta);
        }
    }
    return reduce(n, OP_SUM);
}

// sum of d f^2 / E over the window at (lambda, delta).
fn gap_sum(lambda: f64, delta: f64) -> f64 {
    var s: f64 = 0.0;
    for (var m = 0u; m < SLOTS; m++) {
        if pf[m] > 0.0 {
            let x = pe[m] - lambda;
            let fd = pf[m] * delta;
            s += pd[m] * pf[m] * pf[m] / sqrt(x * x + fd * fd);
        }
    }
    return reduce(s, OP_SUM);
}

// bcs.rs `bisect` with count = count_ref (window = false) or count_window(., delta).
fn bisect(lo0: f64, hi0: f64, goal: f64, window: bool, delta: f64) -> f64 {
    var lo = lo0;
    var hi = hi0;
    for (var step = 0u; step < MAX_STEPS; step++) {
        let mid = 0.5 * (lo + hi);
        if hi - lo <= LAMBDA_TOL || mid <= lo || mid >= hi {
            break;
        }
        var n: f64;
        if window {
            n = count_window(mid, delta);
        } else {
            n = count_ref(mid);
        }
        if n < goal {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return 0.5 * (lo + hi);
}

// The window's statistics, set once per solve (uniform).
var<private> w_min: f64;
var<private> w_max: f64;
var<private> room_w: f64;
var<private> target_w: f64;

// Fermi level at gap delta (bcs.rs `fermi`, with `bracket`).
fn fermi(delta: f64) -> f64 {
    let margin = delta * sqrt(room_w / 8.0) + 1.0;
    return bisect(w_min - margin, w_max + margin, target_w, true, delta);
}

// F(delta) = G/4 sum d f^2 delta / E - delta.
fn gap_fn(delta: f64, g: f64) -> f64 {
    let lambda = fermi(delta);
    return g / 4.0 * gap_sum(lambda, delta) * delta - delta;
}

@compute @workgroup_size(WG)
fn bcs(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    lid = li;
    let ns = wid.x;
    let states = P.states_ns;
    let k0 = ns * states;
    let a = nuc[(ns / 2u) * 4u];
    let particles = nuc[(ns / 2u) * 4u + 2u + (ns % 2u)];
    let g = P.g0 / a;
    let window = P.window;
    if li == 0u {
        wg_prev = pair[ns * 2u];
    }
    let previous = workgroupUniformLoad(&wg_prev);

    // Reference Fermi energy.
    var e_lo: f64 = INF;
    var e_hi: f64 = -INF;
    var room: f64 = 0.0;
    for (var m = 0u; m < SLOTS; m++) {
        let k = li + m * WG;
        live[m] = k < states;
        pf[m] = 0.0;
        if live[m] {
            pe[m] = energies[k0 + k];
            pd[m] = deg[k0 + k];
            e_lo = min(e_lo, pe[m]);
            e_hi = max(e_hi, pe[m]);
            room += pd[m];
        } else {
            pe[m] = 0.0;
            pd[m] = 0.0;
        }
    }
    let e_min = reduce(e_lo, OP_MIN);
    let e_max = reduce(e_hi, OP_MAX);
    room = reduce(room, OP_SUM);
    let margin = DELTA_REF * sqrt(room / 4.0) + 1.0;
    let e_ref = bisect(e_min - margin, e_max + margin, particles, false, 0.0);

    // The window; states outside it are full below e_ref, empty above.
    var core: f64 = 0.0;
    var rw: f64 = 0.0;
    var sdf: f64 = 0.0;
    var wl: f64 = INF;
    var wh: f64 = -INF;
    for (var m = 0u; m < SLOTS; m++) {
        if live[m] {
            let f = cutoff(abs(pe[m] - e_ref), window);
            pf[m] = f;
            if f > 0.0 {
                rw += pd[m];
                sdf += pd[m] * f;
                wl = min(wl, pe[m]);
                wh = max(wh, pe[m]);
            } else if pe[m] < e_ref {
                core += pd[m];
            }
        }
    }
    core = reduce(core, OP_SUM);
    room_w = reduce(rw, OP_SUM);
    let sum_df = reduce(sdf, OP_SUM);
    w_min = reduce(wl, OP_MIN);
    w_max = reduce(wh, OP_MAX);
    target_w = particles - core;

    let can_pair = g > 0.0 && target_w >= 2.0 && room_w - target_w >= 2.0;
    var lo_d: f64 = 0.0;
    var f_lo: f64 = 0.0;
    var hi_d: f64 = 0.0;
    var f_hi: f64 = 0.0;
    var bracketed = false;
    if can_pair && previous > DELTA_MIN / (1.0 - WARM) {
        lo_d = previous * (1.0 - WARM);
        hi_d = previous * (1.0 + WARM);
        f_lo = gap_fn(lo_d, g);
        f_hi = gap_fn(hi_d, g);
        bracketed = f_lo > 0.0 && f_hi < 0.0;
    }
    if can_pair && !bracketed {
        lo_d = DELTA_MIN;
        f_lo = gap_fn(lo_d, g);
    }
    if !can_pair || f_lo <= 0.0 {
        // Collapse: sharp filling in the order (energy, index), the last level partly filled.
        for (var m = 0u; m < SLOTS; m++) {
            if live[m] {
                let k = li + m * WG;
                var below: f64 = 0.0;
                for (var j = 0u; j < states; j++) {
                    let ej = energies[k0 + j];
                    if ej < pe[m] || (ej == pe[m] && j < k) {
                        below += deg[k0 + j];
                    }
                }
                v2[k0 + k] = clamp((particles - below) / pd[m], 0.0, 1.0);
            }
        }
        if li == 0u {
            pair[ns * 2u] = 0.0;
            pair[ns * 2u + 1u] = e_ref;
        }
        return;
    }
    if !bracketed {
        hi_d = g / 4.0 * sum_df * 1.01 + 1e-3;
        f_hi = gap_fn(hi_d, g);
    }
    var side = 0;
    var delta = hi_d;
    for (var step = 0u; step < MAX_STEPS; step++) {
        let c = (lo_d * f_hi - hi_d * f_lo) / (f_hi - f_lo);
        let fc = gap_fn(c, g);
        delta = c;
        if abs(fc) <= GAP_TOL * c || hi_d - lo_d <= GAP_TOL {
            break;
        }
        if fc > 0.0 {
            lo_d = c;
            f_lo = fc;
            if side == 1 {
                f_hi *= 0.5;
            }
            side = 1;
        } else {
            hi_d = c;
            f_hi = fc;
            if side == -1 {
                f_lo *= 0.5;
            }
            side = -1;
        }
    }
    let lambda = fermi(delta);
    for (var m = 0u; m < SLOTS; m++) {
        if live[m] {
            let k = li + m * WG;
            var v: f64 = 0.0;
            if pf[m] > 0.0 {
                v = v2_of(pe[m] - lambda, pf[m] * delta);
            } else if pe[m] < e_ref {
                v = 1.0;
            }
            v2[k0 + k] = v;
        }
    }
    if li == 0u {
        pair[ns * 2u] = delta;
        pair[ns * 2u + 1u] = lambda;
    }
}
