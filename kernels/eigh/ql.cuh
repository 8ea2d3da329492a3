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
    return __shfl_sync(mask, mb_pick<NC>(c, i / G), i % G, G);
}

// Sets element i of a lane-spread vector (only its owner lane stores).
template <int G, int NC, typename T>
__device__ __forceinline__ void mb_lv_set(T (&c)[NC], int i, T x, int r) {
    if (r == i % G) mb_put<NC>(c, i / G, x);
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

// Eigenvalues of the tridiagonal (d, e) into d (unordered); with VEC, every rotation is
// applied to the row `zrow` (null when this lane owns no row). False if an eigenvalue took
// more than 30 iterations (LAPACK's cap), true otherwise. All lanes of the group must call.
template <typename T, int NC, int G, bool VEC>
__device__ bool mb_tridiag_ql(T (&d)[NC], T (&e)[NC], int n, int r, int gbase, unsigned int mask,
                              T* zrow) {
    const T eps = mb_ulp(T(0));
    // The CPU backend's floor (`negligible_floor`): off-diagonals below SAFE_MIN / eps are
    // dropped, so no rotation is built in subnormal arithmetic.
    T tst1 = mb_safe_min(T(0)) / (eps * eps);
    T f = T(0);
    for (int l = 0; l < n; ++l) {
        {
            const T dl = mb_lv_get<G, NC>(d, l, mask), el = mb_lv_get<G, NC>(e, l, mask);
            tst1 = fmax(tst1, mb_abs(dl) + mb_abs(el));
        }
        const int m = mb_first_negligible<G, NC>(e, l, n, eps * tst1, r, gbase, mask);
        if (m > l) {
            for (int iter = 1;; ++iter) {
                if (iter > 30) return false;
                // Shift from the leading 2x2 block, then chase the bulge from m up to l.
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
                f += h;
                p = mb_lv_get<G, NC>(d, m, mask);
                // The chase reads each d[i], e[i] before any rotation writes it: take them
                // from copies, so the shuffles do not wait on the rotation chain.
                T dsnap[NC], esnap[NC];
#pragma unroll
                for (int c = 0; c < NC; ++c) {
                    dsnap[c] = d[c];
                    esnap[c] = e[c];
                }
                T c = T(1), c2 = T(1), c3 = T(1), s = T(0), s2 = T(0);
                T carry = T(0);
                if (VEC && zrow) carry = zrow[m];
                for (int i = m - 1; i >= l; --i) {
                    const T ei = mb_lv_get<G, NC>(esnap, i, mask);
                    const T di = mb_lv_get<G, NC>(dsnap, i, mask);
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    const T gi = c * ei;
                    const T hi = c * p;
                    T ri, cn, sn;
                    mb_givens(p, ei, &ri, &cn, &sn);
                    mb_lv_set<G, NC>(e, i + 1, s * ri, r);
                    s = sn;
                    c = cn;
                    p = c * di - s * gi;
                    mb_lv_set<G, NC>(d, i + 1, hi + s * (c * gi + s * di), r);
                    if (VEC && zrow) {
                        const T zi = zrow[i];
                        zrow[i + 1] = s * zi + c * carry;
                        carry = c * zi - s * carry;
                    }
                }
                if (VEC && zrow) zrow[l] = carry;
                p = -s * s2 * c3 * el1 * el / dl1;
                mb_lv_set<G, NC>(e, l, s * p, r);
                mb_lv_set<G, NC>(d, l, c * p, r);
                if (mb_abs(s * p) <= eps * tst1) break;
            }
        }
        const T dl = mb_lv_get<G, NC>(d, l, mask);
        mb_lv_set<G, NC>(d, l, dl + f, r);
        mb_lv_set<G, NC>(e, l, T(0), r);
    }
    return true;
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
