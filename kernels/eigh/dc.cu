// Orders 33 to 4096 (the size classes give it those above the block and split classes), many
// matrices in flight: divide and conquer. Every matrix's working storage is in global memory
// (the plan's workspace, a slot per matrix of a wave, and with vectors the matrix's own slot of
// V), so a block needs only small shared memory and several blocks share a multiprocessor,
// where the block classes hold A in shared memory and fit one block per SM from n = 128 (f64).
// Only vectors of the order's length sit in shared memory (the reduce step's v and w, the
// solve step's 18 per-order vectors), and where they would not fit a block (the solve step from
// f64 n ~ 1860 / f32 ~ 3110 with 227 KiB; smaller devices earlier) the host sets a layout bit
// (MbEighArgs::layout) and they live in the slot instead; a slot holds one n x n buffer.
// Steps, a launch each, one block of MB_DC_THREADS per matrix unless said:
//
// 1. `reduce`: Householder tridiagonalisation of the scaled A, blocked as LAPACK dsytrd/dlatrd
//    (lower): panels of MB_DC_NB columns, each column updated by the panel's earlier
//    reflectors, the reflector's w = tau (A v - V W^T v - W V^T v) from one matrix-vector
//    product (a warp per row: row reads are coalesced), and after each panel the trailing
//    matrix takes the rank-2k update A -= V W^T + W V^T as a shared-memory tiled GEMM (both
//    triangles: the matrix-vector products read rows, which needs the full matrix; twice the
//    flops of dsyr2k's one triangle, in the GEMM part). Why a
//    block per matrix and panels rather than a warp per matrix: the rank-2 updates of dsytd2
//    read and write the whole trailing matrix once per column (n^3 words through L2); the
//    panel form does that once per MB_DC_NB columns, and the half of the flops left in the
//    matrix-vector products is spread over 8 warps instead of serialising on one. With
//    vectors A is reduced in place in the matrix's V slot (the reflectors stay in its lower
//    triangle, v_{k+1} = 1 stored), so the workspace holds no copy of A.
// 2. Values only, `values`, one lane per matrix (32 per block): implicit QL without vectors
//    (ql.cuh) on (d, e) in the slot, then the eigenvalues sorted, scaled back and written.
// 3. With vectors, `dc`: Cuppen's divide and conquer on (d, e) as LAPACK dstedc/dlaed0-dlaed4:
//    the tridiagonal torn into 2^L leaves of at most MB_DC_LEAF rows (d of both rows at each
//    tear less |e|), each leaf solved by a warp with ql.cuh's QL (lane r rotating row r of the
//    leaf's block of Q), then the leaves merged pairwise, level by level. A merge of two
//    eigensystems (D1, Q1), (D2, Q2) with coupling beta solves D + rho z z^T: z from the last
//    row of Q1 and the first of Q2 (dlaed1), deflation of small z components and of close
//    pairs by a Givens rotation (dlaed2, tol = 8 eps max(|d|, |z|)), each root of the secular
//    equation by one thread in coordinates shifted to its nearer pole (as dlaed4: a two-pole
//    rational model, here safeguarded by bisection on a bracket), z recomputed from the roots
//    by Gu and Eisenstat's (Loewner) formula so the vectors are orthogonal (dlaed3), and the
//    new vectors Q [u_1 .. u_K] as a tiled GEMM whose right factor u_ij = zhat_i / (d_i -
//    lambda_j) / ||.|| is formed in the tile loads. Q is merged in place, a row panel of
//    MB_DC_TM rows at a time copied to the slot's panel storage first (a row of the product
//    needs only the same row of the old Q), so a slot holds one n x n buffer.
// 4. `back`: the back-transformation Q_A = H_0 ... H_{n-3} Q_T in blocks of MB_DC_NB
//    reflectors as I - V T V^T (LAPACK dlarft, forward, columnwise; dormtr/dlarfb): Y = V^T Q,
//    Y = T Y, Q -= V Y, a thread per column of Q; then the eigenvalues in ascending order by
//    rank, scaling undone and each vector written with the CPU's sign rule.
//
// Waves: the workspace holds `team` slots (MbEighArgs::team); the host queues the steps once
// per wave of `team` matrices, `phase` the wave's index.
//
// References: LAPACK dsytrd, dlatrd, dlarft, dlarfb, dstedc, dlaed0-dlaed4; J. J. M. Cuppen,
// Numer. Math. 36 (1981); M. Gu and S. C. Eisenstat, SIAM J. Matrix Anal. Appl. 16 (1995);
// R.-C. Li, "Solving secular equations stably and efficiently" (LAPACK Working Note 89). The
// GPU layout is ours.

// Threads per block of the reduce, dc and back steps (8 warps).
#define MB_DC_THREADS 256
// Panel width of the reduction and reflectors per block of the back-transformation.
#define MB_DC_NB 32
// Largest leaf of the divide and conquer (a warp, a lane per row).
#define MB_DC_LEAF 32
// Matrices per block of the values step (a lane each).
#define MB_DC_VALUES_PER_BLOCK 32
// GEMM tiles of the merge: MB_DC_TM x MB_DC_TM outputs, MB_DC_TK terms per load.
#define MB_DC_TM 64
#define MB_DC_TK 16
// Slot states.
#define MB_DC_RUNNING 0
#define MB_DC_BAD 1
#define MB_DC_FAILED 2
#define MB_DC_EMPTY 3
// Ints per slot: state, exponent of the scaling (two spare).
#define MB_DC_INTS 4
// Layout bits (MbEighArgs::layout): the reduce / solve step keeps its per-order vectors in the
// slot (global memory) instead of shared memory. The host sets a bit where that step's shared
// memory with the vectors would not fit a block (large orders), or for every step when forced
// (CudaEighAlgorithm::DivideConquerGlobal, to test and measure the layout at small orders).
#define MB_DC_REDUCE_GLOBAL 1
#define MB_DC_SOLVE_GLOBAL 2
// Words of T per order of those vectors in a slot: the solve step's 11 vectors of T and 7 of
// ints (an int per word of T, for simple offsets); the reduce step's two vectors reuse the
// first two (the steps run one after the other).
#define MB_DC_GLOBAL_VECTORS 18

__host__ __device__ constexpr int mb_dc_threads() { return MB_DC_THREADS; }

// The merge's row panel (MB_DC_TM rows of the block) lives in the reduction's panel storage.
static_assert(MB_DC_TM <= 2 * MB_DC_NB, "the merge's row panel must fit the panel storage");

// Words (of T) of one matrix's slot for launch order nmax and layout bits: Q (values only: the
// copy of A being reduced; with vectors A is reduced in place in the output V, and Q holds the
// tridiagonal matrix's eigenvectors, merged in place), the panel's V and W (nmax x NB each; the
// merge's row panel reuses them), d, e and tau, and with either layout bit the per-order
// vectors (the host's `dc_slot_words`).
__host__ __device__ constexpr u64 mb_dc_slot_words(u64 nmax, int layout) {
    return nmax * nmax + 2 * nmax * MB_DC_NB + 3 * nmax +
           (layout != 0 ? (u64)MB_DC_GLOBAL_VECTORS * nmax : 0);
}

// Bytes of a launch's workspace: `slots` slots, then MB_DC_INTS ints per slot (the host's
// `dc_workspace_bytes`).
template <typename T>
__host__ __device__ constexpr u64 mb_dc_workspace_bytes(u64 slots, u64 nmax, int layout) {
    return slots * mb_dc_slot_words(nmax, layout) * sizeof(T) + slots * MB_DC_INTS * 4;
}

// Shared memory of the reduce step: v and w (nmax each, unless MB_DC_REDUCE_GLOBAL), 64
// reduction partials, 2 NB panel products, and the trailing update's four 32 x (NB + 1) tiles.
template <typename T>
__host__ __device__ constexpr size_t mb_dc_reduce_shared_bytes(int nmax, int layout) {
    return ((layout & MB_DC_REDUCE_GLOBAL ? 0 : 2 * (size_t)nmax) + 64 + 2 * MB_DC_NB +
            4 * 32 * (MB_DC_NB + 1)) *
           sizeof(T);
}

// Shared memory of the dc step: 11 vectors of T and 7 of ints (nmax each, unless
// MB_DC_SOLVE_GLOBAL), the GEMM's two tiles, 64 partials and 8 ints (see MbDcShared).
template <typename T>
__host__ __device__ constexpr size_t mb_dc_merge_shared_bytes(int nmax, int layout) {
    return ((layout & MB_DC_SOLVE_GLOBAL ? 0 : 11 * (size_t)nmax) + 2 * MB_DC_TK * MB_DC_TM + 64) *
               sizeof(T) +
           ((layout & MB_DC_SOLVE_GLOBAL ? 0 : 7 * (size_t)nmax) + 8) * sizeof(int);
}

// Shared memory of the back step: the triangular factor T and the Gram matrix V^T V of a
// block of reflectors, their taus.
template <typename T>
__host__ __device__ constexpr size_t mb_dc_back_shared_bytes() {
    return (2 * MB_DC_NB * MB_DC_NB + MB_DC_NB) * sizeof(T);
}

// One matrix's slot (slot `slot` of the launch's `team`).
template <typename T>
struct MbDcSlot {
    T* q;      // Q (values only: the copy of A)
    T* pv;     // panel V, nmax x NB row-major (the merge: its row panel, with pw)
    T* pw;     // panel W
    T* d;
    T* e;
    T* tau;
    T* gv;     // the per-order vectors of the steps with a layout bit (0 without)
    int* ints;
};

template <typename T>
__device__ __forceinline__ MbDcSlot<T> mb_dc_slot(const MbEighArgs& p, int slot) {
    const u64 nm = (u64)p.nmax;
    const u64 words = mb_dc_slot_words(nm, p.layout);
    T* base = (T*)p.gwork + (u64)slot * words;
    MbDcSlot<T> s;
    s.q = base;
    s.pv = base + nm * nm;
    s.pw = s.pv + nm * MB_DC_NB;
    s.d = s.pw + nm * MB_DC_NB;
    s.e = s.d + nm;
    s.tau = s.e + nm;
    s.gv = p.layout != 0 ? s.tau + nm : (T*)0;
    s.ints = (int*)((T*)p.gwork + (u64)p.team * words) + MB_DC_INTS * slot;
    return s;
}

// The launch position of this block's matrix (or of lane `sub` of a values block).
__device__ __forceinline__ int mb_dc_pos(const MbEighArgs& p, int slot) {
    return p.phase * p.team + slot;
}

template <typename T>
__device__ __forceinline__ T mb_dc_warp_sum(T x) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
    return x;
}

// Step 1 for matrix `mat` (n >= 1): A (n x n, both triangles, row-major) at `A`, reduced in
// place; d, e, tau into the slot. Shared: vs, ws (n each), red (64), cc (2 NB), tiles.
template <typename T, bool VEC>
__device__ void mb_dc_reduce(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int slot = blockIdx.x;
    const MbMatrix mat = mb_matrix(p, mb_dc_pos(p, slot));
    const MbDcSlot<T> ws = mb_dc_slot<T>(p, slot);
    const int n = mat.n;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int lane = tid & 31, warp = tid >> 5, warps = nt >> 5;
    if (n == 0) {
        if (tid == 0) ws.ints[0] = MB_DC_EMPTY;
        return;
    }
    // v and w in the slot where they would not fit shared memory beside the tiles.
    const bool global = (p.layout & MB_DC_REDUCE_GLOBAL) != 0;
    T* vs = global ? ws.gv : (T*)mb_smem;
    T* wv = vs + p.nmax;
    T* red = global ? (T*)mb_smem : wv + p.nmax;
    T* cc = red + 64;  // W^T v (NB), then V^T v (NB)
    T* tiles = cc + 2 * MB_DC_NB;
    const int TS = MB_DC_NB + 1;
    T* A = VEC ? (T*)p.v + mat.a0 : ws.q;
    T* V = ws.pv;
    T* W = ws.pw;
    const T* a = (const T*)p.a + mat.a0;

    bool bad_here = false;
    T amax = T(0);
    mb_load_lower(a, n, tid, nt, A, n, true, &bad_here, &amax);
    const bool bad = __syncthreads_or(bad_here);
    amax = mb_block_max(amax, red, 0);
    if (bad) {
        if (tid == 0) {
            atomicMin((int*)p.status, mat.idx);
            mb_set_info(p, mat.idx, MB_EIGH_NON_FINITE);
            ws.ints[0] = MB_DC_BAD;
        }
        for (int i = tid; i < n; i += nt) ((T*)p.w)[mat.w0 + i] = mb_nan(T(0));
        if (VEC)
            for (int e = tid; e < n * n; e += nt) A[e] = mb_nan(T(0));
        return;
    }
    const int ex = amax == T(0) ? 0 : mb_exponent(amax);
    if (ex != 0)
        for (int e = tid; e < n * n; e += nt) A[e] = mb_scale2(A[e], -ex);
    __syncthreads();

    int par = 1;
    for (int k0 = 0; k0 < n; k0 += MB_DC_NB) {
        const int nb = min(MB_DC_NB, n - k0);
        for (int jj = 0; jj < nb; ++jj) {
            const int k = k0 + jj;
            // Column k (rows k..n-1) takes the panel's earlier reflectors.
            for (int r = k + tid; r < n; r += nt) {
                T x = A[(u64)r * n + k];
                for (int q = 0; q < jj; ++q)
                    x -= V[r * MB_DC_NB + q] * W[k * MB_DC_NB + q] +
                         W[r * MB_DC_NB + q] * V[k * MB_DC_NB + q];
                A[(u64)r * n + k] = x;
            }
            __syncthreads();
            if (k + 2 >= n) {
                // The last two columns: no reflector.
                if (tid == 0) {
                    ws.d[k] = A[(u64)k * n + k];
                    ws.e[k] = k + 1 < n ? A[(u64)(k + 1) * n + k] : T(0);
                    ws.tau[k] = T(0);
                }
                for (int r = tid; r < n; r += nt) {
                    V[r * MB_DC_NB + jj] = T(0);
                    W[r * MB_DC_NB + jj] = T(0);
                }
                __syncthreads();
                continue;
            }
            // The reflector of column k (LAPACK dlarfg): alpha read before the sum's barrier,
            // since the thread of row k + 1 then stores v_{k+1} = 1 over it.
            const T alpha = A[(u64)(k + 1) * n + k];
            T sq = T(0);
            for (int r = k + 2 + tid; r < n; r += nt) {
                const T x = A[(u64)r * n + k];
                sq += x * x;
            }
            const T sig = mb_block_sum(sq, red, par);
            par ^= 1;
            T tau = T(0), beta = alpha, inv = T(0);
            if (sig != T(0)) {
                beta = -mb_copysign(mb_sqrt(alpha * alpha + sig), alpha);
                tau = (beta - alpha) / beta;
                inv = T(1) / (alpha - beta);
            }
            for (int r = tid; r < n; r += nt) {
                const T vr = r == k + 1 ? T(1) : (r > k + 1 ? A[(u64)r * n + k] * inv : T(0));
                vs[r] = vr;
                V[r * MB_DC_NB + jj] = vr;
                if (r > k) A[(u64)r * n + k] = vr;
            }
            if (tid == 0) {
                ws.d[k] = A[(u64)k * n + k];
                ws.e[k] = beta;
                ws.tau[k] = tau;
            }
            __syncthreads();
            // W^T v and V^T v over the panel's earlier columns, a warp per product.
            for (int q = warp; q < 2 * jj; q += warps) {
                const T* col = q < jj ? W + q : V + (q - jj);
                T s = T(0);
                for (int r = k + 1 + lane; r < n; r += 32) s += col[r * MB_DC_NB] * vs[r];
                s = mb_dc_warp_sum(s);
                if (lane == 0) cc[q < jj ? q : MB_DC_NB + q - jj] = s;
            }
            __syncthreads();
            // w = tau (A22 v - V (W^T v) - W (V^T v)), a warp per row of A22 (as at the
            // panel's start: the panel's later columns are not updated yet).
            for (int r = k + 1 + warp; r < n; r += warps) {
                const T* row = A + (u64)r * n;
                T s = T(0);
                for (int c = k + 1 + lane; c < n; c += 32) s += row[c] * vs[c];
                s = mb_dc_warp_sum(s);
                if (lane == 0) {
                    for (int q = 0; q < jj; ++q)
                        s -= V[r * MB_DC_NB + q] * cc[q] + W[r * MB_DC_NB + q] * cc[MB_DC_NB + q];
                    wv[r] = tau * s;
                }
            }
            __syncthreads();
            T pw = T(0);
            for (int r = k + 1 + tid; r < n; r += nt) pw += wv[r] * vs[r];
            const T kk = T(-0.5) * tau * mb_block_sum(pw, red, par);
            par ^= 1;
            for (int r = tid; r < n; r += nt)
                W[r * MB_DC_NB + jj] = r > k ? wv[r] + kk * vs[r] : T(0);
            __syncthreads();
        }
        // The trailing matrix (rows and columns from k1, both triangles): A -= V W^T + W V^T,
        // 32 x 32 tiles with the panel's rows staged in shared memory.
        const int k1 = k0 + nb;
        if (k1 >= n) break;
        const int m = n - k1, tiles_1d = (m + 31) / 32;
        T* vr = tiles;
        T* wr = vr + 32 * TS;
        T* vc = wr + 32 * TS;
        T* wc = vc + 32 * TS;
        for (int t = 0; t < tiles_1d * tiles_1d; ++t) {
            const int r0 = k1 + (t / tiles_1d) * 32, c0 = k1 + (t % tiles_1d) * 32;
            for (int x = tid; x < 32 * nb; x += nt) {
                const int i = x / nb, q = x - i * nb;
                const bool rin = r0 + i < n, cin = c0 + i < n;
                vr[i * TS + q] = rin ? V[(r0 + i) * MB_DC_NB + q] : T(0);
                wr[i * TS + q] = rin ? W[(r0 + i) * MB_DC_NB + q] : T(0);
                vc[i * TS + q] = cin ? V[(c0 + i) * MB_DC_NB + q] : T(0);
                wc[i * TS + q] = cin ? W[(c0 + i) * MB_DC_NB + q] : T(0);
            }
            __syncthreads();
            for (int x = tid; x < 32 * 32; x += nt) {
                const int i = x >> 5, j = x & 31;
                if (r0 + i < n && c0 + j < n) {
                    T s = T(0);
                    for (int q = 0; q < nb; ++q)
                        s += vr[i * TS + q] * wc[j * TS + q] + wr[i * TS + q] * vc[j * TS + q];
                    A[(u64)(r0 + i) * n + c0 + j] -= s;
                }
            }
            __syncthreads();
        }
    }
    if (tid == 0) {
        ws.ints[0] = MB_DC_RUNNING;
        ws.ints[1] = ex;
        mb_set_info(p, mat.idx, MB_EIGH_SOLVED);
    }
}

// Step 2 (values only): lane s of block b takes slot 32 b + s.
template <typename T>
__device__ void mb_dc_values(const MbEighArgs& p) {
    const int slot = blockIdx.x * MB_DC_VALUES_PER_BLOCK + threadIdx.x;
    const int pos = mb_dc_pos(p, slot);
    if (slot >= p.team || pos >= p.count) return;
    const MbDcSlot<T> ws = mb_dc_slot<T>(p, slot);
    if (ws.ints[0] != MB_DC_RUNNING) return;
    const MbMatrix mat = mb_matrix(p, pos);
    const int n = mat.n;
    MbColumnTridiag<T, 1> tri;
    tri.d = ws.d;
    tri.e = ws.e;
    MbQl<T> q = mb_ql_start<T>();
    MbNoRotation<T> none;
    int s;
    while ((s = mb_ql_next<T, false>(q, tri, n, none)) == 1) {
    }
    T* w = (T*)p.w + mat.w0;
    if (s < 0) {
        atomicMin((int*)p.status + 1, mat.idx);
        mb_set_info(p, mat.idx, MB_EIGH_NO_CONVERGENCE);
        for (int i = 0; i < n; ++i) w[i] = mb_nan(T(0));
        return;
    }
    // Shell sort of d in place (Ciura's gaps), then out with the scaling undone.
    const int gaps[8] = {701, 301, 132, 57, 23, 10, 4, 1};
    T* d = ws.d;
    for (int g = 0; g < 8; ++g) {
        const int gap = gaps[g];
        for (int i = gap; i < n; ++i) {
            const T x = d[i];
            int j = i;
            for (; j >= gap && d[j - gap] > x; j -= gap) d[j] = d[j - gap];
            d[j] = x;
        }
    }
    const int ex = ws.ints[1];
    for (int i = 0; i < n; ++i) w[i] = mb_scale2(d[i], ex);
}

// The dc step's working vectors for launch order nmax: in shared memory, or with
// MB_DC_SOLVE_GLOBAL the per-order ones in the slot (MbDcSlot::gv) and only the GEMM tiles,
// partials and header in shared memory. Global memory is as coherent within a block across
// __syncthreads as shared memory, so the code is the same for both.
template <typename T>
struct MbDcShared {
    T *dv, *ev, *z, *dl, *wz, *zh, *tauv, *nrm, *ddv, *rc, *rs, *ta, *tb, *red;
    int *perm, *org, *colk, *cold, *rp, *rq, *rank, *hdr;
};

template <typename T>
__device__ __forceinline__ MbDcShared<T> mb_dc_shared(unsigned char* smem, int nmax, T* global) {
    MbDcShared<T> s;
    T* t = (T*)smem;
    T* vec = global ? global : t;
    T** vecs[11] = {&s.dv, &s.ev, &s.z, &s.dl, &s.wz, &s.zh, &s.tauv, &s.nrm, &s.ddv, &s.rc, &s.rs};
    for (int i = 0; i < 11; ++i) *vecs[i] = vec + (size_t)i * nmax;
    s.ta = global ? t : t + 11 * (size_t)nmax;
    s.tb = s.ta + MB_DC_TK * MB_DC_TM;
    s.red = s.tb + MB_DC_TK * MB_DC_TM;
    // The ints: after the partials in shared memory, or after the 11 vectors in the slot (7
    // nmax words of T reserved, MB_DC_GLOBAL_VECTORS).
    int* q = global ? (int*)(global + 11 * (size_t)nmax) : (int*)(s.red + 64);
    int** ivecs[7] = {&s.perm, &s.org, &s.colk, &s.cold, &s.rp, &s.rq, &s.rank};
    for (int i = 0; i < 7; ++i) *ivecs[i] = q + (size_t)i * nmax;
    s.hdr = global ? (int*)(s.red + 64) : q + 7 * (size_t)nmax;
    return s;
}

// First row of leaf i of `leaves` over n rows.
__device__ __forceinline__ int mb_dc_leaf_start(int i, int leaves, int n) {
    return (int)(((long long)i * n) / leaves);
}

// d_i - lambda_j for root j = dl[org[j]] + tauv[j], as dlaed4's DELTA: the difference of
// two poles is exact where they are close, so the small distances keep their relative accuracy.
template <typename T>
__device__ __forceinline__ T mb_dc_delta(const MbDcShared<T>& s, int i, int j) {
    return (s.dl[i] - s.dl[s.org[j]]) - s.tauv[j];
}

// Root j of 1 + sum_i ww_i / (dl_i - lambda) = 0 (ww_i = rho z_i^2 > 0, dl ascending, K
// poles): lambda_j lies in (dl_j, dl_{j+1}) or, for j = K - 1, in (dl_{K-1}, dl_{K-1} +
// sum ww). Sets org[j] (the nearer pole) and tauv[j] (lambda_j - dl[org[j]]).
template <typename T>
__device__ void mb_dc_secular_root(const MbDcShared<T>& s, int K, int j, T rho) {
    const T eps = mb_eps(T(0));
    const T* dl = s.dl;
    const T* wz = s.wz;
    auto ww = [&](int i) { return rho * wz[i] * wz[i]; };
    if (K == 1) {
        s.org[j] = 0;
        s.tauv[j] = ww(0);
        return;
    }
    const bool last = j == K - 1;
    int o;
    T lo, hi;
    if (!last) {
        // Which pole is nearer: the sign of f at the midpoint (f increases between poles).
        const T mid = (dl[j + 1] - dl[j]) / T(2);
        T f = T(1);
        for (int i = 0; i < K; ++i) f += ww(i) / ((dl[i] - dl[j]) - mid);
        if (f >= T(0)) {
            o = j;
            lo = T(0);
            hi = mid;
        } else {
            o = j + 1;
            lo = (dl[j] - dl[j + 1]) / T(2);
            hi = T(0);
        }
    } else {
        o = K - 1;
        T sum = T(0);
        for (int i = 0; i < K; ++i) sum += ww(i);
        lo = T(0);
        hi = sum;
    }
    // Poles of the left group (<= dl[jl]) and the right group (>= dl[jl + 1]).
    const int jl = last ? K - 1 : j;
    T tau = (lo + hi) / T(2);
    for (int it = 0; it < 200; ++it) {
        T psi = T(0), dpsi = T(0), phi = T(0), dphi = T(0), sabs = T(0);
        for (int i = 0; i < K; ++i) {
            const T del = (dl[i] - dl[o]) - tau;
            const T t = ww(i) / del;
            sabs += mb_abs(t);
            if (i <= jl) {
                psi += t;
                dpsi += t / del;
            } else {
                phi += t;
                dphi += t / del;
            }
        }
        const T f = T(1) + psi + phi;
        if (f == T(0)) break;
        if (f < T(0)) lo = tau;
        else hi = tau;
        // The rounding error of f's evaluation (dlaed4's ERRETM, roughly).
        if (mb_abs(f) <= eps * (T(8) * sabs + T(1) + mb_abs(tau) * (dpsi + dphi))) break;
        const T dlft = (dl[jl] - dl[o]) - tau;  // < 0
        T u;
        if (!last) {
            // Two poles, each group's sum matched in value and slope at tau; the step u is
            // the model's root between them (dlaed4's fixed-weight quadratic).
            const T drt = (dl[jl + 1] - dl[o]) - tau;  // > 0
            const T b = dpsi * dlft * dlft, B = dphi * drt * drt;
            const T c = f - b / dlft - B / drt;
            const T al = c * (dlft + drt) + b + B;
            const T be = dlft * drt * f;
            const T disc = mb_sqrt(mb_abs(al * al - T(4) * c * be));
            if (c == T(0)) u = be / al;
            else if (al >= T(0)) u = T(2) * be / (al + disc);
            else u = (al - disc) / (T(2) * c);
        } else {
            // Right of every pole: one pole with the left sum's value and slope.
            const T b = dpsi * dlft * dlft;
            const T c = f - b / dlft;
            u = c > T(0) ? dlft + b / c : hi - tau + T(1);  // (c <= 0: bisect below)
        }
        T next = tau + u;
        if (!(next > lo && next < hi)) next = lo + (hi - lo) / T(2);
        if (next == tau || hi - lo <= T(2) * eps * fmax(mb_abs(lo), mb_abs(hi))) {
            tau = next;
            break;
        }
        tau = next;
    }
    s.org[j] = o;
    s.tauv[j] = tau;
}

// Merges rows/columns [s0, s0 + n1) and [s0 + n1, s0 + m) of the tridiagonal's eigensystem:
// eigenvalues in sh.dv[s0 ..], vectors in the diagonal blocks of Q (n x n), merged in place
// into the block [s0, s0 + m)^2 through the row panel R (MB_DC_TM x m); the new eigenvalues to
// sh.dv (unordered). Whole block calls.
template <typename T>
__device__ void mb_dc_merge(const MbDcShared<T>& sh, int n, int s0, int n1, int m, T* Q, T* R) {
    const int tid = threadIdx.x, nt = blockDim.x;
    const T eps = mb_eps(T(0));
    T* d = sh.dv + s0;
    const T beta = sh.ev[s0 + n1 - 1];
    const T rho = T(2) * mb_abs(beta);
    const T sg = beta < T(0) ? T(-1) : T(1);
    const T half = mb_sqrt(T(0.5));
    // z = (last row of Q1, sign(beta) first row of Q2) / sqrt(2) (dlaed1, dlaed2).
    for (int i = tid; i < m; i += nt) {
        const u64 row = (u64)(i < n1 ? s0 + n1 - 1 : s0 + n1) * n;
        sh.z[i] = (i < n1 ? T(1) : sg) * Q[row + s0 + i] * half;
    }
    // Ascending order of d, ties by index.
    for (int i = tid; i < m; i += nt) {
        const T di = d[i];
        int r = 0;
        for (int j = 0; j < m; ++j) r += (d[j] < di) || (d[j] == di && j < i);
        sh.perm[r] = i;
    }
    __syncthreads();
    // Deflation (dlaed2), serial: K kept poles (dl, wz, colk), nd deflated (ddv, cold), nrot
    // rotations of column pairs (rp, rq, rc, rs) to apply to Q in order.
    if (tid == 0) {
        T dmax = T(0), zmax = T(0);
        for (int i = 0; i < m; ++i) {
            dmax = fmax(dmax, mb_abs(d[i]));
            zmax = fmax(zmax, mb_abs(sh.z[i]));
        }
        const T tol = T(8) * eps * fmax(dmax, zmax);
        int K = 0, nd = 0, nrot = 0, pj = -1;
        for (int jj = 0; jj < m; ++jj) {
            const int nj = sh.perm[jj];
            if (rho * mb_abs(sh.z[nj]) <= tol) {
                sh.ddv[nd] = d[nj];
                sh.cold[nd++] = nj;
                continue;
            }
            if (pj < 0) {
                pj = nj;
                continue;
            }
            const T zs = sh.z[pj], zc = sh.z[nj];
            const T tz = mb_hypot(zc, zs);
            const T t = d[nj] - d[pj];
            const T c = zc / tz, sn = -zs / tz;
            if (mb_abs(t * c * sn) <= tol) {
                // Close poles: rotate z[pj] into z[nj] and deflate pj.
                sh.z[nj] = tz;
                sh.z[pj] = T(0);
                sh.rp[nrot] = pj;
                sh.rq[nrot] = nj;
                sh.rc[nrot] = c;
                sh.rs[nrot++] = sn;
                const T dp = d[pj] * c * c + d[nj] * sn * sn;
                d[nj] = d[pj] * sn * sn + d[nj] * c * c;
                d[pj] = dp;
                sh.ddv[nd] = dp;
                sh.cold[nd++] = pj;
            } else {
                sh.dl[K] = d[pj];
                sh.wz[K] = sh.z[pj];
                sh.colk[K++] = pj;
            }
            pj = nj;
        }
        if (pj >= 0) {
            sh.dl[K] = d[pj];
            sh.wz[K] = sh.z[pj];
            sh.colk[K++] = pj;
        }
        sh.hdr[0] = K;
        sh.hdr[1] = nd;
        sh.hdr[2] = nrot;
    }
    __syncthreads();
    const int K = sh.hdr[0], nd = sh.hdr[1], nrot = sh.hdr[2];
    // The rotations on Q's rows of the block (DROT: x' = c x + s y, y' = c y - s x).
    if (nrot > 0) {
        for (int r = tid; r < m; r += nt) {
            T* row = Q + (u64)(s0 + r) * n + s0;
            for (int k = 0; k < nrot; ++k) {
                const T x = row[sh.rp[k]], y = row[sh.rq[k]], c = sh.rc[k], sn = sh.rs[k];
                row[sh.rp[k]] = c * x + sn * y;
                row[sh.rq[k]] = c * y - sn * x;
            }
        }
    }
    // The roots, a thread each.
    for (int j = tid; j < K; j += nt) mb_dc_secular_root<T>(sh, K, j, rho);
    __syncthreads();
    // zhat (Gu-Eisenstat, dlaed3): zhat_i^2 = -prod_j (dl_i - lambda_j) / prod_{j != i}
    // (dl_i - dl_j) (rho folded in), with z's signs.
    for (int i = tid; i < K; i += nt) {
        T prod = mb_dc_delta(sh, i, i);
        for (int j = 0; j < K; ++j)
            if (j != i) prod *= mb_dc_delta(sh, i, j) / (sh.dl[i] - sh.dl[j]);
        sh.zh[i] = mb_copysign(mb_sqrt(fmax(-prod, T(0))), sh.wz[i]);
    }
    __syncthreads();
    // 1 / ||(zhat_i / (dl_i - lambda_j))_i|| per root.
    for (int j = tid; j < K; j += nt) {
        T s2 = T(0);
        for (int i = 0; i < K; ++i) {
            const T u = sh.zh[i] / mb_dc_delta(sh, i, j);
            s2 += u * u;
        }
        sh.nrm[j] = T(1) / mb_sqrt(s2);
    }
    __syncthreads();
    // The new vectors in place, a row panel of MB_DC_TM rows of the block at a time: the
    // panel's (rotated) rows of Q copied to R in the order of the new columns (the kept ones,
    // then the deflated), column-major (R[c TM + r]) so that the GEMM's A tiles are contiguous
    // loads; then the panel's rows of Q overwritten: Q[r, s0 + j] = sum_i R[r, i] u_ij for
    // the K roots (64 x 64 tiles, a 4 x 4 group of outputs per thread: rows ty + 16 a,
    // columns tx + 16 b) and the deflated columns carried over. A row of the product depends
    // only on the same row of the old Q, so the slot needs no second n x n buffer.
    const int tx = tid & 15, ty = (tid >> 4) & 15;
    const bool computes = tid < 256;
    for (int rt = 0; rt < m; rt += MB_DC_TM) {
        const int rows = min(MB_DC_TM, m - rt);
        for (int x = tid; x < rows * m; x += nt) {
            const int c = x / rows, r = x - c * rows;
            const int col = c < K ? sh.colk[c] : sh.cold[c - K];
            R[(u64)c * MB_DC_TM + r] = Q[(u64)(s0 + rt + r) * n + s0 + col];
        }
        __syncthreads();
        for (int ct = 0; ct < K; ct += MB_DC_TM) {
            T acc[4][4];
#pragma unroll
            for (int a = 0; a < 4; ++a)
#pragma unroll
                for (int b = 0; b < 4; ++b) acc[a][b] = T(0);
            for (int i0 = 0; i0 < K; i0 += MB_DC_TK) {
                for (int x = tid; x < MB_DC_TK * MB_DC_TM; x += nt) {
                    const int kk = x / MB_DC_TM, rr = x - kk * MB_DC_TM;
                    const int i = i0 + kk;
                    // A tile: kept column i of the panel, row rr.
                    sh.ta[x] = (i < K && rr < rows) ? R[(u64)i * MB_DC_TM + rr] : T(0);
                    // B tile: u_{i, ct + rr}.
                    const int j = ct + rr;
                    sh.tb[x] = (i < K && j < K) ? sh.zh[i] / mb_dc_delta(sh, i, j) * sh.nrm[j]
                                                : T(0);
                }
                __syncthreads();
                if (computes) {
                    for (int kk = 0; kk < MB_DC_TK; ++kk) {
                        T av[4], bv[4];
#pragma unroll
                        for (int a = 0; a < 4; ++a) av[a] = sh.ta[kk * MB_DC_TM + ty + 16 * a];
#pragma unroll
                        for (int b = 0; b < 4; ++b) bv[b] = sh.tb[kk * MB_DC_TM + tx + 16 * b];
#pragma unroll
                        for (int a = 0; a < 4; ++a)
#pragma unroll
                            for (int b = 0; b < 4; ++b) acc[a][b] = fma(av[a], bv[b], acc[a][b]);
                    }
                }
                __syncthreads();
            }
            if (computes) {
#pragma unroll
                for (int a = 0; a < 4; ++a)
#pragma unroll
                    for (int b = 0; b < 4; ++b) {
                        const int r = ty + 16 * a, j = ct + tx + 16 * b;
                        if (r < rows && j < K) Q[(u64)(s0 + rt + r) * n + s0 + j] = acc[a][b];
                    }
            }
        }
        // Deflated vectors carried over (after the roots' columns).
        for (int x = tid; x < nd * rows; x += nt) {
            const int t = x / rows, r = x - t * rows;
            Q[(u64)(s0 + rt + r) * n + s0 + K + t] = R[(u64)(K + t) * MB_DC_TM + r];
        }
        // R is the next panel's.
        __syncthreads();
    }
    // The new eigenvalues over the old (every read of d above is behind a barrier).
    for (int j = tid; j < K; j += nt) d[j] = sh.dl[sh.org[j]] + sh.tauv[j];
    for (int t = tid; t < nd; t += nt) d[K + t] = sh.ddv[t];
    __syncthreads();
}

// Step 3 (vectors): the tridiagonal eigensystem into the slot (eigenvalues in d, unordered;
// vectors as the columns of Q).
template <typename T>
__device__ void mb_dc_solve(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int slot = blockIdx.x;
    const MbDcSlot<T> ws = mb_dc_slot<T>(p, slot);
    if (ws.ints[0] != MB_DC_RUNNING) return;
    const MbMatrix mat = mb_matrix(p, mb_dc_pos(p, slot));
    const int n = mat.n;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int lane = tid & 31, warp = tid >> 5, warps = nt >> 5;
    const MbDcShared<T> sh =
        mb_dc_shared<T>(mb_smem, p.nmax, (p.layout & MB_DC_SOLVE_GLOBAL) ? ws.gv : (T*)0);
    int leaves = 1;
    while ((n + leaves - 1) / leaves > MB_DC_LEAF) leaves *= 2;
    for (int i = tid; i < n; i += nt) {
        sh.dv[i] = ws.d[i];
        sh.ev[i] = ws.e[i];
    }
    // Q the identity: the leaves rotate their diagonal blocks, every merge overwrites its own
    // block, and everything outside the blocks stays zero.
    for (u64 x = tid; x < (u64)n * n; x += nt) {
        const int r = (int)(x / n), c = (int)(x - (u64)r * n);
        ws.q[x] = r == c ? T(1) : T(0);
    }
    __syncthreads();
    // Tears (dlaed0): d of both rows at each leaf boundary less |e|.
    if (tid == 0)
        for (int i = 1; i < leaves; ++i) {
            const int b = mb_dc_leaf_start(i, leaves, n);
            const T ab = mb_abs(sh.ev[b - 1]);
            sh.dv[b - 1] -= ab;
            sh.dv[b] -= ab;
        }
    __syncthreads();
    // Leaves: a warp each, QL with lane r rotating row r of the leaf's block of Q.
    bool failed = false;
    for (int i = warp; i < leaves; i += warps) {
        const int s0 = mb_dc_leaf_start(i, leaves, n);
        const int m = mb_dc_leaf_start(i + 1, leaves, n) - s0;
        MbLaneTridiag<T, 1, 32> tri;
        tri.d[0] = lane < m ? sh.dv[s0 + lane] : T(0);
        tri.e[0] = lane < m - 1 ? sh.ev[s0 + lane] : T(0);
        tri.r = lane;
        tri.gbase = 0;
        tri.mask = 0xffffffffu;
        T* zrow = lane < m ? ws.q + (u64)(s0 + lane) * n + s0 : (T*)0;
        const bool ok = mb_tridiag_ql<T, true, true>(tri, m, zrow);
        failed |= !ok;
        if (lane < m) sh.dv[s0 + lane] = tri.d[0];
    }
    if (__syncthreads_or(failed)) {
        if (tid == 0) {
            ws.ints[0] = MB_DC_FAILED;
            atomicMin((int*)p.status + 1, mat.idx);
            mb_set_info(p, mat.idx, MB_EIGH_NO_CONVERGENCE);
        }
        return;
    }
    // Merges, level by level, in place in Q (a row panel at a time through the slot's panel
    // storage, so a slot needs one n x n buffer, not two).
    for (int width = 2; width <= leaves; width *= 2) {
        for (int b = 0; b < leaves; b += width) {
            const int s0 = mb_dc_leaf_start(b, leaves, n);
            const int sm = mb_dc_leaf_start(b + width / 2, leaves, n);
            const int se = mb_dc_leaf_start(b + width, leaves, n);
            mb_dc_merge<T>(sh, n, s0, sm - s0, se - s0, ws.q, ws.pv);
        }
    }
    for (int i = tid; i < n; i += nt) ws.d[i] = sh.dv[i];
}

// Step 4 (vectors): back-transformation, order, scaling and output.
template <typename T>
__device__ void mb_dc_back(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int slot = blockIdx.x;
    const MbDcSlot<T> ws = mb_dc_slot<T>(p, slot);
    const int state = ws.ints[0];
    if (state == MB_DC_BAD || state == MB_DC_EMPTY) return;
    const MbMatrix mat = mb_matrix(p, mb_dc_pos(p, slot));
    const int n = mat.n;
    const int tid = threadIdx.x, nt = blockDim.x;
    T* v = (T*)p.v + mat.a0;
    T* w = (T*)p.w + mat.w0;
    if (state == MB_DC_FAILED) {
        for (int i = tid; i < n; i += nt) w[i] = mb_nan(T(0));
        for (int e = tid; e < n * n; e += nt) v[e] = mb_nan(T(0));
        return;
    }
    T* Q = ws.q;
    T* Tm = (T*)mb_smem;             // NB x NB, T[a][b] at a NB + b
    T* G = Tm + MB_DC_NB * MB_DC_NB;  // Gram matrix of the block's reflectors
    T* taus = G + MB_DC_NB * MB_DC_NB;
    const int nref = n - 2;  // reflectors 0 .. n - 3, reflector k in v's column k, rows > k
    for (int b0 = nref > 0 ? ((nref - 1) / MB_DC_NB) * MB_DC_NB : -1; b0 >= 0; b0 -= MB_DC_NB) {
        const int nb = min(MB_DC_NB, nref - b0);
        // v_a(r) of reflector b0 + a: 0 above row b0 + a + 1.
        auto vref = [&](int r, int a) {
            return r > b0 + a ? v[(u64)r * n + b0 + a] : T(0);
        };
        for (int a = tid; a < nb; a += nt) taus[a] = ws.tau[b0 + a];
        for (int x = tid; x < nb * nb; x += nt) {
            const int a = x / nb, c = x - a * nb;
            T g = T(0);
            if (a < c)
                for (int r = b0 + c + 1; r < n; ++r) g += vref(r, a) * vref(r, c);
            G[a * MB_DC_NB + c] = g;
            Tm[a * MB_DC_NB + c] = T(0);
        }
        __syncthreads();
        // dlarft (forward, columnwise): T[c][c] = tau_c, T[0:c, c] = -tau_c T[0:c, 0:c] G[0:c, c].
        for (int c = 0; c < nb; ++c) {
            for (int a = tid; a < c; a += nt) {
                T s = T(0);
                for (int q = a; q < c; ++q) s += Tm[a * MB_DC_NB + q] * G[q * MB_DC_NB + c];
                Tm[a * MB_DC_NB + c] = -taus[c] * s;
            }
            if (tid == 0) Tm[c * MB_DC_NB + c] = taus[c];
            __syncthreads();
        }
        // Q <- (I - V T V^T) Q, a thread per column.
        for (int col = tid; col < n; col += nt) {
            T y[MB_DC_NB];
#pragma unroll
            for (int a = 0; a < MB_DC_NB; ++a) y[a] = T(0);
            for (int r = b0 + 1; r < n; ++r) {
                const T q = Q[(u64)r * n + col];
#pragma unroll
                for (int a = 0; a < MB_DC_NB; ++a)
                    if (a < nb) y[a] += vref(r, a) * q;
            }
            T z[MB_DC_NB];
#pragma unroll
            for (int a = 0; a < MB_DC_NB; ++a) {
                T s = T(0);
#pragma unroll
                for (int c = 0; c < MB_DC_NB; ++c)
                    if (c >= a && c < nb) s += Tm[a * MB_DC_NB + c] * y[c];
                z[a] = s;
            }
            for (int r = b0 + 1; r < n; ++r) {
                T s = T(0);
#pragma unroll
                for (int a = 0; a < MB_DC_NB; ++a)
                    if (a < nb) s += vref(r, a) * z[a];
                Q[(u64)r * n + col] -= s;
            }
        }
        __syncthreads();
    }
    // Every reflector read: v may be overwritten. Column t of Q is eigenvector t of d[t].
    const int ex = ws.ints[1];
    for (int t = tid; t < n; t += nt) {
        const T dt = ws.d[t];
        int rank = 0;
        for (int j = 0; j < n; ++j) {
            const T dj = ws.d[j];
            rank += (dj < dt) || (dj == dt && j < t);
        }
        w[rank] = mb_scale2(dt, ex);
        mb_store_vector<T>(Q, n, n, t, rank, v, false);
    }
}

// Each class and dtype is one program with its entry points, e.g.
// MB_EIGH_DC_KERNELS(eigh_dc_f64_v, double, true) defines eigh_dc_f64_v_reduce, _solve and
// _back (values only: _reduce and _values).
#define MB_EIGH_DC_KERNELS(NAME, T, VEC)                                                     \
    extern "C" __global__ void __launch_bounds__(MB_DC_THREADS) NAME##_reduce(MbEighArgs p) { \
        mb_dc_reduce<T, VEC>(p);                                                             \
    }                                                                                        \
    MB_EIGH_DC_REST_##VEC(NAME, T)
#define MB_EIGH_DC_REST_true(NAME, T)                                                        \
    extern "C" __global__ void __launch_bounds__(MB_DC_THREADS) NAME##_solve(MbEighArgs p) { \
        mb_dc_solve<T>(p);                                                                   \
    }                                                                                        \
    extern "C" __global__ void __launch_bounds__(MB_DC_THREADS) NAME##_back(MbEighArgs p) {  \
        mb_dc_back<T>(p);                                                                    \
    }
#define MB_EIGH_DC_REST_false(NAME, T)                                                       \
    extern "C" __global__ void __launch_bounds__(MB_DC_VALUES_PER_BLOCK) NAME##_values(MbEighArgs p) { \
        mb_dc_values<T>(p);                                                                  \
    }
