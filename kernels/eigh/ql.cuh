// The symmetric tridiagonal eigenproblem by implicit QL with Wilkinson-style shifts (EISPACK
// tql2 in JAMA's form, the CPU backend's `implicit_ql`), for a group of G lanes (G a power of
// two <= 32) that holds the tridiagonal matrix spread over its lanes: element i of d (diagonal)
// and e (e[i] couples i and i + 1, e[n - 1] = 0) is chunk i / G of lane i % G. Every lane of
// the group computes the same rotations (reading d and e by shuffles), so there is no barrier;
// each lane that owns a row of the eigenvector matrix Z applies every rotation to that row.
//
// Used by the warp-class kernels (one group per matrix, NC = 1) and the block-class kernels
// (every warp of the block runs the same chain, NC = ceil(n / 32) chunks per lane).

// Element k of a register array, with k the same in every lane: a select chain instead of a
// run-time index (which would move the array to local memory).
template <int NC, typename T>
__device__ __forceinline__ T mb_pick(const T (&c)[NC], int k) {
    T x = c[0];
#pragma unroll
    for (int j = 1; j < NC; ++j) x = (k == j) ? c[j] : x;
    return x;
}

template <int NC, typename T>
__device__ __forceinline__ void mb_put(T (&c)[NC], int k, T x) {
#pragma unroll
    for (int j = 0; j < NC; ++j)
        if (k == j) c[j] = x;
}

// Element i of a lane-spread vector, in every lane of the group.
template <int G, int NC, typename T>
__device__ __forceinline__ T mb_lv_get(const T (&c)[NC], int i, unsigned int mask) {
    // i >= 0: unsigned division and remainder are a shift and a mask.
    const unsigned int u = (unsigned int)i;
    return __shfl_sync(mask, mb_pick<NC>(c, (int)(u / G)), (int)(u % G), G);
}

// Sets element i of a lane-spread vector (only its owner lane stores).
template <int G, int NC, typename T>
__device__ __forceinline__ void mb_lv_set(T (&c)[NC], int i, T x, int r) {
    const unsigned int u = (unsigned int)i;
    if ((unsigned int)r == u % G) mb_put<NC>(c, (int)(u / G), x);
}

// The first m >= l with e[m] negligible (|e[m]| <= thr), or n - 1: one ballot per chunk.
template <int G, int NC, typename T>
__device__ __forceinline__ int mb_first_negligible(const T (&e)[NC], int l, int n, T thr, int r,
                                                   int gbase, unsigned int mask) {
    int m = n - 1;
#pragma unroll
    for (int c = NC - 1; c >= 0; --c) {
        const int i = c * G + r;
        const bool hit = i >= l && i < n && (i == n - 1 || mb_abs(e[c]) <= thr);
        const unsigned int bits = __ballot_sync(mask, hit) >> gbase;
        if (bits) m = c * G + __ffs(bits) - 1;
    }
    return m;
}

// 1 / sqrt(t) for the rotations of the chase: the multifunction unit's approximation, for f64
// refined by one third-order Newton step (as CUDA's rsqrt, without its special-case branch:
// callers pass only t in [SAFE_MIN / eps, eps / SAFE_MIN]). f32: the approximation alone
// (relative error about 2^-23, as rsqrtf).
__device__ __forceinline__ double mb_rsqrt_fast(double t) {
#ifdef __CUDA_ARCH__
    double y;
    asm("rsqrt.approx.ftz.f64 %0, %1;" : "=d"(y) : "d"(t));
    const double r = fma(-t * y, y, 1.0);
    return fma(y * r, fma(0.375, r, 0.5), y);
#else
    return 1.0 / sqrt(t);
#endif
}
__device__ __forceinline__ float mb_rsqrt_fast(float t) {
#ifdef __CUDA_ARCH__
    float y;
    asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(t));
    return y;
#else
    return 1.0f / sqrtf(t);
#endif
}

// Where the QL of one matrix stands between two bulge chases.
template <typename T>
struct MbQl {
    int l;     // the eigenvalue being converged
    int m;     // end of its unreduced block
    int iter;  // iterations on it so far (0: not started)
    T f;       // accumulated shift
    T tst1;    // deflation scale
};

template <typename T>
__device__ __forceinline__ MbQl<T> mb_ql_start() {
    const T eps = mb_ulp(T(0));
    MbQl<T> q;
    q.l = 0;
    q.m = 0;
    q.iter = 0;
    q.f = T(0);
    // The CPU backend's floor (`negligible_floor`): off-diagonals below SAFE_MIN / eps are
    // dropped, so no rotation is built in subnormal arithmetic.
    q.tst1 = mb_safe_min(T(0)) / (eps * eps);
    return q;
}

// Rotation sinks of the chase: `begin(m)` before the first rotation, `prefetch(i)` at the top
// of the step that rotates (i + 1, i + 2) (so loads for rotation i are in flight while the
// chain computes), `apply(i, c, s)` for the rotation of columns (i, i + 1), `end(l)` after the
// last. NoRotation: eigenvalues only.
template <typename T>
struct MbNoRotation {
    __device__ __forceinline__ void begin(int) {}
    __device__ __forceinline__ void prefetch(int) {}
    __device__ __forceinline__ void apply(int, T, T) {}
    __device__ __forceinline__ void end(int) {}
};

// Rotates one row of Z (row-major, `z` its first element; null: this lane owns no row):
// Z[:, i], Z[:, i + 1] <- c Z[:, i] - s Z[:, i + 1], s Z[:, i] + c Z[:, i + 1], carrying
// column i + 1 in a register down the chase as EISPACK tql2 does.
template <typename T>
struct MbRotateRow {
    T* z;
    T carry, zi, znext;
    __device__ __forceinline__ void begin(int m) {
        if (z) {
            carry = z[m];
            zi = z[m - 1];
        }
    }
    __device__ __forceinline__ void prefetch(int i) {
        if (z) znext = z[i];
    }
    __device__ __forceinline__ void apply(int i, T c, T s) {
        if (z) {
            z[i + 1] = s * zi + c * carry;
            carry = c * zi - s * carry;
            zi = znext;
        }
    }
    __device__ __forceinline__ void end(int l) {
        if (z) z[l] = carry;
    }
};

// Records a chase for other warps to apply: (c, s) of rotation i at cs[2 i], cs[2 i + 1], the
// chase's (l, m) in hdr (lane 0 of the chain warp writes; the block barrier publishes).
template <typename T>
struct MbRecordRotations {
    T* cs;
    int* hdr;
    int lane;
    __device__ __forceinline__ void begin(int m) {
        if (lane == 0) hdr[1] = m;
    }
    __device__ __forceinline__ void prefetch(int) {}
    __device__ __forceinline__ void apply(int i, T c, T s) {
        if (lane == 0) {
            cs[2 * i] = c;
            cs[2 * i + 1] = s;
        }
    }
    __device__ __forceinline__ void end(int l) {
        if (lane == 0) hdr[0] = l;
    }
};

// Runs QL on the lane-spread tridiagonal (d, e) up to and through its next bulge chase,
// handing every rotation to `rot`. Returns 1 after a chase, 0 once every eigenvalue has
// converged (d then holds them, unordered), -1 if one took more than 30 iterations (LAPACK's
// cap). All lanes of the group call with the same state. JAMA's tql2 step by step, with the
// chain rearranged so that each rotation waits on one reciprocal square root: with
// t = p^2 + e_i^2 and u = 1 / sqrt(t), c = p u, s = e_i u, and the next p = (p d_i - e_i g) u.
template <typename T, int NC, int G, typename Rot>
__device__ int mb_ql_next(MbQl<T>& q, T (&d)[NC], T (&e)[NC], int n, int r, int gbase,
                          unsigned int mask, Rot& rot) {
    const T eps = mb_ulp(T(0));
    const T lo = mb_safe_min(T(0)) / eps;
    for (;;) {
        const int l = q.l;
        if (l >= n) return 0;
        if (q.iter == 0) {
            const T dl = mb_lv_get<G, NC>(d, l, mask), el = mb_lv_get<G, NC>(e, l, mask);
            q.tst1 = fmax(q.tst1, mb_abs(dl) + mb_abs(el));
            q.m = mb_first_negligible<G, NC>(e, l, n, eps * q.tst1, r, gbase, mask);
            if (q.m == l) {
                mb_lv_set<G, NC>(d, l, dl + q.f, r);
                mb_lv_set<G, NC>(e, l, T(0), r);
                ++q.l;
                continue;
            }
        }
        if (++q.iter > 30) return -1;
        const int m = q.m;
        // Shift from the leading 2x2 block.
        const T g = mb_lv_get<G, NC>(d, l, mask);
        const T el = mb_lv_get<G, NC>(e, l, mask);
        const T el1 = mb_lv_get<G, NC>(e, l + 1, mask);
        T p = (mb_lv_get<G, NC>(d, l + 1, mask) - g) / (T(2) * el);
        // sqrt(p^2 + 1), without overflow where p^2 would lose the 1 anyway.
        T rr = mb_abs(p) < T(1) / mb_sqrt(mb_ulp(T(0))) ? mb_sqrt(p * p + T(1)) : mb_abs(p);
        if (p < T(0)) rr = -rr;
        const T dl = el / (p + rr);
        const T dl1 = el * (p + rr);
        const T h = g - dl;
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            const int i = c * G + r;
            if (i == l) d[c] = dl;
            else if (i == l + 1) d[c] = dl1;
            else if (i >= l + 2 && i < n) d[c] -= h;
        }
        q.f += h;
        p = mb_lv_get<G, NC>(d, m, mask);
        // The chase reads each d[i], e[i] before any rotation writes it: take them from
        // copies, one step ahead, so the shuffles do not wait on the rotation chain.
        T dsnap[NC], esnap[NC];
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            dsnap[c] = d[c];
            esnap[c] = e[c];
        }
        T c = T(1), c2 = T(1), c3 = T(1), s = T(0), s2 = T(0);
        T ei = mb_lv_get<G, NC>(esnap, m - 1, mask);
        T di = mb_lv_get<G, NC>(dsnap, m - 1, mask);
        rot.begin(m);
#pragma unroll 2
        for (int i = m - 1; i >= l; --i) {
            const int in = i > l ? i - 1 : l;
            const T ein = mb_lv_get<G, NC>(esnap, in, mask);
            const T din = mb_lv_get<G, NC>(dsnap, in, mask);
            rot.prefetch(in);
            c3 = c2;
            c2 = c;
            s2 = s;
            const T gi = c * ei;
            const T hi = c * p;
            const T t = fma(p, p, ei * ei);
            T u, ri;
            if (t >= lo && t <= T(1) / lo) {
                u = mb_rsqrt_fast(t);
                ri = t * u;
            } else {
                ri = mb_hypot(p, ei);
                u = T(1) / ri;
            }
            mb_lv_set<G, NC>(e, i + 1, s * ri, r);
            const T x = fma(p, di, -(ei * gi));
            c = p * u;
            s = ei * u;
            p = x * u;
            mb_lv_set<G, NC>(d, i + 1, hi + s * fma(c, gi, s * di), r);
            rot.apply(i, c, s);
            ei = ein;
            di = din;
        }
        rot.end(l);
        p = -s * s2 * c3 * el1 * el / dl1;
        mb_lv_set<G, NC>(e, l, s * p, r);
        mb_lv_set<G, NC>(d, l, c * p, r);
        if (mb_abs(s * p) <= eps * q.tst1) {
            const T dlf = mb_lv_get<G, NC>(d, l, mask);
            mb_lv_set<G, NC>(d, l, dlf + q.f, r);
            mb_lv_set<G, NC>(e, l, T(0), r);
            ++q.l;
            q.iter = 0;
        }
        return 1;
    }
}

// Eigenvalues of (d, e) into d, every rotation applied to the row `zrow` (null: none). False
// if QL did not converge. All lanes of the group must call.
template <typename T, int NC, int G, bool VEC>
__device__ bool mb_tridiag_ql(T (&d)[NC], T (&e)[NC], int n, int r, int gbase, unsigned int mask,
                              T* zrow) {
    MbQl<T> q = mb_ql_start<T>();
    int state;
    if (VEC) {
        MbRotateRow<T> rot;
        rot.z = zrow;
        while ((state = mb_ql_next<T, NC, G>(q, d, e, n, r, gbase, mask, rot)) > 0) {
        }
    } else {
        MbNoRotation<T> rot;
        while ((state = mb_ql_next<T, NC, G>(q, d, e, n, r, gbase, mask, rot)) > 0) {
        }
    }
    return state == 0;
}

// Position of eigenvalue t (owned by this lane: chunk t / G) in ascending order, ties by
// index; every lane of the group must call (t >= n gives garbage, unused).
template <typename T, int NC, int G>
__device__ __forceinline__ int mb_rank(const T (&d)[NC], int t, int n, unsigned int mask) {
    const T dt = mb_pick<NC>(d, t / G);
    int rank = 0;
    for (int j = 0; j < n; ++j) {
        const T dj = mb_lv_get<G, NC>(d, j, mask);
        rank += (dj < dt) || (dj == dt && j < t);
    }
    return rank;
}

// Writes eigenvector t (column t of Z, rows 0..n-1, row stride S) as column `rank` of the
// row-major output at v, sign fixed so that its first largest-magnitude component is positive.
// Lanes that own consecutive columns write consecutive addresses of one output row.
template <typename T>
__device__ __forceinline__ void mb_store_vector(const T* Z, int S, int n, int t, int rank, T* v,
                                                bool bad) {
    if (bad) {
        for (int row = 0; row < n; ++row) v[(u64)row * n + t] = mb_nan(T(0));
        return;
    }
    T big = mb_abs(Z[t]);
    T sign = Z[t] < T(0) ? T(-1) : T(1);
    for (int row = 1; row < n; ++row) {
        const T x = Z[row * S + t];
        if (mb_abs(x) > big) {
            big = mb_abs(x);
            sign = x < T(0) ? T(-1) : T(1);
        }
    }
    for (int row = 0; row < n; ++row) v[(u64)row * n + rank] = sign * Z[row * S + t];
}
