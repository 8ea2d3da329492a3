// Batched symmetric eigendecomposition by two-sided cyclic Jacobi in the parallel
// (round-robin, "circle") ordering: each of the NMAX - 1 rounds of a sweep rotates NMAX / 2
// disjoint pairs (p, q) at once. Rotation per Golub & Van Loan, Matrix Computations (4th ed.),
// Alg. 8.5.1-8.5.2; the 2x2 block is set exactly (Rutishauser's Handbook `jacobi`); a rotation
// is skipped when |a_pq| <= eps sqrt|a_pp| sqrt|a_qq| (Demmel & Veselic 1992); a matrix has
// converged when a whole sweep skipped every rotation. The same algorithm and conventions as
// kernels/eigh/jacobi.cu (CUDA) and the CPU backend's output conventions.
//
// The host prepends a header defining: alias R (f32 or f64); constants NMAX (even), S
// (NMAX + 1, the row stride), HALF, TEAM (threads per matrix), TEAMS (matrices per workgroup),
// WG (= TEAM * TEAMS), VECTORS, IN_WG (A in workgroup memory, else in `work`), V_IN_WG (V
// likewise), SH_LEN, WG_SLOT (elements per team in `sh`), ST_SLOT (per workgroup in `work`),
// EPS, TAU_BIG, FINITE_MAX, MAX_SWEEPS; then shaders/eigh/common.wgsl (bindings, matrix
// lookup, input test, exponent).

@group(0) @binding(4) var<storage, read_write> work: array<R>;

const MAT: u32 = NMAX * S;

var<workgroup> sh: array<R, SH_LEN>;
var<workgroup> pc: array<R, TEAMS * HALF>;
var<workgroup> ps: array<R, TEAMS * HALF>;
var<workgroup> pdp: array<R, TEAMS * HALF>;
var<workgroup> pdq: array<R, TEAMS * HALF>;
var<workgroup> sgn: array<R, TEAMS * NMAX>;
var<workgroup> red: array<R, WG>;
// Per pair: rotates this round (then reused for the eigenvalue ranks).
var<workgroup> rnk: array<u32, TEAMS * NMAX>;
var<workgroup> pairs: array<u32, TEAMS * HALF>;
var<workgroup> bad: array<atomic<u32>, TEAMS>;
var<workgroup> rotated: array<atomic<u32>, TEAMS>;
var<workgroup> team_active: array<u32, TEAMS>;
var<workgroup> wg_active: u32;

// Orders the team's accesses to its matrices: workgroup memory, or, for matrices in `work`,
// storage memory too (workgroupBarrier alone does not order storage accesses).
fn barrier() {
    if !IN_WG || (VECTORS && !V_IN_WG) {
        storageBarrier();
    }
    workgroupBarrier();
}

// Entry i of a team's matrix storage: workgroup memory (`in_wg`, a constant at every call
// site) or the storage workspace.
fn load(in_wg: bool, i: u32) -> R {
    if in_wg {
        return sh[i];
    }
    return work[i];
}

fn store(in_wg: bool, i: u32, x: R) {
    if in_wg {
        sh[i] = x;
    } else {
        work[i] = x;
    }
}

fn m_get(i: u32) -> R {
    return load(IN_WG, i);
}

fn m_set(i: u32, x: R) {
    store(IN_WG, i, x);
}

fn v_get(i: u32) -> R {
    return load(V_IN_WG, i);
}

fn v_set(i: u32, x: R) {
    store(V_IN_WG, i, x);
}

// Rotates entries (i, j) of A (`in_wg` = IN_WG) or V (V_IN_WG) by (c, s):
// x' = c x - s y, y' = s x + c y.
fn rotate(in_wg: bool, i: u32, j: u32, c: R, s: R) {
    let x = load(in_wg, i);
    let y = load(in_wg, j);
    store(in_wg, i, c * x - s * y);
    store(in_wg, j, s * x + c * y);
}

// Round `round` of the circle method over m (even) players: player 0 stays, the others rotate
// through positions 1..m-1; position k plays position m-1-k.
fn circle_pair(m: u32, round: u32, k: u32) -> vec2<u32> {
    let x = select(((k + m - 2u + round) % (m - 1u)) + 1u, 0u, k == 0u);
    let y = ((m - 2u - k + round) % (m - 1u)) + 1u;
    return vec2<u32>(min(x, y), max(x, y));
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let t = lid / TEAM;
    let tid = lid % TEAM;
    // This team's A and V: in its slot of workgroup memory (A first), or in this workgroup's
    // slot of `work` (A first when both are there).
    let base = select(wid.x * ST_SLOT, t * WG_SLOT, IN_WG);
    let vbase = select(wid.x * ST_SLOT + select(MAT, 0u, IN_WG), t * WG_SLOT + MAT, V_IN_WG);
    let count = params.count;
    let groups = (count + TEAMS - 1u) / TEAMS;
    for (var g = wid.x; g < groups; g += nwg.x) {
        let pos = g * TEAMS + t;
        let mat = matrix_at(pos);
        let idx = mat.idx;
        let n = mat.n;
        let a0 = mat.a0;
        let w0 = mat.w0;
        if tid == 0u {
            atomicStore(&bad[t], 0u);
            atomicStore(&rotated[t], 0u);
        }
        barrier();
        var big = R(0.0);
        for (var e = tid; e < n * n; e += TEAM) {
            let r = e / n;
            let c = e % n;
            if c <= r {
                let x = a[a0 + e];
                if non_finite(x) {
                    atomicOr(&bad[t], 1u);
                } else {
                    big = max(big, abs(x));
                }
                m_set(base + r * S + c, x);
                m_set(base + c * S + r, x);
            }
            if VECTORS {
                v_set(vbase + r * S + c, select(R(0.0), R(1.0), r == c));
            }
        }
        red[lid] = big;
        barrier();
        let is_bad = atomicLoad(&bad[t]) != 0u;
        var anrm = R(0.0);
        for (var i = 0u; i < TEAM; i++) {
            anrm = max(anrm, red[t * TEAM + i]);
        }
        // Exact power-of-two scaling into [0.5, 1): no overflow in tau, no lost underflow.
        var ex = 0i;
        if n > 1u && !is_bad && anrm > R(0.0) {
            ex = exponent(anrm);
            for (var e = tid; e < n * n; e += TEAM) {
                let i = base + (e / n) * S + e % n;
                m_set(i, ldexp(m_get(i), -ex));
            }
        }
        if is_bad && tid == 0u {
            atomicMax(&status[0], ~idx);
        }
        if tid == 0u {
            team_active[t] = select(0u, 1u, n > 1u && !is_bad && anrm > R(0.0));
        }
        for (var sweep = 0u; ; sweep++) {
            barrier();
            if lid == 0u {
                var alive = 0u;
                for (var i = 0u; i < TEAMS; i++) {
                    alive |= team_active[i];
                }
                wg_active = alive;
            }
            if workgroupUniformLoad(&wg_active) == 0u {
                break;
            }
            if sweep == MAX_SWEEPS {
                if tid == 0u && team_active[t] != 0u {
                    atomicMax(&status[1], ~idx);
                }
                break;
            }
            let live = team_active[t] != 0u;
            for (var round = 0u; round < NMAX - 1u; round++) {
                for (var k = tid; k < HALF; k += TEAM) {
                    let pq = circle_pair(NMAX, round, k);
                    let p = pq.x;
                    let q = pq.y;
                    var on = 0u;
                    if live && q < n {
                        let app = m_get(base + p * S + p);
                        let aqq = m_get(base + q * S + q);
                        let apq = m_get(base + q * S + p);
                        if apq != R(0.0) && abs(apq) > EPS * sqrt(abs(app)) * sqrt(abs(aqq)) {
                            let tau = (aqq - app) / (R(2.0) * apq);
                            let at = abs(tau);
                            var tt = R(1.0) / (at + sqrt(R(1.0) + tau * tau));
                            if at > TAU_BIG {
                                tt = R(0.5) / at;
                            }
                            if tau < R(0.0) {
                                tt = -tt;
                            }
                            let c = R(1.0) / sqrt(R(1.0) + tt * tt);
                            pc[t * HALF + k] = c;
                            ps[t * HALF + k] = tt * c;
                            pdp[t * HALF + k] = app - tt * apq;
                            pdq[t * HALF + k] = aqq + tt * apq;
                            on = 1u;
                            atomicOr(&rotated[t], 1u);
                        }
                    }
                    rnk[t * NMAX + k] = on;
                    pairs[t * HALF + k] = p | (q << 16u);
                }
                barrier();
                // A <- J^T A: rows p and q of every rotating pair. Items run over NMAX columns
                // (a constant divisor, a shift for power-of-two orders) and skip those >= n.
                for (var e = tid; e < HALF * NMAX; e += TEAM) {
                    let k = e / NMAX;
                    let col = e % NMAX;
                    if col < n && rnk[t * NMAX + k] != 0u {
                        let p = pairs[t * HALF + k] & 0xffffu;
                        let q = pairs[t * HALF + k] >> 16u;
                        let c = pc[t * HALF + k];
                        let s = ps[t * HALF + k];
                        rotate(IN_WG, base + p * S + col, base + q * S + col, c, s);
                    }
                }
                barrier();
                // A <- A J and V <- V J: columns p and q; the 2x2 block itself is set exactly.
                for (var e = tid; e < HALF * NMAX; e += TEAM) {
                    let k = e / NMAX;
                    let row = e % NMAX;
                    if row < n && rnk[t * NMAX + k] != 0u {
                        let p = pairs[t * HALF + k] & 0xffffu;
                        let q = pairs[t * HALF + k] >> 16u;
                        let c = pc[t * HALF + k];
                        let s = ps[t * HALF + k];
                        if row == p {
                            m_set(base + p * S + p, pdp[t * HALF + k]);
                            m_set(base + p * S + q, R(0.0));
                        } else if row == q {
                            m_set(base + q * S + q, pdq[t * HALF + k]);
                            m_set(base + q * S + p, R(0.0));
                        } else {
                            rotate(IN_WG, base + row * S + p, base + row * S + q, c, s);
                        }
                        if VECTORS {
                            rotate(V_IN_WG, vbase + row * S + p, vbase + row * S + q, c, s);
                        }
                    }
                }
                barrier();
            }
            if tid == 0u {
                team_active[t] = team_active[t] & atomicExchange(&rotated[t], 0u);
            }
        }
        barrier();
        // Still active: the sweep cap stopped it unconverged. Such a matrix, like one with
        // NaN/Inf input, gets NaN outputs (finish_matrix below) instead of these.
        let failed = team_active[t] != 0u;
        let nan_out = is_bad || failed;
        // Ascending order by a stable rank sort; signs from each column's first largest entry.
        for (var i = tid; i < n; i += TEAM) {
            if nan_out {
                continue;
            }
            let di = m_get(base + i * S + i);
            var r = 0u;
            for (var j = 0u; j < n; j++) {
                let dj = m_get(base + j * S + j);
                if dj < di || (dj == di && j < i) {
                    r++;
                }
            }
            rnk[t * NMAX + i] = r;
            w[w0 + r] = ldexp(di, ex);
            if VECTORS {
                var at = 0u;
                var bv = abs(v_get(vbase + i));
                for (var row = 1u; row < n; row++) {
                    let x = abs(v_get(vbase + row * S + i));
                    if x > bv {
                        bv = x;
                        at = row;
                    }
                }
                sgn[t * NMAX + i] = select(R(1.0), R(-1.0), v_get(vbase + at * S + i) < R(0.0));
            }
        }
        barrier();
        if VECTORS && !nan_out {
            for (var e = tid; e < n * n; e += TEAM) {
                let row = e / n;
                let i = e % n;
                v[a0 + row * n + rnk[t * NMAX + i]] = sgn[t * NMAX + i] * v_get(vbase + row * S + i);
            }
        }
        finish_matrix(mat, tid, TEAM, is_bad, failed);
        barrier();
    }
}
