// Batched symmetric eigendecomposition by Householder tridiagonalisation and implicit QL, a
// team of TEAM invocations per matrix (invocation r owning row r), TEAMS matrices per
// workgroup, everything in workgroup memory. The algorithm of the CUDA block classes
// (kernels/eigh/block.cu), which documents it step by step:
// 1. A (both triangles, odd row stride S) scaled by a power of two into [0.5, 1); Householder
//    tridiagonalisation as LAPACK dsytd2 (lower), reflectors kept in the columns they
//    annihilate. The sums every invocation needs (the column norm, p^T v) are computed by each
//    invocation from workgroup memory (broadcast reads) instead of a tree reduction: three
//    barriers per step.
// 2. With vectors, Q formed in place back to front (LAPACK dorgtr / dorg2r).
// 3. Implicit QL on (d, e) (EISPACK tql2 in JAMA's form, the CPU backend's `implicit_ql`) by one
//    invocation of the team, which records each bulge chase's rotations in one of two slots
//    while the row owners apply the previous chase to their rows of Q: one chase per round,
//    two barriers per round.
// 4. Ascending order by a stable rank, scaling undone, the sign rule of every backend (each
//    eigenvector's first largest entry positive).
//
// The host prepends a header defining: alias R (f32 or f64); constants NMAX (largest order),
// S (odd row stride >= NMAX), TEAM (a power of two >= NMAX), TEAMS, WG (= TEAM * TEAMS),
// VECTORS, ULP (machine epsilon), RSQRT_ULP (1 / sqrt(ULP)), SAFE_MIN (smallest normal),
// FINITE_MAX; then shaders/eigh/common.wgsl (bindings, matrix lookup, input test, exponent).

const MAT: u32 = NMAX * S;

// Per team: A (then Q), the reflector v and p (then the y of Q's formation, then the signs),
// tau, the ranks (d, e, the rotation slots and the
// per-workgroup flags are in shaders/eigh/ql.wgsl).
var<workgroup> sh: array<R, TEAMS * MAT>;
var<workgroup> vs: array<R, TEAMS * NMAX>;
var<workgroup> ws: array<R, TEAMS * NMAX>;
var<workgroup> taus: array<R, TEAMS * NMAX>;
var<workgroup> rnk: array<u32, TEAMS * NMAX>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let t = lid / TEAM;
    let r = lid % TEAM;
    // This team's matrix and vectors in workgroup memory.
    let base = t * MAT;
    let tb = t * NMAX;
    let row = base + r * S;
    let count = params.count;
    let groups = (count + TEAMS - 1u) / TEAMS;
    for (var g = wid.x; g < groups; g += nwg.x) {
        let pos = g * TEAMS + t;
        let mat = matrix_at(pos);
        let idx = mat.idx;
        let n = mat.n;
        let a0 = mat.a0;
        let w0 = mat.w0;
        if r == 0u {
            atomicStore(&bad[t], 0u);
        }
        workgroupBarrier();
        var big = R(0.0);
        for (var e = r; e < n * n; e += TEAM) {
            let i = e / n;
            let j = e % n;
            if j <= i {
                let x = a[a0 + e];
                if non_finite(x) {
                    atomicOr(&bad[t], 1u);
                } else {
                    big = max(big, abs(x));
                }
                sh[base + i * S + j] = x;
                sh[base + j * S + i] = x;
            }
        }
        red[lid] = big;
        workgroupBarrier();
        let is_bad = (atomicLoad(&bad[t]) & 1u) != 0u;
        var anrm = R(0.0);
        for (var i = 0u; i < TEAM; i++) {
            anrm = max(anrm, red[t * TEAM + i]);
        }
        // Exact power-of-two scaling into [0.5, 1): no overflow in the reflectors or the
        // rotations, no lost underflow.
        var ex = 0i;
        if !is_bad && anrm > R(0.0) {
            ex = exponent(anrm);
            if r < n {
                for (var j = 0u; j < n; j++) {
                    sh[row + j] = ldexp(sh[row + j], -ex);
                }
            }
        }
        if is_bad && r == 0u {
            atomicMax(&status[0], ~idx);
        }
        let live = !is_bad && n > 0u;
        workgroupBarrier();

        // 1. Tridiagonalisation (dsytd2, lower): d[k], e[k], tau[k] for k < n - 2.
        for (var k = 0u; k + 2u < NMAX; k++) {
            let act = live && k + 2u < n;
            var tau = R(0.0);
            var vr = R(0.0);
            if act {
                let alpha = sh[base + (k + 1u) * S + k];
                var sig = R(0.0);
                for (var i = k + 2u; i < n; i++) {
                    let x = sh[base + i * S + k];
                    sig += x * x;
                }
                if r == 0u {
                    dd[tb + k] = sh[base + k * S + k];
                }
                if sig == R(0.0) {
                    if r == 0u {
                        ee[tb + k] = alpha;
                        taus[tb + k] = R(0.0);
                    }
                } else {
                    var beta = sqrt(alpha * alpha + sig);
                    if alpha >= R(0.0) {
                        beta = -beta;
                    }
                    tau = (beta - alpha) / beta;
                    let inv = R(1.0) / (alpha - beta);
                    if r == k + 1u {
                        vr = R(1.0);
                    } else if r > k + 1u && r < n {
                        vr = sh[row + k] * inv;
                    }
                    if r == 0u {
                        ee[tb + k] = beta;
                        taus[tb + k] = tau;
                    }
                }
            }
            if r < NMAX {
                vs[tb + r] = vr;
            }
            workgroupBarrier();
            // p = tau A v, row by row.
            var pr = R(0.0);
            if tau != R(0.0) && r > k && r < n {
                for (var j = k + 1u; j < n; j++) {
                    pr += sh[row + j] * vs[tb + j];
                }
                pr *= tau;
            }
            if r < NMAX {
                ws[tb + r] = pr;
            }
            workgroupBarrier();
            // A -= v w^T + w v^T with w = p - (tau / 2) (p^T v) v.
            if tau != R(0.0) {
                var pv = R(0.0);
                for (var j = k + 1u; j < n; j++) {
                    pv += ws[tb + j] * vs[tb + j];
                }
                let kk = R(-0.5) * tau * pv;
                if r > k && r < n {
                    let wr = pr + kk * vr;
                    for (var j = k + 1u; j < n; j++) {
                        let vj = vs[tb + j];
                        sh[row + j] -= vr * (ws[tb + j] + kk * vj) + wr * vj;
                    }
                    // The reflector, kept for forming Q (column k is not read again).
                    if VECTORS {
                        sh[row + k] = vr;
                    }
                }
            }
            workgroupBarrier();
        }
        if live && r == 0u {
            for (var i = select(n - 2u, 0u, n < 2u); i < n; i++) {
                dd[tb + i] = sh[base + i * S + i];
                ee[tb + i] = R(0.0);
                if i + 1u < n {
                    ee[tb + i] = sh[base + (i + 1u) * S + i];
                }
            }
        }
        workgroupBarrier();

        // 2. Q = H_0 ... H_{n-3} in place, back to front: after the step for reflector k, rows
        // and columns >= k + 1 hold H_k ... H_{n-3} restricted to them.
        if VECTORS {
            if live && r == 0u {
                sh[base + (n - 1u) * S + n - 1u] = R(1.0);
            }
            workgroupBarrier();
            for (var k1 = NMAX - 2u; k1 > 0u; k1--) {
                let k = k1 - 1u;
                let act = live && k + 2u < n;
                var tau = R(0.0);
                if act {
                    tau = taus[tb + k];
                }
                // Row k + 1 of the formed block (columns >= k + 2) is zero in Q.
                if act && r >= k + 2u && r < n {
                    sh[base + (k + 1u) * S + r] = R(0.0);
                }
                workgroupBarrier();
                // y_j = tau sum_{i > k + 1} v_i Q[i][j], invocation j owning column j.
                if tau != R(0.0) && r >= k + 2u && r < n {
                    var y = R(0.0);
                    for (var i = k + 2u; i < n; i++) {
                        y += sh[base + i * S + k] * sh[base + i * S + r];
                    }
                    ws[tb + r] = tau * y;
                }
                workgroupBarrier();
                if tau != R(0.0) && r >= k + 1u && r < n {
                    var vr = R(1.0);
                    if r > k + 1u {
                        vr = sh[row + k];
                    }
                    for (var j = k + 2u; j < n; j++) {
                        sh[row + j] -= vr * ws[tb + j];
                    }
                }
                workgroupBarrier();
                if act && r > k + 1u && r < n {
                    sh[row + k + 1u] = -tau * sh[row + k];
                }
                if act && r == k + 1u {
                    sh[row + r] = R(1.0) - tau;
                }
                workgroupBarrier();
            }
            // Row and column 0 of Q are e_0.
            if live && r < n {
                sh[base + r] = select(R(0.0), R(1.0), r == 0u);
                sh[row] = select(R(0.0), R(1.0), r == 0u);
            }
            workgroupBarrier();
        }

        // 3. QL. The chain runs on a spare invocation when the team has one, else on the owner
        // of row 0, which applies the previous chase to its row before computing the next.
        // Values only: the chain runs to the end on its own.
        let chain = select(0u, TEAM - 1u, n < TEAM);
        var q = Ql(0u, 0u, 0u, R(0.0), SAFE_MIN / (ULP * ULP));
        var state = select(0, 1, live);
        if !VECTORS && r == chain {
            while state > 0 {
                ql_step(&q, &state, t, n, 0u, idx);
            }
        }
        let owns_row = VECTORS && live && r < n;
        for (var k = 0u; VECTORS; k++) {
            if owns_row && k > 0u {
                let slot = (k - 1u) & 1u;
                if chased[slot * TEAMS + t] != 0u {
                    let l = hdr[t * 4u + 2u * slot];
                    let m = hdr[t * 4u + 2u * slot + 1u];
                    let cb = t * 4u * NMAX + slot * 2u * NMAX;
                    var carry = sh[row + m];
                    for (var i1 = m; i1 > l; i1--) {
                        let i = i1 - 1u;
                        let zi = sh[row + i];
                        let c = cs[cb + 2u * i];
                        let s = cs[cb + 2u * i + 1u];
                        sh[row + i + 1u] = s * zi + c * carry;
                        carry = c * zi - s * carry;
                    }
                    sh[row + l] = carry;
                }
            }
            if r == chain {
                let slot = k & 1u;
                ql_step(&q, &state, t, n, slot, idx);
                // 1: this round recorded a chase in the slot.
                chased[slot * TEAMS + t] = u32(state > 0);
            }
            workgroupBarrier();
            if lid == 0u {
                var any = 0u;
                for (var i = 0u; i < TEAMS; i++) {
                    any |= chased[(k & 1u) * TEAMS + i];
                }
                wg_go = any;
            }
            if workgroupUniformLoad(&wg_go) == 0u {
                break;
            }
        }
        workgroupBarrier();
        // Bit 1: QL did not converge. Such a matrix, like one with NaN/Inf input, gets NaN
        // outputs (finish_matrix below) instead of these.
        let failed = (atomicLoad(&bad[t]) & 2u) != 0u;
        let ok = live && !failed;

        // 4. Ascending order by a stable rank sort; signs from each column's first largest
        // entry; scaling undone.
        if ok && r < n {
            let di = dd[tb + r];
            var rank = 0u;
            for (var j = 0u; j < n; j++) {
                let dj = dd[tb + j];
                if dj < di || (dj == di && j < r) {
                    rank++;
                }
            }
            rnk[tb + r] = rank;
            w[w0 + rank] = ldexp(di, ex);
            if VECTORS {
                var at = 0u;
                var bv = abs(sh[base + r]);
                for (var i = 1u; i < n; i++) {
                    let x = abs(sh[base + i * S + r]);
                    if x > bv {
                        bv = x;
                        at = i;
                    }
                }
                ws[tb + r] = select(R(1.0), R(-1.0), sh[base + at * S + r] < R(0.0));
            }
        }
        workgroupBarrier();
        if VECTORS && ok {
            for (var e = r; e < n * n; e += TEAM) {
                let i = e / n;
                let j = e % n;
                v[a0 + i * n + rnk[tb + j]] = ws[tb + j] * sh[base + i * S + j];
            }
        }
        finish_matrix(mat, r, TEAM, is_bad, failed);
        workgroupBarrier();
    }
}
