// The tridiagonal eigh shader in the subgroup layout (issue 26 step 4): one matrix per
// subgroup, each invocation's rows of A and of Q in its own arrays, everything the rows share
// exchanged by subgroup operations (subgroupShuffle, subgroupAdd, subgroupMax, subgroupMin,
// subgroupAny), no workgroup memory and no barrier. The structure of the CUDA warp classes
// (kernels/eigh/warp.cu, kernels/eigh/ql.cuh), whose warp is a subgroup here; workgroup
// memory is what held the other wgpu layouts back on NVIDIA's Vulkan driver (about 48 KiB per
// SM in all, docs/architecture.md).
//
// The subgroup size `sg` is read at run time (32 on NVIDIA, 8-64 elsewhere). Lane L holds rows
// L, L + sg, ..., up to RPI of them (chunk c: row L + c sg); the host sizes RPI for the
// adapter's smallest subgroup, and a subgroup too small for the matrix anyway marks it not
// converged rather than computing garbage. d and e of the tridiagonal matrix are spread the
// same way (element i in chunk i / sg of lane i % sg), read by shuffles, written by the owner.
// Every loop bound is the same in every lane of a subgroup (one matrix per subgroup), so the
// subgroup operations always run with the whole subgroup active.
//
// 1. Input: lane L reads its rows (lower triangle: (r, j) for j <= r, (j, r) above); NaN/Inf
//    test; exact power-of-two scaling into [0.5, 1) by the subgroup's largest magnitude.
// 2. Householder tridiagonalisation (LAPACK dsytd2, lower), as warp.cu: per step alpha by a
//    shuffle, sigma by subgroupAdd, v gathered into every lane (v_j = A[j][k] / (alpha - beta)),
//    p = tau A v row by row, w = p - (tau / 2)(p^T v) v, the rank-2 update of each own row;
//    with vectors, Q accumulated forwards (Q <- Q H_k) by each lane's own rows.
// 3. Implicit QL (EISPACK tql2 in JAMA's form, ql.cuh's mb_tridiag_ql_nested): every lane
//    computes the same rotations, reading d and e by shuffles, and applies each to its rows of
//    Q.
// 4. Ranks by shuffles; per column t of Q the sign of its first largest entry (subgroupMax,
//    subgroupMin); each lane writes its rows of v with the columns permuted and signed.
//
// References: LAPACK dsytd2 (Anderson et al., LAPACK Users' Guide, 3rd ed., 1999); EISPACK
// tql2 (Bowdler, Martin, Reinsch & Wilkinson, Numer. Math. 11 (1968) 293).
//
// WGSL's subgroup built-ins need no `enable` directive under naga (which rejects
// `enable subgroups;` as unimplemented); the device must have been created with
// Features::SUBGROUP, which the host checks before choosing this shader.
//
// The host prepends alias R and the constants NMAX, RPI, WG, VECTORS, ULP, RSQRT_ULP,
// SAFE_MIN and FINITE_MAX, then shaders/eigh/common.wgsl.

// sqrt(x^2 + y^2): directly where x^2 + y^2 neither underflows nor overflows, else scaled
// (ql.wgsl's hypot; that file is not included, since it declares workgroup memory).
fn sg_hypot(x: R, y: R) -> R {
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

// Element i of a vector spread over the subgroup, in every lane (i the same in all of them).
fn spread_get(c: ptr<function, array<R, RPI>>, i: u32, sg: u32) -> R {
    return subgroupShuffle((*c)[i / sg], i % sg);
}

// Sets element i of a spread vector (only its owner lane stores).
fn spread_set(c: ptr<function, array<R, RPI>>, i: u32, x: R, lane: u32, sg: u32) {
    if i % sg == lane {
        (*c)[i / sg] = x;
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_size) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // Subgroups of a one-dimensional workgroup are its consecutive runs of sg invocations.
    let per_wg = WG / sg;
    let first = wid.x * per_wg + lid / sg;
    let stride = nwg.x * per_wg;
    var arow: array<array<R, NMAX>, RPI>;
    var qrow: array<array<R, NMAX>, RPI>;
    var dv: array<R, RPI>;
    var ev: array<R, RPI>;
    // v of the current reflector, the same in every lane.
    var vfull: array<R, NMAX>;
    for (var g = first; g < params.count; g += stride) {
        let mat = matrix_at(g);
        let idx = mat.idx;
        let n = mat.n;
        let a0 = mat.a0;
        let w0 = mat.w0;
        // A subgroup smaller than the host assumed cannot hold the matrix: report, not guess.
        let fits = sg * RPI >= n;

        // 1. Input.
        var bad_here = false;
        var big = R(0.0);
        for (var c = 0u; c < RPI; c++) {
            let row = lane + c * sg;
            for (var j = 0u; j < NMAX; j++) {
                var x = R(0.0);
                if fits && row < n && j < n {
                    x = a[a0 + max(row, j) * n + min(row, j)];
                    if non_finite(x) {
                        bad_here = true;
                        x = R(0.0);
                    }
                    big = max(big, abs(x));
                }
                arow[c][j] = x;
                qrow[c][j] = select(R(0.0), R(1.0), j == row);
            }
            dv[c] = R(0.0);
            ev[c] = R(0.0);
        }
        let is_bad = subgroupAny(bad_here);
        let anrm = subgroupMax(big);
        if is_bad && lane == 0u {
            atomicMax(&status[0], ~idx);
        }
        var ex = 0i;
        if !is_bad && anrm > R(0.0) {
            ex = exponent(anrm);
            for (var c = 0u; c < RPI; c++) {
                for (var j = 0u; j < NMAX; j++) {
                    arow[c][j] = ldexp(arow[c][j], -ex);
                }
            }
        }
        let live = fits && !is_bad && n > 0u;

        // 2. Tridiagonalisation, Q accumulated forwards.
        for (var k = 0u; live && k + 2u < n; k++) {
            // x_c = A[row][k]; alpha = A[k + 1][k]; sigma = sum of A[i][k]^2, i > k + 1.
            var xs: array<R, RPI>;
            var sq = R(0.0);
            for (var c = 0u; c < RPI; c++) {
                let row = lane + c * sg;
                xs[c] = arow[c][k];
                if row > k + 1u && row < n {
                    sq += xs[c] * xs[c];
                }
            }
            let alpha = spread_get(&xs, k + 1u, sg);
            let sig = subgroupAdd(sq);
            spread_set(&dv, k, spread_get(&xs, k, sg), lane, sg);
            if sig == R(0.0) {
                // Column already reduced: H = I.
                spread_set(&ev, k, alpha, lane, sg);
                continue;
            }
            var beta = sqrt(alpha * alpha + sig);
            if alpha >= R(0.0) {
                beta = -beta;
            }
            let tau = (beta - alpha) / beta;
            let inv = R(1.0) / (alpha - beta);
            spread_set(&ev, k, beta, lane, sg);
            var vr: array<R, RPI>;
            for (var c = 0u; c < RPI; c++) {
                let row = lane + c * sg;
                vr[c] = select(select(R(0.0), xs[c] * inv, row > k + 1u && row < n), R(1.0), row == k + 1u);
            }
            // v into every lane; p = tau A v and (Q v) per own row.
            var pr: array<R, RPI>;
            var qv: array<R, RPI>;
            for (var c = 0u; c < RPI; c++) {
                pr[c] = R(0.0);
                qv[c] = R(0.0);
            }
            for (var j = k + 1u; j < n; j++) {
                let vj = spread_get(&vr, j, sg);
                vfull[j] = vj;
                for (var c = 0u; c < RPI; c++) {
                    pr[c] += arow[c][j] * vj;
                    if VECTORS {
                        qv[c] += qrow[c][j] * vj;
                    }
                }
            }
            var pv = R(0.0);
            for (var c = 0u; c < RPI; c++) {
                let row = lane + c * sg;
                pr[c] = select(R(0.0), tau * pr[c], row > k && row < n);
                pv += pr[c] * vr[c];
            }
            let kk = R(-0.5) * tau * subgroupAdd(pv);
            var wr: array<R, RPI>;
            for (var c = 0u; c < RPI; c++) {
                wr[c] = pr[c] + kk * vr[c];
            }
            // A -= v w^T + w v^T on own rows (columns above k), Q -= tau (Q v) v^T.
            for (var j = k + 1u; j < n; j++) {
                let wj = spread_get(&wr, j, sg);
                let vj = vfull[j];
                for (var c = 0u; c < RPI; c++) {
                    arow[c][j] -= vr[c] * wj + wr[c] * vj;
                    if VECTORS {
                        qrow[c][j] -= tau * qv[c] * vj;
                    }
                }
            }
        }
        // The last 2 x 2 block (or the whole of a matrix of order 1 or 2): already tridiagonal.
        if live {
            for (var c = 0u; c < RPI; c++) {
                let row = lane + c * sg;
                if row < n && row + 2u >= n {
                    dv[c] = arow[c][row];
                    ev[c] = select(R(0.0), arow[c][min(row + 1u, NMAX - 1u)], row + 1u < n);
                }
            }
        }

        // 3. QL (tql2), every lane computing the same rotations.
        var failed = !fits && !is_bad && n > 0u;
        if live {
            var tst1 = SAFE_MIN / (ULP * ULP);
            var f = R(0.0);
            for (var l = 0u; l < n; l++) {
                tst1 = max(tst1, abs(spread_get(&dv, l, sg)) + abs(spread_get(&ev, l, sg)));
                let thr = ULP * tst1;
                // The first m >= l with e[m] negligible, or n - 1.
                var cand = n - 1u;
                for (var c = 0u; c < RPI; c++) {
                    let i = lane + c * sg;
                    if i >= l && i + 1u < n && abs(ev[c]) <= thr {
                        cand = min(cand, i);
                    }
                }
                let m = subgroupMin(cand);
                if m > l {
                    var iter = 0u;
                    loop {
                        iter++;
                        if iter > 30u {
                            failed = true;
                            break;
                        }
                        // The shift from the leading 2 x 2 block.
                        let gl = spread_get(&dv, l, sg);
                        let el = spread_get(&ev, l, sg);
                        let el1 = spread_get(&ev, l + 1u, sg);
                        let p0 = (spread_get(&dv, l + 1u, sg) - gl) / (R(2.0) * el);
                        var rr = abs(p0);
                        if rr < RSQRT_ULP {
                            rr = sqrt(p0 * p0 + R(1.0));
                        }
                        if p0 < R(0.0) {
                            rr = -rr;
                        }
                        let dl = el / (p0 + rr);
                        let dl1 = el * (p0 + rr);
                        let h = gl - dl;
                        for (var c = 0u; c < RPI; c++) {
                            let i = lane + c * sg;
                            if i == l {
                                dv[c] = dl;
                            } else if i == l + 1u {
                                dv[c] = dl1;
                            } else if i > l + 1u && i < n {
                                dv[c] -= h;
                            }
                        }
                        f += h;
                        // The bulge chase, from m - 1 down to l: step i reads d[i], e[i] and
                        // writes d[i + 1], e[i + 1], so every read comes before its write.
                        var p = spread_get(&dv, m, sg);
                        var cc = R(1.0);
                        var c2 = R(1.0);
                        var c3 = R(1.0);
                        var s = R(0.0);
                        var s2 = R(0.0);
                        var carry: array<R, RPI>;
                        for (var c = 0u; c < RPI; c++) {
                            carry[c] = qrow[c][m];
                        }
                        for (var i1 = m; i1 > l; i1--) {
                            let i = i1 - 1u;
                            let ei = spread_get(&ev, i, sg);
                            let di = spread_get(&dv, i, sg);
                            c3 = c2;
                            c2 = cc;
                            s2 = s;
                            let gi = cc * ei;
                            let hi = cc * p;
                            let tt = fma(p, p, ei * ei);
                            var u = R(0.0);
                            var ri = R(0.0);
                            if tt >= SAFE_MIN / ULP && tt <= ULP / SAFE_MIN {
                                u = inverseSqrt(tt);
                                ri = tt * u;
                            } else {
                                ri = sg_hypot(p, ei);
                                u = R(1.0) / ri;
                            }
                            spread_set(&ev, i + 1u, s * ri, lane, sg);
                            cc = p * u;
                            s = ei * u;
                            p = fma(p, di, -(ei * gi)) * u;
                            spread_set(&dv, i + 1u, hi + s * fma(cc, gi, s * di), lane, sg);
                            if VECTORS {
                                for (var c = 0u; c < RPI; c++) {
                                    let zi = qrow[c][i];
                                    qrow[c][i + 1u] = s * zi + cc * carry[c];
                                    carry[c] = cc * zi - s * carry[c];
                                }
                            }
                        }
                        if VECTORS {
                            for (var c = 0u; c < RPI; c++) {
                                qrow[c][l] = carry[c];
                            }
                        }
                        p = -s * s2 * c3 * el1 * el / dl1;
                        spread_set(&ev, l, s * p, lane, sg);
                        spread_set(&dv, l, cc * p, lane, sg);
                        if abs(s * p) <= ULP * tst1 {
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                spread_set(&dv, l, spread_get(&dv, l, sg) + f, lane, sg);
                spread_set(&ev, l, R(0.0), lane, sg);
            }
        }
        if failed && lane == 0u {
            atomicMax(&status[1], ~idx);
        }
        let ok = live && !failed;

        // 4. Ranks, eigenvalues, then the vectors.
        var rank: array<u32, RPI>;
        for (var c = 0u; c < RPI; c++) {
            rank[c] = 0u;
        }
        if ok {
            for (var j = 0u; j < n; j++) {
                let dj = spread_get(&dv, j, sg);
                for (var c = 0u; c < RPI; c++) {
                    let t = lane + c * sg;
                    if dj < dv[c] || (dj == dv[c] && j < t) {
                        rank[c]++;
                    }
                }
            }
            for (var c = 0u; c < RPI; c++) {
                let t = lane + c * sg;
                if t < n {
                    w[w0 + rank[c]] = ldexp(dv[c], ex);
                }
            }
        }
        if VECTORS && ok {
            for (var t = 0u; t < n; t++) {
                // Column t of Q: the sign of its first largest entry, then its place.
                var lmax = R(0.0);
                for (var c = 0u; c < RPI; c++) {
                    let row = lane + c * sg;
                    if row < n {
                        lmax = max(lmax, abs(qrow[c][t]));
                    }
                }
                let cmax = subgroupMax(lmax);
                var lfirst = n;
                for (var c = 0u; c < RPI; c++) {
                    let row = lane + c * sg;
                    if row < n && abs(qrow[c][t]) == cmax {
                        lfirst = min(lfirst, row);
                    }
                }
                let who = subgroupMin(lfirst);
                var pick = R(0.0);
                for (var c = 0u; c < RPI; c++) {
                    if c == who / sg {
                        pick = qrow[c][t];
                    }
                }
                let sign = select(R(1.0), R(-1.0), subgroupShuffle(pick, who % sg) < R(0.0));
                var own_rank = 0u;
                for (var c = 0u; c < RPI; c++) {
                    if c == t / sg {
                        own_rank = rank[c];
                    }
                }
                let rt = subgroupShuffle(own_rank, t % sg);
                for (var c = 0u; c < RPI; c++) {
                    let row = lane + c * sg;
                    if row < n {
                        v[a0 + row * n + rt] = sign * qrow[c][t];
                    }
                }
            }
        }
        finish_matrix(mat, lane, sg, is_bad, failed);
    }
}
