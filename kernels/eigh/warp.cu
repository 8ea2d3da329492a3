// Small orders (n <= 32): one group of G lanes per matrix (G a power of two, 32 / G matrices
// per warp), lane r holding row r of A in registers (R >= n values, static indices only).
//
// 1. Householder tridiagonalisation T = Q^T A Q (LAPACK dsytd2, lower): step k reflects
//    column k below the subdiagonal, H = I - tau v v^T; p = tau A v is each lane's dot of its
//    row with v, and the rank-2 update A -= v w^T + w v^T, w = p - (tau / 2)(p^T v) v, is
//    local to each row. v and w go through a few words of shared memory per group.
// 2. With vectors, Q is accumulated forwards (Q <- Q H_k, Q = H_0 H_1 ... H_{n-3}) in the
//    same pass, each lane its row of Q in shared memory: (Q v)_r is a local dot as well, so
//    the accumulation needs no extra communication.
// 3. Implicit QL on (d, e), spread over the group's lanes (ql.cuh), each lane rotating its
//    row of Q into the eigenvectors.
// 4. Ascending order by rank, eigenvalues scaled back, eigenvectors with the CPU's sign rule.
//
// References: LAPACK dsytd2 and dorg2r (Anderson et al., LAPACK Users' Guide, 3rd ed., 1999);
// EISPACK tql2 (Bowdler, Martin, Reinsch & Wilkinson, Numer. Math. 11 (1968) 293). The warp
// layout (matrix rows in registers, shuffles within the group) is ours.

template <typename T, int G>
__device__ __forceinline__ T mb_group_sum(T x, unsigned int mask) {
#pragma unroll
    for (int off = G / 2; off > 0; off /= 2) x += __shfl_xor_sync(mask, x, off, G);
    return x;
}

template <typename T, int G>
__device__ __forceinline__ T mb_group_max(T x, unsigned int mask) {
#pragma unroll
    for (int off = G / 2; off > 0; off /= 2) x = fmax(x, __shfl_xor_sync(mask, x, off, G));
    return x;
}

// One matrix's reduction by its group of G lanes: lane r's entries of the tridiagonal matrix
// (d[r], e[r]), the power-of-two scale applied, and whether the input held NaN or Inf (then
// the status word has the matrix and nothing else was computed).
template <typename T>
struct MbLaneReduction {
    T dr, er;
    int ex;
    bool bad;
};

// Steps 1 and 2 for the matrix `mat` (n >= 1): Householder tridiagonalisation by the group
// (lane r, mask its lanes), with VEC Q accumulated forwards in Z (R rows, stride R + 1); vs,
// ws: R words each.
template <typename T, int G, int R, bool VEC>
__device__ MbLaneReduction<T> mb_warp_tridiag(const MbEighArgs& p, const MbMatrix& mat, T* Z,
                                              T* vs, T* ws, int r, unsigned int mask) {
    constexpr int S = R + 1;
    const int n = mat.n;
    const T* a = (const T*)p.a + mat.a0;
    const bool owner = r < n;

    // Lower triangle into Z, coalesced; non-finite test and largest magnitude.
    bool bad_here = false;
    T amax = T(0);
    mb_load_lower(a, n, r, G, Z, S, false, &bad_here, &amax);
    const bool bad = __any_sync(mask, bad_here);
    amax = mb_group_max<T, G>(amax, mask);
    __syncwarp(mask);
    if (bad && r == 0) atomicMin((int*)p.status, mat.idx);
    // Exact power-of-two scaling into [0.5, 1): no overflow in the sums of squares.
    const int ex = (bad || amax == T(0)) ? 0 : mb_exponent(amax);
    T arow[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
        T x = T(0);
        if (owner && j < n && !bad) x = mb_scale2(j <= r ? Z[r * S + j] : Z[j * S + r], -ex);
        arow[j] = x;
    }
    __syncwarp(mask);
    if (VEC && r < R) {
#pragma unroll
        for (int j = 0; j < R; ++j) Z[r * S + j] = (j == r) ? T(1) : T(0);
    }
    __syncwarp(mask);

    T dr = T(0), er = T(0);  // this lane's entries of the tridiagonal matrix
    if (!bad) {
        for (int k = 0; k + 2 < n; ++k) {
            const T x = mb_pick<R>(arow, k);  // A[r][k]
            const T alpha = __shfl_sync(mask, x, k + 1, G);
            const T sig = mb_group_sum<T, G>((r > k + 1 && owner) ? x * x : T(0), mask);
            if (r == k) dr = x;
            if (sig == T(0)) {
                // Column already reduced: H = I.
                if (r == k) er = alpha;
                continue;
            }
            const T beta = -mb_copysign(mb_sqrt(alpha * alpha + sig), alpha);
            const T tau = (beta - alpha) / beta;
            const T inv = T(1) / (alpha - beta);
            const T vr = (r == k + 1) ? T(1) : ((r > k + 1 && owner) ? x * inv : T(0));
            if (r == k) er = beta;
            if (r < R) vs[r] = vr;
            __syncwarp(mask);
            T pr = T(0), qv = T(0);
            if (r < R) {
#pragma unroll
                for (int j = 0; j < R; ++j) {
                    const T vj = vs[j];
                    pr += arow[j] * vj;
                    if (VEC) qv += Z[r * S + j] * vj;
                }
            }
            pr = (r > k && owner) ? tau * pr : T(0);
            const T kk = T(-0.5) * tau * mb_group_sum<T, G>(pr * vr, mask);
            const T wr = pr + kk * vr;
            if (r < R) ws[r] = wr;
            __syncwarp(mask);
            if (r < R) {
                const T tq = tau * qv;
#pragma unroll
                for (int j = 0; j < R; ++j) {
                    const T vj = vs[j];
                    arow[j] -= vr * ws[j] + wr * vj;
                    if (VEC) Z[r * S + j] -= tq * vj;
                }
            }
            __syncwarp(mask);
        }
        // The last 2 x 2 block is already tridiagonal.
        if (owner && r + 2 >= n) {
            dr = mb_pick<R>(arow, r);
            er = (r + 1 < n) ? mb_pick<R>(arow, r + 1) : T(0);
        }
    }
    MbLaneReduction<T> out;
    out.dr = dr;
    out.er = er;
    out.ex = ex;
    out.bad = bad;
    return out;
}

// Threads per block of the warp and chains classes (the host's `WARP_BLOCK_THREADS`; the NVRTC
// test checks the two agree).
#define MB_WARP_THREADS 128

// Words of shared memory per group: Z (R rows, stride R + 1), then v and w (R each). The host's
// `warp_shared_bytes` gives MB_WARP_THREADS / G groups as many (checked by the NVRTC test).
__host__ __device__ constexpr int mb_warp_group_words(int R) { return R * (R + 1) + 2 * R; }

template <typename T, int G, int R, bool VEC>
__device__ void mb_eigh_warp(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    constexpr int S = R + 1;
    const int lane = threadIdx.x & 31;
    const int r = lane & (G - 1);
    const int gbase = lane & ~(G - 1);
    const unsigned int mask = G == 32 ? 0xffffffffu : (((1u << G) - 1u) << gbase);
    const int gid = threadIdx.x / G;
    T* Z = (T*)mb_smem + gid * mb_warp_group_words(R);
    T* vs = Z + R * S;
    T* ws = vs + R;
    const MbMatrix mat = mb_matrix(p, blockIdx.x * (blockDim.x / G) + gid);
    const int n = mat.n;
    if (n == 0) return;  // the whole group: a padding group or an empty matrix
    const bool owner = r < n;
    const MbLaneReduction<T> red = mb_warp_tridiag<T, G, R, VEC>(p, mat, Z, vs, ws, r, mask);
    const bool bad = red.bad;
    const int ex = red.ex;
    const T dr = red.dr, er = red.er;
    MbLaneTridiag<T, 1, G> tri;
    tri.d[0] = dr;
    tri.e[0] = er;
    tri.r = r;
    tri.gbase = gbase;
    tri.mask = mask;
    bool failed = false;
    if (!bad) {
        // Short chases (n <= 16) take the nested-loop QL; the 32-lane classes read ahead.
        T* zrow = (VEC && owner) ? Z + r * S : (T*)0;
        const bool converged = G == 32 ? mb_tridiag_ql<T, VEC, true>(tri, n, zrow)
                                       : mb_tridiag_ql_nested<T, 1, G, VEC>(tri, n, zrow);
        failed = __any_sync(mask, !converged);
        if (failed && r == 0) atomicMin((int*)p.status + 1, mat.idx);
    }
    // A matrix with NaN/Inf input or an unconverged iteration gets NaN outputs, in place.
    const bool nan_out = bad || failed;
    int rank = mb_rank<T, 1, G>(tri, r, n);
    if (nan_out) rank = r;
    __syncwarp(mask);
    if (r == 0) mb_set_info(p, mat.idx, mb_info_code(bad, failed));
    if (owner) {
        ((T*)p.w)[mat.w0 + rank] = nan_out ? mb_nan(T(0)) : mb_scale2(tri.d[0], ex);
        if (VEC) mb_store_vector<T>(Z, S, n, r, rank, (T*)p.v + mat.a0, nan_out);
    }
}

// One entry point; the host (backends/cuda/eigh_kernel.rs) compiles each size class and dtype
// as its own program ending in one of these lines, e.g.
// MB_EIGH_WARP_KERNEL(eigh_warp_f64_g16_r12_v, double, 16, 12, true). The classes (G, R):
// (2, 2), (4, 4), (8, 8), (16, 12), (16, 16), (32, 24), (32, 32).
#define MB_EIGH_WARP_KERNEL(NAME, T, G, R, VEC)                                              \
    extern "C" __global__ void __launch_bounds__(MB_WARP_THREADS) NAME(MbEighArgs p) {       \
        mb_eigh_warp<T, G, R, VEC>(p);                                                       \
    }
