// Shared by the tridiagonal eigh shaders (shaders/eigh/block.wgsl, shaders/eigh/warp.wgsl,
// and shaders/eigh/global.wgsl with one team): implicit QL on a team's (d, e) in workgroup
// memory, EISPACK tql2 in JAMA's form (the CPU backend's `implicit_ql`), one bulge chase per
// call, its rotations recorded for the row owners, and the workgroup memory the shaders share.
// The header defines NMAX, TEAMS, WG, ULP, RSQRT_ULP and SAFE_MIN.

// Per team (at t * NMAX): d and e. Per team, two rotation slots of (c, s) pairs and their chase
// bounds (l, m); per slot parity and team: 1 when the team's chain recorded a chase in that
// slot. Per workgroup: reduction partials, the teams' flags (bit 0: non-finite input, bit 1: QL
// did not converge), the loop's go flag.
var<workgroup> dd: array<R, TEAMS * NMAX>;
var<workgroup> ee: array<R, TEAMS * NMAX>;
var<workgroup> cs: array<R, TEAMS * 4u * NMAX>;
var<workgroup> hdr: array<u32, TEAMS * 4u>;
var<workgroup> chased: array<u32, 2u * TEAMS>;
var<workgroup> red: array<R, WG>;
var<workgroup> bad: array<atomic<u32>, TEAMS>;
var<workgroup> wg_go: u32;

// sqrt(x^2 + y^2): directly where x^2 + y^2 neither underflows nor overflows, else scaled.
fn hypot(x: R, y: R) -> R {
    let t = fma(x, x, y * y);
    let lo = SAFE_MIN / ULP;
    if t >= lo && t <= R(1.0) / lo {
        return sqrt(t);
    }
    let mx = max(abs(x), abs(y));
    if mx == R(0.0) {
        return R(0.0);
    }
    let q = min(abs(x), abs(y)) / mx;
    return mx * sqrt(R(1.0) + q * q);
}

// Where the QL of one matrix stands between two bulge chases.
struct Ql {
    // The eigenvalue being converged.
    l: u32,
    // End of its unreduced block.
    m: u32,
    // Iterations on it so far (0: not started).
    iter: u32,
    // Accumulated shift.
    f: R,
    // Deflation scale.
    tst1: R,
}

// Runs QL on the team's (d, e) at `tb` up to and through its next bulge chase, recording the
// chase's rotations at cs[cb ..] (rotation i of columns (i, i + 1) as c, s at 2 i, 2 i + 1)
// and its bounds at hdr[hb], hdr[hb + 1]. Returns 1 after a chase, 0 once every eigenvalue has
// converged (d then holds them, unordered), -1 if one took more than 30 iterations (LAPACK's
// cap). JAMA's tql2, step by step.
fn ql_next(q: ptr<function, Ql>, tb: u32, n: u32, cb: u32, hb: u32) -> i32 {
    loop {
        let l = (*q).l;
        if l >= n {
            return 0;
        }
        if (*q).iter == 0u {
            let dl = dd[tb + l];
            let el = ee[tb + l];
            (*q).tst1 = max((*q).tst1, abs(dl) + abs(el));
            let thr = ULP * (*q).tst1;
            var m = l;
            while m + 1u < n && abs(ee[tb + m]) > thr {
                m++;
            }
            (*q).m = m;
            if m == l {
                dd[tb + l] = dl + (*q).f;
                ee[tb + l] = R(0.0);
                (*q).l = l + 1u;
                continue;
            }
        }
        (*q).iter += 1u;
        if (*q).iter > 30u {
            return -1;
        }
        let m = (*q).m;
        // The shift from the leading 2 x 2 block of the unreduced block.
        let g = dd[tb + l];
        let el = ee[tb + l];
        let el1 = ee[tb + l + 1u];
        let p0 = (dd[tb + l + 1u] - g) / (R(2.0) * el);
        var rr = abs(p0);
        if rr < RSQRT_ULP {
            rr = sqrt(p0 * p0 + R(1.0));
        }
        if p0 < R(0.0) {
            rr = -rr;
        }
        let dl = el / (p0 + rr);
        let dl1 = el * (p0 + rr);
        let h = g - dl;
        dd[tb + l] = dl;
        dd[tb + l + 1u] = dl1;
        for (var i = l + 2u; i < n; i++) {
            dd[tb + i] -= h;
        }
        (*q).f += h;
        // The bulge chase, from m - 1 down to l.
        var p = dd[tb + m];
        var c = R(1.0);
        var c2 = R(1.0);
        var c3 = R(1.0);
        var s = R(0.0);
        var s2 = R(0.0);
        // Each step's d[i], e[i] are read one step ahead, so the loads do not wait behind the
        // previous step's stores (which touch i + 1 only).
        var ei = ee[tb + m - 1u];
        var di = dd[tb + m - 1u];
        for (var i1 = m; i1 > l; i1--) {
            let i = i1 - 1u;
            let ahead = select(i - 1u, i, i == l);
            let ei_next = ee[tb + ahead];
            let di_next = dd[tb + ahead];
            c3 = c2;
            c2 = c;
            s2 = s;
            let gi = c * ei;
            let hi = c * p;
            // r = hypot(p, e_i), c = p / r, s = e_i / r from one reciprocal square root where
            // p^2 + e_i^2 neither underflowed nor overflowed.
            let tt = fma(p, p, ei * ei);
            var u = R(0.0);
            var ri = R(0.0);
            if tt >= SAFE_MIN / ULP && tt <= ULP / SAFE_MIN {
                u = inverseSqrt(tt);
                ri = tt * u;
            } else {
                ri = hypot(p, ei);
                u = R(1.0) / ri;
            }
            ee[tb + i + 1u] = s * ri;
            c = p * u;
            s = ei * u;
            p = fma(p, di, -(ei * gi)) * u;
            dd[tb + i + 1u] = hi + s * fma(c, gi, s * di);
            cs[cb + 2u * i] = c;
            cs[cb + 2u * i + 1u] = s;
            ei = ei_next;
            di = di_next;
        }
        p = -s * s2 * c3 * el1 * el / dl1;
        ee[tb + l] = s * p;
        dd[tb + l] = c * p;
        if abs(s * p) <= ULP * (*q).tst1 {
            dd[tb + l] = c * p + (*q).f;
            ee[tb + l] = R(0.0);
            (*q).l = l + 1u;
            (*q).iter = 0u;
        }
        hdr[hb] = l;
        hdr[hb + 1u] = m;
        return 1;
    }
    return 0;
}

// One call of ql_next for team t's chain (while `state` says it is still running), recording
// into rotation slot `slot`; a matrix that does not converge is reported in the status word
// and in bit 1 of the team's flags.
fn ql_step(q: ptr<function, Ql>, state: ptr<function, i32>, t: u32, n: u32, slot: u32, idx: u32) {
    if *state > 0 {
        *state = ql_next(q, t * NMAX, n, t * 4u * NMAX + slot * 2u * NMAX, t * 4u + 2u * slot);
        if *state < 0 {
            atomicMax(&status[1], ~idx);
            atomicOr(&bad[t], 2u);
        }
    }
}
