// Batched symmetric eigendecomposition by two-sided cyclic Jacobi with the parallel
// (round-robin, "circle") ordering: in each of the nmax - 1 rounds of a sweep, nmax / 2
// disjoint pairs (p, q) are rotated at once, so a team of threads applies all of them
// together. Rotation per Golub & Van Loan, Matrix Computations (4th ed.), Alg. 8.5.1
// (sym.schur2) and 8.5.2; the 2x2 block is written exactly (a_pq = 0, a_pp - t a_pq,
// a_qq + t a_pq) as in Rutishauser's Handbook procedure `jacobi`. A rotation is skipped when
// |a_pq| <= eps sqrt(|a_pp| |a_qq|) (Demmel & Veselic 1992), and a matrix has converged when a
// whole sweep skipped every rotation. The same ordering and skip rule as cuSOLVER's syevj
// (which uses a block variant); the code here is our own.
//
// Layout: a team of `team` threads owns one matrix; a CTA holds blockDim.x / team teams, which
// run independently when a team fits in a warp (warp barriers only). The
// matrix (stride nmax + 1 against bank conflicts) and its eigenvector accumulator live in
// dynamic shared memory, or, when they do not fit (gwork != 0), in a per-CTA slot of a global
// workspace while the CTA loops over matrices. Input and output are row-major; the lower
// triangle is read. Eigenvalues ascending, eigenvector columns with their first
// largest-magnitude component positive: the CPU backend's conventions.

#define MB_MAX_SWEEPS 60
// |tau| above which tau^2 + 1 would overflow or lose tau entirely: use t = 1 / (2 tau).
__device__ __forceinline__ double mb_tau_big(double) { return 1e150; }
__device__ __forceinline__ float mb_tau_big(float) { return 1e18f; }

// The barrier of one team: a warp (or part of one) synchronises with __syncwarp on its own
// lanes, so teams in one block run independently; a team of a whole block uses __syncthreads.
__device__ __forceinline__ void mb_team_sync(int team, unsigned int mask) {
    if (team <= 32) {
        __syncwarp(mask);
    } else {
        __syncthreads();
    }
}

// Round `round` of the circle method over `m` (even) players: player 0 stays, the others
// rotate through positions 1..m-1; position k plays position m-1-k.
__device__ __forceinline__ void mb_circle_pair(int m, int round, int k, int* p, int* q) {
    int a = (k == 0) ? 0 : ((k - 1 + round) % (m - 1)) + 1;
    int b = ((m - 2 - k + round) % (m - 1)) + 1;
    *p = min(a, b);
    *q = max(a, b);
}

// Byte offset of the ints in a CTA's shared memory, and its total size (the host's
// `jacobi_shared_bytes`; checked by the NVRTC test), for `teams` teams of matrices of padded
// order nmax: per team [A, V] unless in the global workspace, then 3 nmax words; after all
// teams, 8-byte aligned, per team 2 nmax + 4 ints, then one u64 per team.
template <typename T>
__host__ __device__ constexpr size_t mb_jacobi_ints_at(int nmax, int teams, bool vectors,
                                                       bool in_global) {
    const size_t mats = in_global ? 0 : (size_t)nmax * (nmax + 1) * (vectors ? 2 : 1);
    return ((size_t)teams * (mats + 3 * (size_t)nmax) * sizeof(T) + 7) & ~(size_t)7;
}

template <typename T>
__host__ __device__ constexpr size_t mb_jacobi_shared_bytes(int nmax, int teams, bool vectors,
                                                            bool in_global) {
    return mb_jacobi_ints_at<T>(nmax, teams, vectors, in_global) +
           (size_t)teams * (2 * nmax + 4) * 4 + (size_t)teams * 8;
}

template <typename T>
__device__ void mb_eigh_jacobi(const MbEighArgs& p) {
    const T* __restrict__ a = (const T*)p.a;
    T* __restrict__ w = (T*)p.w;
    T* __restrict__ v = (T*)p.v;
    const int count = p.count, nmax = p.nmax, team = p.team, vectors = p.vectors;
    T* gwork = (T*)p.gwork;
    int* status = (int*)p.status;
    MB_DYNAMIC_SHARED(mb_smem);
    const int S = nmax + 1;
    const int half = nmax / 2;
    const int teams = blockDim.x / team;
    const int t = threadIdx.x / team;
    const int tid = threadIdx.x % team;
    const bool in_global = gwork != 0;
    const size_t mat = (size_t)nmax * S;
    const size_t mats = mat * (vectors ? 2 : 1);
    // Shared layout (the host's `shared_bytes` computes the same): per team, [A, V] unless in
    // the global workspace, then c, s, new a_pp, new a_qq (nmax/2 each) and signs (nmax);
    // after all teams, 8-byte aligned, per team 2 nmax + 4 ints, then one u64 per team.
    const size_t per_team = (in_global ? 0 : mats) + 3 * (size_t)nmax;
    T* mine = (T*)mb_smem + t * per_team;
    T* A = in_global ? gwork + (size_t)blockIdx.x * mats : mine;
    T* V = A + mat;
    T* pc = mine + (in_global ? 0 : mats);
    T* ps = pc + half;
    T* pdp = ps + half;
    T* pdq = pdp + half;
    T* sgn = pdq + half;
    const size_t ints_at = mb_jacobi_ints_at<T>(nmax, teams, vectors != 0, in_global);
    int* ibase = (int*)(mb_smem + ints_at);
    int* rank = ibase + t * (2 * nmax + 4);  // doubles as the "pair k rotates" flags in sweeps
    int* pp = rank + nmax;                   // this round's pairs (p, q), nmax / 2 each
    int* pq = pp + half;
    int* flags = pq + half;  // [0], [1]: a rotation happened (by sweep parity); [3]: non-finite
    u64* amax = (u64*)(ibase + teams * (2 * nmax + 4)) + t;
    const T eps = mb_eps(T(0));
    const unsigned int tmask =
        team >= 32 ? 0xffffffffu : (((1u << team) - 1u) << ((threadIdx.x & 31) / team * team));

    const int groups = (count + teams - 1) / teams;
    for (int g = blockIdx.x; g < groups; g += gridDim.x) {
        const int pos = g * teams + t;
        const MbMatrix mat_at = mb_matrix(p, pos);
        const int idx = mat_at.idx, n = mat_at.n;
        const u64 a0 = mat_at.a0, w0 = mat_at.w0;
        if (tid == 0) {
            flags[0] = 0;
            flags[1] = 0;
            flags[3] = 0;
            *amax = 0;
        }
        mb_team_sync(team, tmask);
        for (int e = tid; e < n * n; e += team) {
            int r = e / n, c = e - r * n;
            if (c <= r) {
                T x = a[a0 + e];
                if (!(x - x == T(0))) atomicOr(&flags[3], 1);
                atomicMax(amax, mb_abs_bits(x));
                A[r * S + c] = x;
                A[c * S + r] = x;
            }
            if (vectors) V[r * S + c] = (r == c) ? T(1) : T(0);
        }
        mb_team_sync(team, tmask);
        const bool bad = flags[3] != 0;
        const T anrm = mb_from_bits(*amax, T(0));
        bool active = n > 1 && !bad && anrm != T(0);
        // Exact power-of-two scaling into [0.5, 1): no overflow in tau, no lost underflow.
        const int ex = active ? mb_exponent(anrm) : 0;
        if (active) {
            for (int e = tid; e < n * n; e += team) {
                int r = e / n, c = e - r * n;
                A[r * S + c] = mb_scale2(A[r * S + c], -ex);
            }
        }
        if (bad && tid == 0) atomicMin(&status[0], idx);
        // Rotation passes visit (pair k, row or column c) items. When the team has a thread per
        // column, each thread keeps one c and strides over pairs, with no division per item;
        // otherwise items are dealt out flat.
        const bool by_column = n > 0 && team >= n;
        const int kstep = by_column ? team / n : 1;
        const int lane_c = by_column ? tid % n : 0;
        const int k0 = by_column ? (tid < kstep * n ? tid / n : half) : 0;
        auto for_items = [&](auto&& body) {
            if (by_column) {
                for (int k = k0; k < half; k += kstep) body(k, lane_c);
            } else {
                for (int e = tid; e < half * n; e += team) {
                    const int k = e / n;
                    body(k, e - k * n);
                }
            }
        };

        for (int sweep = 0;; ++sweep) {
            // `active` is the same in every thread of a team (it comes from team-shared flags).
            mb_team_sync(team, tmask);
            if (!active) break;
            if (sweep == MB_MAX_SWEEPS) {
                if (active && tid == 0) atomicMin(&status[1], idx);
                break;
            }
            const int par = sweep & 1;
            if (tid == 0) flags[par ^ 1] = 0;
            for (int round = 0; round < nmax - 1; ++round) {
                for (int k = tid; k < half; k += team) {
                    int p, q;
                    mb_circle_pair(nmax, round, k, &p, &q);
                    int on = 0;
                    if (active && q < n) {
                        const T app = A[p * S + p], aqq = A[q * S + q], apq = A[q * S + p];
                        if (apq != T(0) &&
                            mb_abs(apq) > eps * mb_sqrt(mb_abs(app)) * mb_sqrt(mb_abs(aqq))) {
                            const T tau = (aqq - app) / (T(2) * apq);
                            const T at = mb_abs(tau);
                            T tt = at > mb_tau_big(T(0)) ? T(0.5) / at
                                                         : T(1) / (at + mb_sqrt(T(1) + tau * tau));
                            if (tau < T(0)) tt = -tt;
                            const T c = T(1) / mb_sqrt(T(1) + tt * tt);
                            pc[k] = c;
                            ps[k] = tt * c;
                            pdp[k] = app - tt * apq;
                            pdq[k] = aqq + tt * apq;
                            on = 1;
                            flags[par] = 1;
                        }
                    }
                    rank[k] = on;
                    pp[k] = p;
                    pq[k] = q;
                }
                mb_team_sync(team, tmask);
                // A <- J^T A: rows p and q of every rotating pair.
                for_items([&](int k, int col) {
                    if (rank[k]) {
                        const int p = pp[k], q = pq[k];
                        const T c = pc[k], s = ps[k];
                        const T x = A[p * S + col], y = A[q * S + col];
                        A[p * S + col] = c * x - s * y;
                        A[q * S + col] = s * x + c * y;
                    }
                });
                mb_team_sync(team, tmask);
                // A <- A J and V <- V J: columns p and q; the 2x2 block itself is set exactly.
                for_items([&](int k, int row) {
                    if (rank[k]) {
                        const int p = pp[k], q = pq[k];
                        const T c = pc[k], s = ps[k];
                        if (row == p) {
                            A[p * S + p] = pdp[k];
                            A[p * S + q] = T(0);
                        } else if (row == q) {
                            A[q * S + q] = pdq[k];
                            A[q * S + p] = T(0);
                        } else {
                            const T x = A[row * S + p], y = A[row * S + q];
                            A[row * S + p] = c * x - s * y;
                            A[row * S + q] = s * x + c * y;
                        }
                        if (vectors) {
                            const T x = V[row * S + p], y = V[row * S + q];
                            V[row * S + p] = c * x - s * y;
                            V[row * S + q] = s * x + c * y;
                        }
                    }
                });
                mb_team_sync(team, tmask);
            }
            active = active && flags[par] != 0;
        }

        // Still active here: the sweep cap stopped an unconverged matrix. NaN/Inf input or no
        // convergence: NaN outputs, in place.
        const bool failed = active;
        const bool nan_out = bad || failed;
        if (idx >= 0 && n > 0 && tid == 0) mb_set_info(p, idx, mb_info_code(bad, failed));
        // Ascending order by a stable rank sort; signs from each column's first largest entry.
        if (idx >= 0 && n > 0) {
            for (int i = tid; i < n; i += team) {
                if (nan_out) {
                    w[w0 + i] = mb_nan(T(0));
                    continue;
                }
                const T di = A[i * S + i];
                int r = 0;
                for (int j = 0; j < n; ++j) {
                    const T dj = A[j * S + j];
                    r += (dj < di) || (dj == di && j < i);
                }
                rank[i] = r;
                w[w0 + r] = mb_scale2(di, ex);
                if (vectors) {
                    int big = 0;
                    T bv = mb_abs(V[i]);
                    for (int row = 1; row < n; ++row) {
                        const T x = mb_abs(V[row * S + i]);
                        if (x > bv) {
                            bv = x;
                            big = row;
                        }
                    }
                    sgn[i] = V[big * S + i] < T(0) ? T(-1) : T(1);
                }
            }
        }
        mb_team_sync(team, tmask);
        if (idx >= 0 && vectors) {
            for (int e = tid; e < n * n; e += team) {
                const int row = e / n, i = e - row * n;
                v[a0 + (u64)row * n + (nan_out ? i : rank[i])] =
                    nan_out ? mb_nan(T(0)) : sgn[i] * V[row * S + i];
            }
        }
        mb_team_sync(team, tmask);
    }
}

extern "C" __global__ void eigh_jacobi_f32(MbEighArgs p) { mb_eigh_jacobi<float>(p); }
extern "C" __global__ void eigh_jacobi_f64(MbEighArgs p) { mb_eigh_jacobi<double>(p); }
