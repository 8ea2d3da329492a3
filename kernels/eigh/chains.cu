// Small orders (9 <= n <= 32), many matrices: a block of 128 threads takes M <= 32 matrices
// (M a launch parameter, `team`), and each QL rotation chain is computed once, by one lane,
// instead of by every lane of the matrix's group as in warp.cu.
//
// 1. Each group of G lanes reduces its share of the block's matrices as warp.cu does
//    (Householder with rows in registers, Q accumulated forwards in shared memory), then
//    leaves the tridiagonal matrix in shared memory column-wise (matrix s in column s) and,
//    with vectors, Q in the matrix's slot of the output V.
// 2. Lane s of warp 0 runs implicit QL on matrix s (ql.cuh, MbColumnTridiag): 32 chains per
//    warp instruction. With vectors, each chase's rotations go to the matrix's list in the
//    global workspace (n^2 words, as many bytes as the matrix); a chain whose list is full
//    pauses before its next chase.
// 3. With vectors, the groups replay each matrix's list on its Q (Z in shared memory, lane r
//    rotating row r), write Q back if the chain paused, else finish as warp.cu: ascending
//    order by rank, scaling undone, the CPU's sign rule. 2 and 3 repeat while a chain is
//    paused.
// ncu at f64 n = 32, batch 16384: 2.1x fewer instructions than the warp class, 1.5x faster
// (docs/benchmarks/eigh-chains-h200.md).
//
// References: LAPACK dsytd2; EISPACK tql2 (recording the rotations for a later pass is
// LAPACK dsteqr's approach with dlasr, applied here row by row).

// Words of a rotation list a group stages in shared memory at a time (even, so a chase's
// header and each (c, s) pair never straddle two chunks).
#define MB_CHAINS_STAGE 128
// Most matrices one block takes: one chain per lane of its first warp (the host's
// `CHAINS_MAX_PER_BLOCK`).
#define MB_CHAINS_MAX_PER_BLOCK 32

// Word offset (of T) of the ints after d, e and the groups' chunks: the shared layout below.
// The host's `chains_shared_bytes` is this many T and 3 x 32 ints (checked by the NVRTC test).
template <int G, int R>
__host__ __device__ constexpr int mb_chains_ints_at() {
    return 2 * MB_CHAINS_MAX_PER_BLOCK * R +
           (MB_WARP_THREADS / G) * (mb_warp_group_words(R) + MB_CHAINS_STAGE);
}

// Q between Z (shared, row stride S) and the matrix's slot of V (row-major n x n), lane r
// taking elements r, r + G, ... (coalesced).
template <typename T, int G, bool TO_V>
__device__ __forceinline__ void mb_copy_q(T* Z, int S, T* v, int n, int r) {
    for (int e = r; e < n * n; e += G) {
        if (TO_V) v[e] = Z[(e / n) * S + e % n];
        else Z[(e / n) * S + e % n] = v[e];
    }
}

// Shared layout (the host's `EighClass::shared_bytes` computes the same): d and e (32 R each,
// column-wise), per group Z (R rows, stride R + 1), v, w (R each) and a staging chunk
// (MB_CHAINS_STAGE), then 3 x 32 ints: words recorded this round, state, scaling exponent per
// matrix.
template <typename T, int G, int R, bool VEC>
__device__ void mb_eigh_chains(const MbEighArgs& p) {
    MB_DYNAMIC_SHARED(mb_smem);
    constexpr int S = R + 1;
    constexpr int GROUPS = MB_WARP_THREADS / G;
    // Slot states.
    constexpr int RUNNING = 0, CONVERGED = 1, FAILED = 2, BAD = 3, EMPTY = 4, DONE = 5;
    const int M = p.team;
    const int lane = threadIdx.x & 31;
    const int r = lane & (G - 1);
    const int gbase = lane & ~(G - 1);
    const unsigned int mask = G == 32 ? 0xffffffffu : (((1u << G) - 1u) << gbase);
    const int gid = threadIdx.x / G;
    T* dsh = (T*)mb_smem;
    T* esh = dsh + MB_CHAINS_MAX_PER_BLOCK * R;
    constexpr int PER_GROUP = mb_warp_group_words(R) + MB_CHAINS_STAGE;
    T* Z = esh + MB_CHAINS_MAX_PER_BLOCK * R + gid * PER_GROUP;
    T* vs = Z + R * S;
    T* ws = vs + R;
    T* stage = ws + R;
    int* cnt = (int*)((T*)mb_smem + mb_chains_ints_at<G, R>());
    int* state = cnt + 32;
    int* exs = state + 32;
    const int first = blockIdx.x * M;

    // 1. Reduce the block's matrices, a group at a time.
    for (int s = gid; s < M; s += GROUPS) {
        const MbMatrix mat = mb_matrix(p, first + s);
        const int n = mat.n;
        if (n == 0) {
            if (r == 0) state[s] = EMPTY;
            continue;
        }
        const MbLaneReduction<T> red = mb_warp_tridiag<T, G, R, VEC>(p, mat, Z, vs, ws, r, mask);
        if (r < n) {
            dsh[32 * r + s] = red.dr;
            esh[32 * r + s] = red.er;
        }
        if (r == 0) {
            exs[s] = red.ex;
            state[s] = red.bad ? BAD : RUNNING;
        }
        if (VEC && !red.bad) {
            T* v = (T*)p.v + mat.a0;
            mb_copy_q<T, G, true>(Z, S, v, n, r);
        }
        __syncwarp(mask);
    }
    __syncthreads();

    // Lane s of warp 0: the chain of matrix s, resumed round after round.
    MbQl<T> q = mb_ql_start<T>();
    MbMatrix own = mb_matrix(p, first + (threadIdx.x < 32 ? threadIdx.x : 0));
    MbRecordChain<T> rec;
    rec.cs = (T*)p.gwork + own.a0;
    rec.cap = own.n * own.n;
    rec.used = 0;
    rec.at = 0;
    for (;;) {
        // 2. Chains.
        if (threadIdx.x < M && state[threadIdx.x] == RUNNING) {
            MbColumnTridiag<T> tri;
            tri.d = dsh + threadIdx.x;
            tri.e = esh + threadIdx.x;
            int st;
            if (VEC) {
                rec.used = 0;
                while ((st = mb_ql_next<T, true>(q, tri, own.n, rec)) == 1) {
                }
                cnt[threadIdx.x] = rec.used;
            } else {
                MbNoRotation<T> none;
                while ((st = mb_ql_next<T, true>(q, tri, own.n, none)) == 1) {
                }
            }
            if (st == 0) state[threadIdx.x] = CONVERGED;
            if (st < 0) {
                state[threadIdx.x] = FAILED;
                atomicMin((int*)p.status + 1, own.idx);
            }
        }
        __syncthreads();

        // 3. Replay and finish.
        for (int s = gid; s < M; s += GROUPS) {
            const int st = state[s];
            if (st == EMPTY || st == DONE) continue;
            const MbMatrix mat = mb_matrix(p, first + s);
            const int n = mat.n;
            T* v = (T*)p.v + mat.a0;
            if (VEC && st != BAD) {
                mb_copy_q<T, G, false>(Z, S, v, n, r);
                MbLaneGroup<G> group;
                group.mask = mask;
                group.rank = r;
                mb_replay_list<T>((const T*)p.gwork + mat.a0, cnt[s], Z + r * S, r < n, stage,
                                  MB_CHAINS_STAGE, group);
                __syncwarp(mask);
                if (st == RUNNING) {
                    mb_copy_q<T, G, true>(Z, S, v, n, r);
                    __syncwarp(mask);
                    continue;
                }
            }
            if (st == RUNNING) continue;
            // NaN/Inf input (BAD) or an unconverged chain (FAILED): NaN outputs, in place.
            const bool nan_out = st != CONVERGED;
            if (r < n) {
                const T* d = dsh + s;
                const T dt = d[32 * r];
                int rank = 0;
                for (int j = 0; j < n; ++j) {
                    const T dj = d[32 * j];
                    rank += (dj < dt) || (dj == dt && j < r);
                }
                if (nan_out) rank = r;
                ((T*)p.w)[mat.w0 + rank] = nan_out ? mb_nan(T(0)) : mb_scale2(dt, exs[s]);
                if (VEC) mb_store_vector<T>(Z, S, n, r, rank, v, nan_out);
            }
            __syncwarp(mask);
            if (r == 0) {
                mb_set_info(p, mat.idx, mb_info_code(st == BAD, st == FAILED));
                state[s] = DONE;
            }
        }
        __syncthreads();
        if (!__syncthreads_or(threadIdx.x < M && state[threadIdx.x] == RUNNING)) break;
    }
}

// The host (backends/cuda/eigh_kernel.rs) compiles each class and dtype as its own program
// ending in one of these lines, e.g.
// MB_EIGH_CHAINS_KERNEL(eigh_chains_f64_g16_r12_v, double, 16, 12, true).
// Measured on the H200 and left out (10-20% slower at n = 12-32): __launch_bounds__(128, 6)
// for rows <= 16 (six blocks per multiprocessor instead of four), unrolling the replay, and
// copying Q row by row instead of with a division per element (mb_copy_q).
#define MB_EIGH_CHAINS_KERNEL(NAME, T, G, R, VEC)                                            \
    extern "C" __global__ void __launch_bounds__(MB_WARP_THREADS) NAME(MbEighArgs p) {       \
        mb_eigh_chains<T, G, R, VEC>(p);                                                     \
    }
