// Medium orders, many matrices: the block classes' three steps as three kernels, so that QL's
// serial rotation chain, which bounds block.cu (one chain per block and, for f64 n >= 128,
// one block per multiprocessor), runs 32 chains per warp instead.
//
// 1. `reduce`, a block of 32 NC threads per matrix: block.cu's Householder
//    tridiagonalisation (LAPACK dsytd2) and, with vectors, Q formed in place (dorg2r); Q goes
//    to the matrix's slot of V, (d, e) and the QL state to the workspace.
// 2. `chains`, a warp per 32 matrices: lane s runs implicit QL (ql.cuh) on matrix s, (d, e)
//    column-wise in shared memory. Values only: to convergence, then the sorted eigenvalues
//    out. With vectors each chase is recorded into the matrix's list (n^2 words of the
//    workspace, as chains.cu does); a full list pauses the chain before its next chase and
//    the state goes back to the workspace.
// 3. `replay`, a block per matrix: Q from V into shared memory, the list replayed on it
//    (thread r rotating row r); a paused chain sends Q back to V for the next round, a
//    converged one finishes as block.cu (ascending order by rank, scaling undone, the CPU's
//    sign rule). The host queues 2 and 3 for MB_SPLIT rounds; on the last (`phase` 1) a
//    chain still paused is finished inside the block, one chase list at a time.
// About 2.4 n^2 words of chases per random matrix (n = 32-128), so three rounds usually do.
//
// References: LAPACK dsytd2, dorgtr, dsteqr (rotations recorded for a later dlasr); EISPACK
// tql2. The split and the layouts are ours.

// Slot states in the workspace.
#define MB_SPLIT_RUNNING 0
#define MB_SPLIT_CONVERGED 1
#define MB_SPLIT_FAILED 2
#define MB_SPLIT_BAD 3
#define MB_SPLIT_DONE 4
// Ints per launch position: state, QL's l, m, iter, words recorded this round, exponent.
#define MB_SPLIT_INTS 8
// Matrices per block of the chains step: a lane each (the host's `SPLIT_CHAINS_PER_BLOCK`).
#define MB_SPLIT_CHAINS_PER_BLOCK 32

// Threads per block of the reduction and replay steps.
__host__ __device__ constexpr int mb_split_threads(int nc) { return 32 * nc; }

// Shared memory of the chains step: d and e of its matrices (the host's
// `split_chains_shared_bytes`; checked by the NVRTC test).
template <typename T>
__host__ __device__ constexpr size_t mb_split_chains_shared_bytes(int nmax) {
    return 2 * MB_SPLIT_CHAINS_PER_BLOCK * (size_t)nmax * sizeof(T);
}

// Words (of T) of the workspace before the rotation lists, for `count` matrices of orders
// <= nmax: d, e, f, tst1 and the ints below (the host's `split_state_words`).
template <typename T>
__host__ __device__ constexpr u64 mb_split_state_words(u64 count, u64 nmax) {
    return count * (2 * nmax + 2) + (count * MB_SPLIT_INTS * 4 + sizeof(T) - 1) / sizeof(T);
}

// The workspace of a launch of p.count matrices of orders <= p.nmax, at p.gwork in T words:
// d and e (count x nmax each, by launch position), QL's accumulated shift f and deflation
// scale tst1 (count each), MB_SPLIT_INTS ints per position, then the rotation lists, the list
// of matrix `mat` at mat.a0 (n^2 words). The host's `split_state_words` computes the same.
template <typename T>
struct MbSplitWork {
    T* d;
    T* e;
    T* f;
    T* tst1;
    int* ints;
    T* lists;
};

template <typename T>
__device__ __forceinline__ MbSplitWork<T> mb_split_work(const MbEighArgs& p) {
    const u64 c = (u64)p.count, nm = (u64)p.nmax;
    MbSplitWork<T> w;
    w.d = (T*)p.gwork;
    w.e = w.d + c * nm;
    w.f = w.e + c * nm;
    w.tst1 = w.f + c;
    w.ints = (int*)(w.tst1 + c);
    w.lists = w.d + mb_split_state_words<T>(c, nm);
    return w;
}

template <typename T>
__device__ __forceinline__ MbQl<T> mb_split_load_ql(const MbSplitWork<T>& w, int pos) {
    const int* s = w.ints + MB_SPLIT_INTS * pos;
    MbQl<T> q;
    q.l = s[1];
    q.m = s[2];
    q.iter = s[3];
    q.f = w.f[pos];
    q.tst1 = w.tst1[pos];
    return q;
}

template <typename T>
__device__ __forceinline__ void mb_split_save_ql(const MbSplitWork<T>& w, int pos,
                                                 const MbQl<T>& q) {
    int* s = w.ints + MB_SPLIT_INTS * pos;
    s[1] = q.l;
    s[2] = q.m;
    s[3] = q.iter;
    w.f[pos] = q.f;
    w.tst1[pos] = q.tst1;
}

// Step 1. Shared memory: block.cu's layout.
template <typename T, int NC, bool VEC>
__device__ void mb_split_reduce(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int pos = blockIdx.x;
    const MbMatrix mat = mb_matrix(p, pos);
    const MbSplitWork<T> w = mb_split_work<T>(p);
    int* st = w.ints + MB_SPLIT_INTS * pos;
    const int n = mat.n;
    const int r = threadIdx.x;
    if (n == 0) {
        if (r == 0) st[0] = MB_SPLIT_DONE;
        return;
    }
    const MbBlockShared<T> sh = mb_block_shared<T>(mb_smem, p.nmax);
    const MbBlockReduced red = mb_block_reduce<T, VEC>(p, mat, sh);
    T* v = VEC ? (T*)p.v + mat.a0 : (T*)0;
    if (red.bad) {
        for (int i = r; i < n; i += blockDim.x) ((T*)p.w)[mat.w0 + i] = mb_nan(T(0));
        if (VEC)
            for (int e = r; e < n * n; e += blockDim.x) v[e] = mb_nan(T(0));
        if (r == 0) {
            st[0] = MB_SPLIT_BAD;
            mb_set_info(p, mat.idx, MB_EIGH_NON_FINITE);
        }
        return;
    }
    const u64 at = (u64)pos * (u64)p.nmax;
    for (int i = r; i < n; i += blockDim.x) {
        w.d[at + i] = sh.ds[i];
        w.e[at + i] = sh.es[i];
    }
    if (r == 0) {
        st[0] = MB_SPLIT_RUNNING;
        st[4] = 0;
        st[5] = red.ex;
        mb_split_save_ql<T>(w, pos, mb_ql_start<T>());
        // The chains and replay kernels change it only if QL does not converge.
        mb_set_info(p, mat.idx, MB_EIGH_SOLVED);
    }
    if (VEC) {
        const int S = mb_block_stride(n);
        for (int e = r; e < n * n; e += blockDim.x) v[e] = sh.A[(e / n) * S + e % n];
    }
}

// Step 2, a warp of 32 lanes per block. Shared memory: d and e of 32 matrices, column-wise
// (element i of lane s's matrix at 32 i + s), 2 x 32 nmax words.
template <typename T, bool VEC>
__device__ void mb_split_chains(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int nmax = p.nmax;
    const int lane = threadIdx.x;
    const int first = blockIdx.x * MB_SPLIT_CHAINS_PER_BLOCK;
    T* dsh = (T*)mb_smem;
    T* esh = dsh + MB_SPLIT_CHAINS_PER_BLOCK * nmax;
    const MbSplitWork<T> w = mb_split_work<T>(p);
    const int pos = first + lane;
    int* st = w.ints + MB_SPLIT_INTS * (pos < p.count ? pos : 0);
    const bool running = pos < p.count && st[0] == MB_SPLIT_RUNNING;
    const unsigned int act = __ballot_sync(0xffffffffu, running);
    if (!act) return;
    for (int s = 0; s < 32; ++s) {
        if (!((act >> s) & 1u)) continue;
        const u64 at = (u64)(first + s) * (u64)nmax;
        for (int i = lane; i < nmax; i += 32) {
            dsh[32 * i + s] = w.d[at + i];
            esh[32 * i + s] = w.e[at + i];
        }
    }
    __syncwarp();
    if (running) {
        const MbMatrix mat = mb_matrix(p, pos);
        const int n = mat.n;
        MbQl<T> q = mb_split_load_ql<T>(w, pos);
        MbColumnTridiag<T> tri;
        tri.d = dsh + lane;
        tri.e = esh + lane;
        int s;
        if (VEC) {
            MbRecordChain<T> rec;
            rec.cs = w.lists + mat.a0;
            rec.cap = n * n;
            rec.used = 0;
            rec.at = 0;
            while ((s = mb_ql_next<T, true>(q, tri, n, rec)) == 1) {
            }
            st[4] = rec.used;
        } else {
            MbNoRotation<T> none;
            while ((s = mb_ql_next<T, true>(q, tri, n, none)) == 1) {
            }
        }
        mb_split_save_ql<T>(w, pos, q);
        if (s < 0) {
            atomicMin((int*)p.status + 1, mat.idx);
            mb_set_info(p, mat.idx, MB_EIGH_NO_CONVERGENCE);
        }
        st[0] = s == 0 ? MB_SPLIT_CONVERGED : (s < 0 ? MB_SPLIT_FAILED : MB_SPLIT_RUNNING);
        if (!VEC) {
            // The eigenvalues in ascending order, by rank (ties by index); NaN if QL failed.
            const int ex = st[5];
            for (int t = 0; t < n; ++t) {
                const T dt = dsh[32 * t + lane];
                int rank = 0;
                for (int j = 0; j < n; ++j) {
                    const T dj = dsh[32 * j + lane];
                    rank += (dj < dt) || (dj == dt && j < t);
                }
                if (s < 0) rank = t;
                ((T*)p.w)[mat.w0 + rank] = s < 0 ? mb_nan(T(0)) : mb_scale2(dt, ex);
            }
            st[0] = MB_SPLIT_DONE;
        }
    }
    if (VEC) {
        __syncwarp();
        for (int s = 0; s < 32; ++s) {
            if (!((act >> s) & 1u)) continue;
            const u64 at = (u64)(first + s) * (u64)nmax;
            for (int i = lane; i < nmax; i += 32) {
                w.d[at + i] = dsh[32 * i + s];
                w.e[at + i] = esh[32 * i + s];
            }
        }
    }
}

// Step 3 (vectors only), 32 NC threads per matrix. Shared memory: block.cu's layout; Q in A,
// the staged list in `rot` (4 nmax words), the fallback's (d, e) in ds, es.
template <typename T, int NC>
__device__ void mb_split_replay(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    const int pos = blockIdx.x;
    const MbSplitWork<T> w = mb_split_work<T>(p);
    int* st = w.ints + MB_SPLIT_INTS * pos;
    const int state = st[0];
    if (state == MB_SPLIT_BAD || state == MB_SPLIT_DONE) return;
    const MbMatrix mat = mb_matrix(p, pos);
    const int n = mat.n;
    const int S = mb_block_stride(n);
    const int r = threadIdx.x;
    const bool owner = r < n;
    const MbBlockShared<T> sh = mb_block_shared<T>(mb_smem, p.nmax);
    T* Q = sh.A;
    T* v = (T*)p.v + mat.a0;
    const T* list = w.lists + mat.a0;
    const int stage_len = (4 * p.nmax) & ~1;
    MbBlockGroup group;
    group.rank = r;
    for (int e = r; e < n * n; e += blockDim.x) Q[(e / n) * S + e % n] = v[e];
    __syncthreads();
    mb_replay_list<T>(list, st[4], owner ? Q + r * S : (T*)0, owner, sh.rot, stage_len, group);
    __syncthreads();
    const u64 at = (u64)pos * (u64)p.nmax;
    // An unconverged chain (here or in the chains kernel) gets NaN outputs, in place.
    bool failed = state == MB_SPLIT_FAILED;
    if (state == MB_SPLIT_RUNNING) {
        if (p.phase == 0) {
            for (int e = r; e < n * n; e += blockDim.x) v[e] = Q[(e / n) * S + e % n];
            return;
        }
        // Last round: thread 0 continues the chain on (d, e) in shared memory, a list at a
        // time, and the block replays each.
        for (int i = r; i < n; i += blockDim.x) {
            sh.ds[i] = w.d[at + i];
            sh.es[i] = w.e[at + i];
        }
        int* flag = sh.hdr;
        MbQl<T> q = mb_split_load_ql<T>(w, pos);
        for (;;) {
            __syncthreads();
            if (r == 0) {
                MbColumnTridiag<T, 1> tri;
                tri.d = sh.ds;
                tri.e = sh.es;
                MbRecordChain<T> rec;
                rec.cs = w.lists + mat.a0;
                rec.cap = n * n;
                rec.used = 0;
                rec.at = 0;
                int s;
                while ((s = mb_ql_next<T, true>(q, tri, n, rec)) == 1) {
                }
                flag[0] = s;
                flag[1] = rec.used;
            }
            __syncthreads();
            const int s = flag[0], words = flag[1];
            mb_replay_list<T>(list, words, owner ? Q + r * S : (T*)0, owner, sh.rot, stage_len,
                              group);
            if (s != 2) {
                failed = s < 0;
                if (failed && r == 0) {
                    atomicMin((int*)p.status + 1, mat.idx);
                    mb_set_info(p, mat.idx, MB_EIGH_NO_CONVERGENCE);
                }
                break;
            }
        }
        __syncthreads();
    } else {
        for (int i = r; i < n; i += blockDim.x) sh.ds[i] = w.d[at + i];
        __syncthreads();
    }
    if (owner) {
        const T dt = sh.ds[r];
        int rank = 0;
        for (int j = 0; j < n; ++j) {
            const T dj = sh.ds[j];
            rank += (dj < dt) || (dj == dt && j < r);
        }
        if (failed) rank = r;
        ((T*)p.w)[mat.w0 + rank] = failed ? mb_nan(T(0)) : mb_scale2(dt, st[5]);
        mb_store_vector<T>(Q, S, n, r, rank, v, failed);
    }
    if (r == 0) st[0] = MB_SPLIT_DONE;
}

// Each class and dtype is one program with its entry points, e.g.
// MB_EIGH_SPLIT_KERNELS(eigh_split_f64_c4_v, double, 4, true) defines
// eigh_split_f64_c4_v_reduce, _chains and _replay (values only: no _replay).
#define MB_EIGH_SPLIT_KERNELS(NAME, T, NC, VEC)                                              \
    extern "C" __global__ void __launch_bounds__(mb_split_threads(NC)) NAME##_reduce(MbEighArgs p) {       \
        mb_split_reduce<T, NC, VEC>(p);                                                      \
    }                                                                                        \
    extern "C" __global__ void __launch_bounds__(MB_SPLIT_CHAINS_PER_BLOCK) NAME##_chains(MbEighArgs p) {           \
        mb_split_chains<T, VEC>(p);                                                          \
    }                                                                                        \
    MB_EIGH_SPLIT_REPLAY_##VEC(NAME, T, NC)
#define MB_EIGH_SPLIT_REPLAY_true(NAME, T, NC)                                               \
    extern "C" __global__ void __launch_bounds__(mb_split_threads(NC)) NAME##_replay(MbEighArgs p) {       \
        mb_split_replay<T, NC>(p);                                                           \
    }
#define MB_EIGH_SPLIT_REPLAY_false(NAME, T, NC)
