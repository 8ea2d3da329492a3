// The tridiagonal eigh shader for orders whose matrix does not fit workgroup memory (issue 26
// step 4): the algorithm of shaders/eigh/block.wgsl with A and Q in storage memory, one
// workgroup of WG invocations per matrix, only vectors of NMAX in workgroup memory (d, e, the
// QL's rotation slots, which double as the reflector, p and the ranks outside the QL). A is in
// the workgroup's slot of the workspace `work` (NMAX * NMAX elements at wid.x * NMAX * NMAX,
// row stride n); the host sizes `work` to the workgroups of one dispatch and runs larger
// buckets as several dispatches (waves), each workgroup taking one matrix.
//
// Storage accesses are arranged so that consecutive invocations touch consecutive addresses
// (one memory transaction per SIMD group rather than one per invocation): the sweeps over A
// give invocation j column j and walk down the rows (A is symmetric, so p = A v is summed
// down the columns); Q is formed column by column in `v` (row-major), then copied into the
// slot column-major, where the QL's rotations, which combine columns of Q, give invocation r
// row r and walk along the columns.
//
// 1. Input: A (both triangles, read from the lower) into the slot; NaN/Inf test; exact
//    power-of-two scaling into [0.5, 1).
// 2. Householder tridiagonalisation as LAPACK dsytd2 (lower), step k: the reflector from row
//    k (= column k), p = tau A v, p^T v by a tree reduction, the rank-2 update of the trailing
//    block. Step k + 1's column (its diagonal, subdiagonal and squared norm below) comes out of
//    step k's update: the owner of column k + 1 sums its squares as it updates it, so a step
//    has one reduction (p^T v) and no extra pass. With vectors the reflector is kept in row k.
// 3. With vectors: Q = H_0 ... H_{n-3} formed back to front in `v` (LAPACK dorg2r), then
//    copied column-major into the slot.
// 4. Implicit QL (EISPACK tql2 in JAMA's form, shaders/eigh/ql.wgsl) on invocation WG - 1,
//    which records each bulge chase's rotations in one of two slots while invocations
//    0..WG - 2 apply the previous chase to their rows of Q (r = lid, lid + WG - 1, ...): one
//    chase per round, one barrier per round; values only: the chain runs alone.
// 5. Ascending order by a stable rank, scaling undone, the sign rule of every backend (each
//    eigenvector's first largest entry positive); v written row by row from the slot.
//
// References: LAPACK dsytd2 and dorg2r (Anderson et al., LAPACK Users' Guide, 3rd ed., 1999);
// EISPACK tql2 (Bowdler, Martin, Reinsch & Wilkinson, Numer. Math. 11 (1968) 293).
//
// The host prepends a header defining: alias R (f32 or f64); constants NMAX (largest order),
// TEAMS (1: ql.wgsl's per-team arrays hold one matrix), WG (a power of two >= 32), VECTORS,
// ULP, RSQRT_ULP, SAFE_MIN, FINITE_MAX; then shaders/eigh/common.wgsl and
// shaders/eigh/ql.wgsl.

@group(0) @binding(4) var<storage, read_write> work: array<R>;

// What step k of the tridiagonalisation starts from: A[k][k], A[k + 1][k] and the squared norm
// of A[k + 2.., k] (written by the owner of column k during step k - 1's update).
var<workgroup> colk: array<R, 3>;
// The matrix's order, then flags, read back with workgroupUniformLoad so that the loops and
// branches holding barriers are uniform.
var<workgroup> wg_n: u32;
var<workgroup> wg_flag: u32;

// Offsets in ql.wgsl's `cs` (4 NMAX, used by the QL's rotation slots only while it runs):
// the reflector v, p (then w), each step's tau; after the QL, for each output column the
// column of Q it takes (CR) and its sign (CG).
const CV: u32 = 0u;
const CP: u32 = NMAX;
const CT: u32 = 2u * NMAX;
const CR: u32 = 2u * NMAX;
const CG: u32 = 3u * NMAX;

// The invocation that runs the QL chain, and the row owners' stride (all the others).
const CHAIN: u32 = WG - 1u;
const QROWS: u32 = WG - 1u;

// Orders this workgroup's storage and workgroup memory accesses.
fn sync() {
    storageBarrier();
    workgroupBarrier();
}

// The workgroup's sum (`is_max` false) or maximum of each invocation's `x`, in every
// invocation: a tree in ql.wgsl's `red`. Called in uniform control flow, with a barrier
// between two calls (the result is read from red[0] after the last level).
fn wg_reduce(x: R, lid: u32, is_max: bool) -> R {
    red[lid] = x;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if lid < h {
            let y = red[lid + h];
            red[lid] = select(red[lid] + y, max(red[lid], y), is_max);
        }
        workgroupBarrier();
    }
    return red[0];
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let base = wid.x * NMAX * NMAX;
    for (var g = wid.x; g < params.count; g += nwg.x) {
        let mat = matrix_at(g);
        let idx = mat.idx;
        let a0 = mat.a0;
        let w0 = mat.w0;
        if lid == 0u {
            atomicStore(&bad[0], 0u);
            wg_n = mat.n;
        }
        let n = workgroupUniformLoad(&wg_n);
        let nn = n * n;

        // 1. Input.
        var big = R(0.0);
        for (var e = lid; e < nn; e += WG) {
            let i = e / n;
            let j = e % n;
            let x = a[a0 + max(i, j) * n + min(i, j)];
            if non_finite(x) {
                atomicOr(&bad[0], 1u);
            } else {
                big = max(big, abs(x));
            }
            work[base + e] = x;
        }
        let anrm = wg_reduce(big, lid, true);
        if lid == 0u {
            wg_flag = u32((atomicLoad(&bad[0]) & 1u) == 0u && n > 0u);
        }
        let live = workgroupUniformLoad(&wg_flag) != 0u;
        let is_bad = n > 0u && !live;
        if is_bad && lid == 0u {
            atomicMax(&status[0], ~idx);
        }
        var ex = 0i;
        var failed = false;
        if live {
            if anrm > R(0.0) {
                ex = exponent(anrm);
                for (var e = lid; e < nn; e += WG) {
                    work[base + e] = ldexp(work[base + e], -ex);
                }
            }
            sync();

            // 2. Tridiagonalisation. Column 0's statistics from row 0.
            var part = R(0.0);
            for (var i = 2u + lid; i < n; i += WG) {
                let x = work[base + i];
                part += x * x;
            }
            let sig0 = wg_reduce(part, lid, false);
            if lid == 0u {
                colk[0] = work[base];
                colk[1] = select(R(0.0), work[base + 1u], n > 1u);
                colk[2] = sig0;
            }
            workgroupBarrier();
            for (var k = 0u; k + 2u < n; k++) {
                let alpha = colk[1];
                let sig = colk[2];
                var beta = alpha;
                var tau = R(0.0);
                var inv = R(0.0);
                if sig != R(0.0) {
                    beta = sqrt(alpha * alpha + sig);
                    if alpha >= R(0.0) {
                        beta = -beta;
                    }
                    tau = (beta - alpha) / beta;
                    inv = R(1.0) / (alpha - beta);
                }
                if lid == 0u {
                    dd[k] = colk[0];
                    ee[k] = beta;
                    cs[CT + k] = tau;
                }
                // v from row k; with vectors kept there for step 3 (row k is not read again).
                let rk = base + k * n;
                for (var i = k + 1u + lid; i < n; i += WG) {
                    var vi = R(1.0);
                    if i > k + 1u {
                        vi = work[rk + i] * inv;
                        if VECTORS {
                            work[rk + i] = vi;
                        }
                    }
                    cs[CV + i] = vi;
                }
                workgroupBarrier();
                // p = tau A v, invocation j summing down column j.
                var pv = R(0.0);
                if tau != R(0.0) {
                    for (var j = k + 1u + lid; j < n; j += WG) {
                        var s = R(0.0);
                        for (var i = k + 1u; i < n; i++) {
                            s += work[base + i * n + j] * cs[CV + i];
                        }
                        let pj = tau * s;
                        cs[CP + j] = pj;
                        pv += pj * cs[CV + j];
                    }
                }
                pv = wg_reduce(pv, lid, false);
                // w = p - (tau / 2)(p^T v) v, in place of p.
                let kk = R(-0.5) * tau * pv;
                if tau != R(0.0) {
                    for (var j = k + 1u + lid; j < n; j += WG) {
                        cs[CP + j] += kk * cs[CV + j];
                    }
                }
                workgroupBarrier();
                // A -= v w^T + w v^T, invocation j down column j. The owner of column k + 1
                // keeps what step k + 1 starts from (every invocation sums its column's squares
                // below row k + 2, so that none branches).
                for (var j = k + 1u + lid; j < n; j += WG) {
                    let vj = cs[CV + j];
                    let wj = cs[CP + j];
                    let top = base + (k + 1u) * n + j;
                    var x1 = work[top];
                    var x2 = work[top + n];
                    var sq = R(0.0);
                    if tau != R(0.0) {
                        x1 -= cs[CV + k + 1u] * wj + cs[CP + k + 1u] * vj;
                        x2 -= cs[CV + k + 2u] * wj + cs[CP + k + 2u] * vj;
                        work[top] = x1;
                        work[top + n] = x2;
                        for (var i = k + 3u; i < n; i++) {
                            let at = base + i * n + j;
                            let x = work[at] - (cs[CV + i] * wj + cs[CP + i] * vj);
                            work[at] = x;
                            sq += x * x;
                        }
                    } else if j == k + 1u {
                        for (var i = k + 3u; i < n; i++) {
                            let x = work[base + i * n + j];
                            sq += x * x;
                        }
                    }
                    if j == k + 1u {
                        colk[0] = x1;
                        colk[1] = x2;
                        colk[2] = sq;
                    }
                }
                sync();
            }
            // The last 2 x 2 (or 1 x 1) block.
            if lid == 0u {
                if n >= 2u {
                    dd[n - 2u] = colk[0];
                    ee[n - 2u] = colk[1];
                }
                dd[n - 1u] = work[base + (n - 1u) * n + n - 1u];
                ee[n - 1u] = R(0.0);
            }
            sync();

            // 3. Q = H_0 ... H_{n-3} back to front in v (row-major): after reflector k, rows
            // and columns >= k + 1 hold H_k ... H_{n-3} restricted to them.
            if VECTORS {
                if lid == 0u {
                    v[a0 + (n - 1u) * n + n - 1u] = R(1.0);
                }
                for (var k1 = select(0u, n - 2u, n >= 2u); k1 > 0u; k1--) {
                    let k = k1 - 1u;
                    let tau = cs[CT + k];
                    for (var i = k + 2u + lid; i < n; i += WG) {
                        cs[CV + i] = work[base + k * n + i];
                    }
                    workgroupBarrier();
                    // Invocation j on column j >= k + 2: y_j = tau sum_{i > k + 1} v_i Q[i][j],
                    // Q[k + 1][j] = -y_j (row k + 1 of the block was zero), Q[i][j] -= v_i y_j.
                    for (var j = k + 2u + lid; j < n; j += WG) {
                        var y = R(0.0);
                        if tau != R(0.0) {
                            for (var i = k + 2u; i < n; i++) {
                                y += cs[CV + i] * v[a0 + i * n + j];
                            }
                            y *= tau;
                            for (var i = k + 2u; i < n; i++) {
                                v[a0 + i * n + j] -= cs[CV + i] * y;
                            }
                        }
                        v[a0 + (k + 1u) * n + j] = -y;
                    }
                    // Column k + 1: H_k e_{k+1}.
                    for (var i = k + 1u + lid; i < n; i += WG) {
                        var q = R(1.0) - tau;
                        if i > k + 1u {
                            q = -tau * cs[CV + i];
                        }
                        v[a0 + i * n + k + 1u] = q;
                    }
                    sync();
                }
                // Row and column 0 are e_0; then Q column-major into the slot.
                for (var i = lid; i < n; i += WG) {
                    let q = select(R(0.0), R(1.0), i == 0u);
                    v[a0 + i] = q;
                    v[a0 + i * n] = q;
                }
                sync();
                for (var e = lid; e < nn; e += WG) {
                    work[base + (e % n) * n + e / n] = v[a0 + e];
                }
                sync();
            }

            // 4. QL. Q[r][i] is work[base + i * n + r].
            var q = Ql(0u, 0u, 0u, R(0.0), SAFE_MIN / (ULP * ULP));
            var state = 1;
            if !VECTORS && lid == CHAIN {
                while state > 0 {
                    ql_step(&q, &state, 0u, n, 0u, idx);
                }
            }
            for (var round = 0u; VECTORS; round++) {
                if lid < QROWS && round > 0u {
                    let slot = (round - 1u) & 1u;
                    if chased[slot] != 0u {
                        let l = hdr[2u * slot];
                        let m = hdr[2u * slot + 1u];
                        let cb = slot * 2u * NMAX;
                        for (var r = lid; r < n; r += QROWS) {
                            var carry = work[base + m * n + r];
                            for (var i1 = m; i1 > l; i1--) {
                                let i = i1 - 1u;
                                let at = base + i * n + r;
                                let zi = work[at];
                                let c = cs[cb + 2u * i];
                                let s = cs[cb + 2u * i + 1u];
                                work[at + n] = s * zi + c * carry;
                                carry = c * zi - s * carry;
                            }
                            work[base + l * n + r] = carry;
                        }
                    }
                }
                if lid == CHAIN {
                    let slot = round & 1u;
                    ql_step(&q, &state, 0u, n, slot, idx);
                    chased[slot] = u32(state > 0);
                }
                workgroupBarrier();
                if lid == 0u {
                    wg_go = chased[round & 1u];
                }
                if workgroupUniformLoad(&wg_go) == 0u {
                    break;
                }
            }
            sync();
            if lid == 0u {
                wg_flag = atomicLoad(&bad[0]) & 2u;
            }
            // Bit 1: QL did not converge; finish_matrix writes NaN outputs instead.
            failed = workgroupUniformLoad(&wg_flag) != 0u;

            // 5. Ranks, eigenvalues, signs; then v row by row.
            if !failed {
                for (var j = lid; j < n; j += WG) {
                    let dj = dd[j];
                    var rank = 0u;
                    for (var i = 0u; i < n; i++) {
                        let di = dd[i];
                        if di < dj || (di == dj && i < j) {
                            rank++;
                        }
                    }
                    w[w0 + rank] = ldexp(dj, ex);
                    if VECTORS {
                        let col = base + j * n;
                        var bv = abs(work[col]);
                        var sv = work[col];
                        for (var i = 1u; i < n; i++) {
                            let x = work[col + i];
                            if abs(x) > bv {
                                bv = abs(x);
                                sv = x;
                            }
                        }
                        cs[CR + rank] = R(j);
                        cs[CG + rank] = select(R(1.0), R(-1.0), sv < R(0.0));
                    }
                }
                if VECTORS {
                    workgroupBarrier();
                    for (var e = lid; e < nn; e += WG) {
                        let c = e % n;
                        let j = u32(cs[CR + c]);
                        v[a0 + e] = cs[CG + c] * work[base + j * n + e / n];
                    }
                }
            }
        }
        finish_matrix(mat, lid, WG, is_bad, failed);
        sync();
    }
}
