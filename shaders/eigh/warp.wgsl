// The tridiagonal eigh shader (shaders/eigh/block.wgsl) with each invocation's row of A and
// of Q in its own function-scope arrays instead of workgroup memory, the layout of the CUDA
// warp classes (kernels/eigh/warp.cu): on NVIDIA's Vulkan driver a workgroup gets a share of
// only about 48 KiB of workgroup memory per SM, which held the matrix-in-workgroup-memory
// shader to 2-8 resident matrices per SM (docs/benchmarks/eigh-wgpu-h200.md). Per team only
// vectors of NMAX live in workgroup memory: the column being reduced, p, d, e, the ranks and
// the rotation slots.
// 1. Invocation r reads row r of A (lower triangle: (r, j) for j <= r, (j, r) above), scaled
//    by a power of two into [0.5, 1). Householder tridiagonalisation as LAPACK dsytd2 (lower):
//    per step the owners publish column k, every invocation forms the reflector v from it, p =
//    tau A v row by row, then the rank-2 update of its own row. Three barriers a step.
// 2. With vectors, Q accumulated forwards with the same reflectors: q_r <- q_r - tau (q_r . v) v^T,
//    row by row (no column access).
// 3. QL as block.wgsl (shaders/eigh/ql.wgsl): one invocation runs the chain and records each
//    chase's rotations; the row owners apply the previous chase to their rows of Q.
// 4. Output: each row of Q goes to v unpermuted, then (after a storage barrier) invocation j
//    takes the sign of column j from v (first largest entry positive) and the rank of d[j];
//    each invocation rewrites its row with the columns permuted and signed.
//
// The host prepends the header of block.wgsl, then shaders/eigh/common.wgsl and
// shaders/eigh/ql.wgsl.

// Per team: column k (then the signs), p and the ranks (d, e, the rotation slots and the
// per-workgroup flags are in shaders/eigh/ql.wgsl).
var<workgroup> col: array<R, TEAMS * NMAX>;
var<workgroup> ws: array<R, TEAMS * NMAX>;
var<workgroup> rnk: array<u32, TEAMS * NMAX>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let t = lid / TEAM;
    let r = lid % TEAM;
    let tb = t * NMAX;
    let groups = (params.count + TEAMS - 1u) / TEAMS;
    var arow: array<R, NMAX>;
    var qrow: array<R, NMAX>;
    for (var g = wid.x; g < groups; g += nwg.x) {
        let mat = matrix_at(g * TEAMS + t);
        let idx = mat.idx;
        let n = mat.n;
        let a0 = mat.a0;
        let w0 = mat.w0;
        let owner = r < n;
        if r == 0u {
            atomicStore(&bad[t], 0u);
        }
        workgroupBarrier();
        var big = R(0.0);
        if owner {
            for (var j = 0u; j < n; j++) {
                let x = a[a0 + max(r, j) * n + min(r, j)];
                if non_finite(x) {
                    atomicOr(&bad[t], 1u);
                } else {
                    big = max(big, abs(x));
                }
                arow[j] = x;
                qrow[j] = select(R(0.0), R(1.0), j == r);
            }
        }
        red[lid] = big;
        workgroupBarrier();
        let is_bad = (atomicLoad(&bad[t]) & 1u) != 0u;
        var anrm = R(0.0);
        for (var i = 0u; i < TEAM; i++) {
            anrm = max(anrm, red[t * TEAM + i]);
        }
        var ex = 0i;
        if !is_bad && anrm > R(0.0) {
            ex = exponent(anrm);
            if owner {
                for (var j = 0u; j < n; j++) {
                    arow[j] = ldexp(arow[j], -ex);
                }
            }
        }
        if is_bad && r == 0u {
            atomicMax(&status[0], ~idx);
        }
        let live = !is_bad && n > 0u;

        // 1. and 2.: tridiagonalisation, Q accumulated forwards.
        for (var k = 0u; k + 2u < NMAX; k++) {
            let act = live && k + 2u < n;
            if act && owner {
                col[tb + r] = arow[k];
            }
            workgroupBarrier();
            var tau = R(0.0);
            var inv = R(0.0);
            var vr = R(0.0);
            if act {
                let alpha = col[tb + k + 1u];
                var sig = R(0.0);
                for (var i = k + 2u; i < n; i++) {
                    let x = col[tb + i];
                    sig += x * x;
                }
                if r == 0u {
                    dd[tb + k] = col[tb + k];
                    ee[tb + k] = alpha;
                }
                if sig != R(0.0) {
                    var beta = sqrt(alpha * alpha + sig);
                    if alpha >= R(0.0) {
                        beta = -beta;
                    }
                    tau = (beta - alpha) / beta;
                    inv = R(1.0) / (alpha - beta);
                    if r == 0u {
                        ee[tb + k] = beta;
                    }
                    if r == k + 1u {
                        vr = R(1.0);
                    } else if r > k + 1u && owner {
                        vr = arow[k] * inv;
                    }
                }
            }
            // p = tau A v, row by row; v_j = col_j / (alpha - beta) below k + 1.
            var pr = R(0.0);
            if tau != R(0.0) && r > k && owner {
                pr = arow[k + 1u];
                for (var j = k + 2u; j < n; j++) {
                    pr += arow[j] * col[tb + j] * inv;
                }
                pr *= tau;
            }
            if act && owner {
                ws[tb + r] = pr;
            }
            workgroupBarrier();
            if tau != R(0.0) {
                var pv = ws[tb + k + 1u];
                for (var j = k + 2u; j < n; j++) {
                    pv += ws[tb + j] * col[tb + j] * inv;
                }
                let kk = R(-0.5) * tau * pv;
                if r > k && owner {
                    let wr = pr + kk * vr;
                    arow[k + 1u] -= vr * (ws[tb + k + 1u] + kk) + wr;
                    for (var j = k + 2u; j < n; j++) {
                        let vj = col[tb + j] * inv;
                        arow[j] -= vr * (ws[tb + j] + kk * vj) + wr * vj;
                    }
                }
                if VECTORS && owner {
                    var qv = qrow[k + 1u];
                    for (var j = k + 2u; j < n; j++) {
                        qv += qrow[j] * col[tb + j] * inv;
                    }
                    qv *= tau;
                    qrow[k + 1u] -= qv;
                    for (var j = k + 2u; j < n; j++) {
                        qrow[j] -= qv * col[tb + j] * inv;
                    }
                }
            }
            workgroupBarrier();
        }
        // The last 2 x 2 block: d from the rows' diagonals, e[n - 2] from row n - 1.
        if live && owner && r + 2u >= n {
            dd[tb + r] = arow[r];
            if r + 1u == n {
                ee[tb + r] = R(0.0);
                if r > 0u {
                    ee[tb + r - 1u] = arow[r - 1u];
                }
            }
        }
        workgroupBarrier();

        // 3. QL (see block.wgsl).
        let chain = select(0u, TEAM - 1u, n < TEAM);
        var q = Ql(0u, 0u, 0u, R(0.0), SAFE_MIN / (ULP * ULP));
        var state = select(0, 1, live);
        if !VECTORS && r == chain {
            while state > 0 {
                ql_step(&q, &state, t, n, 0u, idx);
            }
        }
        let owns_row = VECTORS && live && owner;
        for (var k = 0u; VECTORS; k++) {
            if owns_row && k > 0u {
                let slot = (k - 1u) & 1u;
                if chased[slot * TEAMS + t] != 0u {
                    let l = hdr[t * 4u + 2u * slot];
                    let m = hdr[t * 4u + 2u * slot + 1u];
                    let cb = t * 4u * NMAX + slot * 2u * NMAX;
                    var carry = qrow[m];
                    for (var i1 = m; i1 > l; i1--) {
                        let i = i1 - 1u;
                        let zi = qrow[i];
                        let c = cs[cb + 2u * i];
                        let s = cs[cb + 2u * i + 1u];
                        qrow[i + 1u] = s * zi + c * carry;
                        carry = c * zi - s * carry;
                    }
                    qrow[l] = carry;
                }
            }
            if r == chain {
                let slot = k & 1u;
                ql_step(&q, &state, t, n, slot, idx);
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

        // 4. Ranks, eigenvalues, then the vectors through v.
        if ok && owner {
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
                for (var j = 0u; j < n; j++) {
                    v[a0 + r * n + j] = qrow[j];
                }
            }
        }
        if VECTORS {
            storageBarrier();
            workgroupBarrier();
            if ok && owner {
                // Column r of Q: the sign of its first largest entry.
                var bv = abs(v[a0 + r]);
                var sv = v[a0 + r];
                for (var i = 1u; i < n; i++) {
                    let x = v[a0 + i * n + r];
                    if abs(x) > bv {
                        bv = abs(x);
                        sv = x;
                    }
                }
                col[tb + r] = select(R(1.0), R(-1.0), sv < R(0.0));
            }
            storageBarrier();
            workgroupBarrier();
            if ok && owner {
                for (var j = 0u; j < n; j++) {
                    v[a0 + r * n + rnk[tb + j]] = col[tb + j] * qrow[j];
                }
            }
        }
        finish_matrix(mat, r, TEAM, is_bad, failed);
        workgroupBarrier();
    }
}
