// Medium orders (33 <= n <= 32 NC, as long as A fits one block's shared memory): one block of
// 32 (NC + 1) threads per matrix, thread r < 32 NC owning row r, warp NC the QL chain.
//
// 1. A (both triangles, row stride odd against bank conflicts) in shared memory; Householder
//    tridiagonalisation as LAPACK dsytd2 (lower): per step a block reduction for the column's
//    norm, p = tau A v as one row dot per thread, a second reduction for p^T v, and the rank-2
//    update row by row. The reflectors stay in the columns they annihilated.
// 2. With vectors, Q = H_0 ... H_{n-3} is formed in place, back to front (LAPACK dorg2r after
//    dorgtr's shift): each step applies H_k to the block already formed, y = tau v^T Q as one
//    column dot per thread, then writes column k + 1 from the reflector in column k.
// 3. Implicit QL on (d, e) (ql.cuh) by one warp, which hands each chase's rotations to the
//    other warps through shared memory; they rotate the rows of Q they own.
// 4. Ascending order by rank, scaling undone, the CPU's sign rule.
//
// References: LAPACK dsytd2, dorgtr, dorg2r; EISPACK tql2. The block layout is ours.

// Sum over the block; `red` holds 2 x 32 partials used alternately (`par`), so consecutive
// reductions need one barrier each.
template <typename T>
__device__ __forceinline__ T mb_block_sum(T x, T* red, int par) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
    const int warps = blockDim.x / 32;
    if ((threadIdx.x & 31) == 0) red[par * 32 + threadIdx.x / 32] = x;
    __syncthreads();
    T s = T(0);
    for (int i = 0; i < warps; ++i) s += red[par * 32 + i];
    return s;
}

template <typename T>
__device__ __forceinline__ T mb_block_max(T x, T* red, int par) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) x = fmax(x, __shfl_xor_sync(0xffffffffu, x, off));
    const int warps = blockDim.x / 32;
    if ((threadIdx.x & 31) == 0) red[par * 32 + threadIdx.x / 32] = x;
    __syncthreads();
    T s = T(0);
    for (int i = 0; i < warps; ++i) s = fmax(s, red[par * 32 + i]);
    return s;
}

// Row stride of A for order n: odd, so a column walk by consecutive threads hits distinct banks.
__host__ __device__ constexpr int mb_block_stride(int n) { return n | 1; }

// Threads per block of the block classes: NC warps owning rows, one running the QL chain.
__host__ __device__ constexpr int mb_block_threads(int nc) { return 32 * (nc + 1); }

// Shared layout (the host's `block_shared_bytes` computes the same, nmax the launch's largest
// order): A (nmax x stride(nmax)), then v, w, d, e, tau (nmax each), 64 reduction partials,
// two slots of 2 nmax rotation coefficients, then 4 ints (the slots' chase bounds).
template <typename T>
struct MbBlockShared {
    T* A;
    T* vs;
    T* ws;
    T* ds;
    T* es;
    T* taus;
    T* red;
    T* rot;  // 4 nmax words
    int* hdr;
};

// Word offsets (of T) of that layout for launch order nmax; the ints start at `end`.
struct MbBlockOffsets {
    size_t vs, ws, ds, es, taus, red, rot, end;
};

__host__ __device__ constexpr MbBlockOffsets mb_block_offsets(int nmax) {
    const size_t n = (size_t)nmax;
    MbBlockOffsets o{};
    o.vs = n * mb_block_stride(nmax);
    o.ws = o.vs + n;
    o.ds = o.ws + n;
    o.es = o.ds + n;
    o.taus = o.es + n;
    o.red = o.taus + n;
    o.rot = o.red + 64;
    o.end = o.rot + 4 * n;
    return o;
}

// Bytes of the layout (the host's `block_shared_bytes`; checked by the NVRTC test).
template <typename T>
__host__ __device__ constexpr size_t mb_block_shared_bytes(int nmax) {
    return mb_block_offsets(nmax).end * sizeof(T) + 4 * sizeof(int);
}

template <typename T>
__device__ __forceinline__ MbBlockShared<T> mb_block_shared(unsigned char* smem, int nmax) {
    const MbBlockOffsets o = mb_block_offsets(nmax);
    MbBlockShared<T> sh;
    sh.A = (T*)smem;
    sh.vs = sh.A + o.vs;
    sh.ws = sh.A + o.ws;
    sh.ds = sh.A + o.ds;
    sh.es = sh.A + o.es;
    sh.taus = sh.A + o.taus;
    sh.red = sh.A + o.red;
    sh.rot = sh.A + o.rot;
    sh.hdr = (int*)(sh.A + o.end);
    return sh;
}

// What the reduction leaves besides (d, e) in ds, es and (VEC) Q in A: whether A held a NaN or
// infinity (then reported in the status word and nothing else computed) and the power of two
// A was scaled by.
struct MbBlockReduced {
    bool bad;
    int ex;
};

// Steps 1 and 2 for matrix `mat` (n >= 1) by the whole block (row r owned by thread r < n).
template <typename T, bool VEC>
__device__ MbBlockReduced mb_block_reduce(const MbEighArgs& p, const MbMatrix& mat,
                                          const MbBlockShared<T>& sh) {
    const int n = mat.n;
    const int S = mb_block_stride(n);
    T* A = sh.A;
    T* vs = sh.vs;
    T* ws = sh.ws;
    T* ds = sh.ds;
    T* es = sh.es;
    T* taus = sh.taus;
    T* red = sh.red;
    const int r = threadIdx.x;
    const bool owner = r < n;
    const T* a = (const T*)p.a + mat.a0;
    int par = 0;

    bool bad_here = false;
    T amax = T(0);
    mb_load_lower(a, n, r, blockDim.x, A, S, true, &bad_here, &amax);
    const bool bad = __syncthreads_or(bad_here);
    amax = mb_block_max(amax, red, par);
    par ^= 1;
    if (bad && r == 0) atomicMin((int*)p.status, mat.idx);
    const int ex = (bad || amax == T(0)) ? 0 : mb_exponent(amax);
    if (!bad && ex != 0 && owner) {
        for (int j = 0; j < n; ++j) A[r * S + j] = mb_scale2(A[r * S + j], -ex);
    }
    __syncthreads();
    if (!bad) {
        for (int k = 0; k + 2 < n; ++k) {
            const T x = owner ? A[r * S + k] : T(0);
            const T sig = mb_block_sum((r > k + 1 && owner) ? x * x : T(0), red, par);
            par ^= 1;
            const T alpha = A[(k + 1) * S + k];
            if (r == 0) ds[k] = A[k * S + k];
            if (sig == T(0)) {
                if (r == 0) {
                    es[k] = alpha;
                    taus[k] = T(0);
                }
                continue;
            }
            const T beta = -mb_copysign(mb_sqrt(alpha * alpha + sig), alpha);
            const T tau = (beta - alpha) / beta;
            const T inv = T(1) / (alpha - beta);
            const T vr = (r == k + 1) ? T(1) : ((r > k + 1 && owner) ? x * inv : T(0));
            if (owner) vs[r] = vr;
            if (r == 0) {
                es[k] = beta;
                taus[k] = tau;
            }
            __syncthreads();
            T pr = T(0);
            if (r > k && owner) {
                for (int j = k + 1; j < n; ++j) pr += A[r * S + j] * vs[j];
                pr *= tau;
            }
            const T kk = T(-0.5) * tau * mb_block_sum(pr * vr, red, par);
            par ^= 1;
            const T wr = pr + kk * vr;
            if (owner) ws[r] = wr;
            __syncthreads();
            if (r > k && owner) {
                for (int j = k + 1; j < n; ++j) A[r * S + j] -= vr * ws[j] + wr * vs[j];
                // The reflector, kept for forming Q (column k is not read again).
                if (VEC) A[r * S + k] = vr;
            }
            __syncthreads();
        }
        if (r == 0) {
            for (int i = n - 2 < 0 ? 0 : n - 2; i < n; ++i) {
                ds[i] = A[i * S + i];
                es[i] = (i + 1 < n) ? A[(i + 1) * S + i] : T(0);
            }
        }
        __syncthreads();
    }

    if (VEC && !bad) {
        // Q in place: after the step for reflector k, rows/columns >= k + 1 hold
        // H_k ... H_{n-3} restricted to them; row k + 1 starts as e_{k+1}.
        if (r == 0) A[(n - 1) * S + (n - 1)] = T(1);
        __syncthreads();
        for (int k = n - 3; k >= 0; --k) {
            const T tau = taus[k];
            // Row k + 1 of the formed block (columns >= k + 2) is still zero in Q: it holds
            // A's upper triangle, which is not needed any more.
            if (r >= k + 2 && owner) A[(k + 1) * S + r] = T(0);
            __syncthreads();
            if (tau != T(0)) {
                if (r >= k + 2 && owner) {
                    // y_j = tau sum_{i > k + 1} v_i Q[i][j], thread j owning column j.
                    T y = T(0);
                    for (int i = k + 2; i < n; ++i) y += A[i * S + k] * A[i * S + r];
                    ws[r] = tau * y;
                }
                __syncthreads();
                if (r >= k + 1 && owner) {
                    const T vr = (r == k + 1) ? T(1) : A[r * S + k];
                    for (int j = k + 2; j < n; ++j) A[r * S + j] -= vr * ws[j];
                }
                __syncthreads();
            }
            if (r > k + 1 && owner) A[r * S + (k + 1)] = -tau * A[r * S + k];
            if (r == k + 1) A[r * S + r] = T(1) - tau;
            __syncthreads();
        }
        // Row and column 0 of Q are e_0.
        if (owner) {
            A[r] = (r == 0) ? T(1) : T(0);
            A[r * S] = (r == 0) ? T(1) : T(0);
        }
        __syncthreads();
    }

    MbBlockReduced out;
    out.bad = bad;
    out.ex = ex;
    return out;
}

template <typename T, int NC, bool VEC>
__device__ void mb_eigh_block(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const MbMatrix mat = mb_matrix(p, blockIdx.x);
    const int n = mat.n;
    if (n == 0) return;
    const int S = mb_block_stride(n);
    const int nmax = p.nmax;  // the largest order in this launch
    const MbBlockShared<T> sh = mb_block_shared<T>(mb_smem, nmax);
    T* A = sh.A;
    T* vs = sh.vs;
    T* ws = sh.ws;
    T* ds = sh.ds;
    T* es = sh.es;
    T* rot = sh.rot;
    const int r = threadIdx.x;
    const int lane = r & 31;
    const bool owner = r < n;
    const MbBlockReduced reduced = mb_block_reduce<T, VEC>(p, mat, sh);
    const bool bad = reduced.bad;
    const int ex = reduced.ex;

    // QL: warp NC alone runs the rotation chain on (d, e) in shared memory. With vectors it
    // records each chase's rotations in one of two shared slots while warps 0..NC-1 apply the previous chase to the rows of Q they own:
    // one barrier per chase, and the chain never waits on the row updates.
    const int warp = r / 32;
    int* hdr = sh.hdr;  // per slot: l, m (m < 0: no more chases)
    int state = 0;      // warp NC: QL's final state (< 0: not converged)
    if (warp == NC) {
        // (d, e) stay in ds, es, which only this warp touches until the barrier after QL; vs
        // and ws, free since Q was formed, hold the chases' copies of them.
        MbSharedTridiag<T> tri;
        tri.d = ds;
        tri.e = es;
        tri.d0 = vs;
        tri.e0 = ws;
        tri.lane = lane;
        MbQl<T> q = mb_ql_start<T>();
        if (!bad) {
            if (VEC) {
                for (int k = 0;; ++k) {
                    MbRecordRotations<T> rec;
                    rec.cs = rot + (k & 1) * 2 * nmax;
                    rec.hdr = hdr + (k & 1) * 2;
                    rec.lane = lane;
                    state = mb_ql_next<T, true>(q, tri, n, rec);
                    if (state <= 0 && lane == 0) hdr[(k & 1) * 2 + 1] = -1;
                    __syncthreads();
                    if (state <= 0) break;
                }
            } else {
                MbNoRotation<T> none;
                while ((state = mb_ql_next<T, true>(q, tri, n, none)) > 0) {
                }
            }
        }
        if (state < 0 && lane == 0) atomicMin((int*)p.status + 1, mat.idx);
    } else if (VEC && !bad) {
        T* z = owner ? A + r * S : (T*)0;
        for (int k = 0;; ++k) {
            if (k > 0) {
                const int slot = (k - 1) & 1;
                const int l = hdr[2 * slot], m = hdr[2 * slot + 1];
                if (m < 0) break;
                if (z) {
                    const T* cs = rot + slot * 2 * nmax;
                    T carry = z[m];
                    for (int i = m - 1; i >= l; --i) {
                        const T zi = z[i], c = cs[2 * i], sn = cs[2 * i + 1];
                        z[i + 1] = sn * zi + c * carry;
                        carry = c * zi - sn * carry;
                    }
                    z[l] = carry;
                }
            }
            __syncthreads();
        }
    }
    // A matrix with NaN/Inf input or an unconverged chain gets NaN outputs, in place.
    const bool failed = __syncthreads_or(warp == NC && state < 0);
    const bool nan_out = bad || failed;
    if (r == 0) mb_set_info(p, mat.idx, mb_info_code(bad, failed));
    if (owner) {
        const T dt = ds[r];
        int rank = 0;
        for (int j = 0; j < n; ++j) {
            const T dj = ds[j];
            rank += (dj < dt) || (dj == dt && j < r);
        }
        if (nan_out) rank = r;
        ((T*)p.w)[mat.w0 + rank] = nan_out ? mb_nan(T(0)) : mb_scale2(dt, ex);
        if (VEC) mb_store_vector<T>(A, S, n, r, rank, (T*)p.v + mat.a0, nan_out);
    }
}

// One entry point per program, as for the warp classes: NC = 2, 4, 8 (96, 160, 288 threads;
// orders up to 64, 128, 256), e.g. MB_EIGH_BLOCK_KERNEL(eigh_block_f64_c4_v, double, 4, true).
#define MB_EIGH_BLOCK_KERNEL(NAME, T, NC, VEC)                                               \
    extern "C" __global__ void __launch_bounds__(mb_block_threads(NC)) NAME(MbEighArgs p) {  \
        mb_eigh_block<T, NC, VEC>(p);                                                        \
    }
