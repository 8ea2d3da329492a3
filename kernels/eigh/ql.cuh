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

// Rotation sinks of the chase: `room(l, m)` before a chase of rotations m - 1 .. l (false:
// the sink is full, QL pauses before the chase and resumes there), `begin(m)` before the first
// rotation, `prefetch(i)` at the top of the step that rotates (i + 1, i + 2) (so loads for
// rotation i are in flight while the chain computes), `apply(i, c, s)` for the rotation of
// columns (i, i + 1), `end(l)` after the last. NoRotation: eigenvalues only.
template <typename T>
struct MbNoRotation {
    __device__ __forceinline__ bool room(int, int) const { return true; }
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
    __device__ __forceinline__ bool room(int, int) const { return true; }
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
    __device__ __forceinline__ bool room(int, int) const { return true; }
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

// The tridiagonal matrix QL works on, spread over the G lanes of a group: element i of d and e
// is chunk i / G of lane i % G, read by shuffles (every lane of the group takes part), written
// by its owner lane. `old_*` read the copy `snapshot` took before a chase.
template <typename T, int NC, int G>
struct MbLaneTridiag {
    T d[NC], e[NC], d0[NC], e0[NC];
    int r, gbase;
    unsigned int mask;
    __device__ __forceinline__ T get_d(int i) const { return mb_lv_get<G, NC>(d, i, mask); }
    __device__ __forceinline__ T get_e(int i) const { return mb_lv_get<G, NC>(e, i, mask); }
    __device__ __forceinline__ T old_d(int i) const { return mb_lv_get<G, NC>(d0, i, mask); }
    __device__ __forceinline__ T old_e(int i) const { return mb_lv_get<G, NC>(e0, i, mask); }
    __device__ __forceinline__ void set_d(int i, T x) { mb_lv_set<G, NC>(d, i, x, r); }
    __device__ __forceinline__ void set_e(int i, T x) { mb_lv_set<G, NC>(e, i, x, r); }
    __device__ __forceinline__ void sync() {}
    __device__ __forceinline__ void snapshot(int, int) {
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            d0[c] = d[c];
            e0[c] = e[c];
        }
    }
    __device__ __forceinline__ int first_negligible(int l, int n, T thr) const {
        return mb_first_negligible<G, NC>(e, l, n, thr, r, gbase, mask);
    }
    // d[l] = dl, d[l + 1] = dl1, d[i] -= h for i >= l + 2.
    __device__ __forceinline__ void shift(int l, int n, T dl, T dl1, T h) {
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            const int i = c * G + r;
            if (i == l) d[c] = dl;
            else if (i == l + 1) d[c] = dl1;
            else if (i >= l + 2 && i < n) d[c] -= h;
        }
    }
};

// The same in shared memory private to one full warp (the block classes' chain warp): reads
// are broadcasts and lane 0 writes. A chase reads its inputs from a copy (d0, e0) taken before
// it, since without a barrier per step a lane may still be reading an element that lane 0,
// steps ahead, has rewritten. Cheaper than register chunks once n > 32.
template <typename T>
struct MbSharedTridiag {
    T* d;
    T* e;
    T* d0;
    T* e0;
    int lane;
    __device__ __forceinline__ T get_d(int i) const { return d[i]; }
    __device__ __forceinline__ T get_e(int i) const { return e[i]; }
    __device__ __forceinline__ T old_d(int i) const { return d0[i]; }
    __device__ __forceinline__ T old_e(int i) const { return e0[i]; }
    __device__ __forceinline__ void set_d(int i, T x) {
        if (lane == 0) d[i] = x;
    }
    __device__ __forceinline__ void set_e(int i, T x) {
        if (lane == 0) e[i] = x;
    }
    __device__ __forceinline__ void sync() { __syncwarp(); }
    __device__ __forceinline__ void snapshot(int l, int m) {
        for (int i = l + lane; i <= m; i += 32) {
            d0[i] = d[i];
            e0[i] = e[i];
        }
        __syncwarp();
    }
    __device__ __forceinline__ int first_negligible(int l, int n, T thr) const {
        for (int base = l & ~31;; base += 32) {
            const int i = base + lane;
            const bool hit = i >= l && i < n && (i == n - 1 || mb_abs(e[i]) <= thr);
            const unsigned int bits = __ballot_sync(0xffffffffu, hit);
            if (bits) return base + __ffs(bits) - 1;
        }
    }
    __device__ __forceinline__ void shift(int l, int n, T dl, T dl1, T h) {
        for (int i = l + lane; i < n; i += 32) {
            if (i == l) d[i] = dl;
            else if (i == l + 1) d[i] = dl1;
            else d[i] -= h;
        }
        __syncwarp();
    }
};

// The tridiagonal matrix of one lane's own matrix (the chains kernel: one QL chain per lane),
// in shared memory column-wise: element i at d[32 i] (consecutive lanes, consecutive words, so
// lanes at different i never share a bank). Sequential within the lane, as JAMA's tql2: no
// copy before a chase and no barrier.
// STRIDE 1: one thread's chain over contiguous d, e (the split classes' fallback).
template <typename T, int STRIDE = 32>
struct MbColumnTridiag {
    T* d;
    T* e;
    __device__ __forceinline__ T get_d(int i) const { return d[STRIDE * i]; }
    __device__ __forceinline__ T get_e(int i) const { return e[STRIDE * i]; }
    __device__ __forceinline__ T old_d(int i) const { return d[STRIDE * i]; }
    __device__ __forceinline__ T old_e(int i) const { return e[STRIDE * i]; }
    __device__ __forceinline__ void set_d(int i, T x) { d[STRIDE * i] = x; }
    __device__ __forceinline__ void set_e(int i, T x) { e[STRIDE * i] = x; }
    __device__ __forceinline__ void sync() {}
    __device__ __forceinline__ void snapshot(int, int) {}
    __device__ __forceinline__ int first_negligible(int l, int n, T thr) const {
        int m = l;
        while (m + 1 < n && mb_abs(e[STRIDE * m]) > thr) ++m;
        return m;
    }
    __device__ __forceinline__ void shift(int l, int n, T dl, T dl1, T h) {
        d[STRIDE * l] = dl;
        d[STRIDE * (l + 1)] = dl1;
        for (int i = l + 2; i < n; ++i) d[STRIDE * i] -= h;
    }
};

// Records one lane's chases into its own list in global memory, `cap` words: per chase m and
// l (exact as T), then (c, s) of rotations m - 1 down to l; `used` words so far.
template <typename T>
struct MbRecordChain {
    T* cs;
    int used, cap, at;
    __device__ __forceinline__ bool room(int l, int m) const { return used + 2 * (m - l + 1) <= cap; }
    __device__ __forceinline__ void begin(int m) {
        cs[used] = T(m);
        at = used + 2;
    }
    __device__ __forceinline__ void prefetch(int) {}
    __device__ __forceinline__ void apply(int, T c, T s) {
        cs[at] = c;
        cs[at + 1] = s;
        at += 2;
    }
    __device__ __forceinline__ void end(int l) {
        cs[used + 1] = T(l);
        used = at;
    }
};

// The threads that replay a rotation list together: G lanes of a warp (`mask`, this lane's
// `rank` in the group), or the whole block.
template <int G>
struct MbLaneGroup {
    unsigned int mask;
    int rank;
    __device__ __forceinline__ int size() const { return G; }
    __device__ __forceinline__ void sync() const { __syncwarp(mask); }
};

struct MbBlockGroup {
    __device__ __forceinline__ int size() const { return blockDim.x; }
    __device__ __forceinline__ void sync() const { __syncthreads(); }
    int rank;
};

// Replays the first `words` words of a rotation list recorded by MbRecordChain (at `cs`, in
// global memory) on row z of Q (owner: this thread holds a row), the arithmetic of
// MbRotateRow written out: the loop as measured on the H200 (docs/benchmarks/
// eigh-chains-h200.md). The group copies the list into `stage` (`stage_len` words, even) a
// chunk at a time (coalesced, all loads in flight together), since read one rotation at a
// time from global memory each would wait on L2 latency. Every thread of the group calls.
template <typename T, typename Group>
__device__ __forceinline__ void mb_replay_list(const T* cs, int words, T* z, bool owner,
                                               T* stage, int stage_len, const Group& g) {
    int i = 0, l = 0;
    bool chasing = false;
    T carry = T(0);
    for (int base = 0; base < words; base += stage_len) {
        const int len = min(stage_len, words - base);
        g.sync();
        for (int k = g.rank; k < len; k += g.size()) stage[k] = cs[base + k];
        g.sync();
        for (int k = 0; k < len;) {
            if (!chasing) {
                const int m = (int)stage[k];
                l = (int)stage[k + 1];
                k += 2;
                i = m - 1;
                if (owner) carry = z[m];
                chasing = true;
            }
            for (; i >= l && k < len; --i, k += 2) {
                const T c = stage[k], sn = stage[k + 1];
                if (owner) {
                    const T zi = z[i];
                    z[i + 1] = sn * zi + c * carry;
                    carry = c * zi - sn * carry;
                }
            }
            if (i < l) {
                if (owner) z[l] = carry;
                chasing = false;
            }
        }
    }
}

// One QL iteration's shift, from the leading 2x2 block of the unreduced block starting at l:
// sets d[l], d[l + 1] as JAMA's tql2 does and subtracts the shift from d[l + 2 ..]; returns
// the shift, and e[l], e[l + 1] and the new d[l + 1], which the iteration's end needs.
template <typename T, typename Tri>
__device__ __forceinline__ T mb_ql_shift(Tri& tri, int l, int n, T* el, T* el1, T* dl1) {
    const T g = tri.get_d(l);
    *el = tri.get_e(l);
    *el1 = tri.get_e(l + 1);
    const T p = (tri.get_d(l + 1) - g) / (T(2) * *el);
    // sqrt(p^2 + 1), without overflow where p^2 would lose the 1 anyway.
    T rr = mb_abs(p) < T(1) / mb_sqrt(mb_ulp(T(0))) ? mb_sqrt(p * p + T(1)) : mb_abs(p);
    if (p < T(0)) rr = -rr;
    const T dl = *el / (p + rr);
    *dl1 = *el * (p + rr);
    // Every lane has read before lane 0 writes (shared storage).
    tri.sync();
    tri.shift(l, n, dl, *dl1, g - dl);
    return g - dl;
}

// Runs QL on the tridiagonal `t` up to and through its next bulge chase, handing every
// rotation to `rot`. Returns 1 after a chase, 0 once every eigenvalue has converged (t's d
// then holds them, unordered), -1 if one took more than 30 iterations (LAPACK's cap), 2 if
// `rot` has no room for the next chase (nothing changed: call again once it has). All
// lanes of the group call with the same state. JAMA's tql2 step by step, with the chain
// rearranged so that each rotation waits on one reciprocal square root: with t = p^2 + e_i^2
// and u = 1 / sqrt(t), c = p u, s = e_i u, and the next p = (p d_i - e_i g) u. AHEAD: the
// chase reads d, e one step ahead and is unrolled twice (pays on long chases only).
template <typename T, bool AHEAD, typename Tri, typename Rot>
__device__ int mb_ql_next(MbQl<T>& q, Tri& tri, int n, Rot& rot) {
    const T eps = mb_ulp(T(0));
    const T lo = mb_safe_min(T(0)) / eps;
    for (;;) {
        tri.sync();
        const int l = q.l;
        if (l >= n) return 0;
        if (q.iter == 0) {
            const T dl = tri.get_d(l), el = tri.get_e(l);
            q.tst1 = fmax(q.tst1, mb_abs(dl) + mb_abs(el));
            q.m = tri.first_negligible(l, n, eps * q.tst1);
            // Every lane has read before lane 0 writes (shared storage).
            tri.sync();
            if (q.m == l) {
                tri.set_d(l, dl + q.f);
                tri.set_e(l, T(0));
                ++q.l;
                continue;
            }
        }
        if (!rot.room(l, q.m)) return 2;
        if (++q.iter > 30) return -1;
        const int m = q.m;
        T el, el1, dl1;
        q.f += mb_ql_shift(tri, l, n, &el, &el1, &dl1);
        T p = tri.get_d(m);
        // The chase reads each d[i], e[i] before any rotation writes it.
        tri.snapshot(l, m);
        T c = T(1), c2 = T(1), c3 = T(1), s = T(0), s2 = T(0);
        auto step = [&](int i, T ei, T di) {
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
            tri.set_e(i + 1, s * ri);
            const T x = fma(p, di, -(ei * gi));
            c = p * u;
            s = ei * u;
            p = x * u;
            tri.set_d(i + 1, hi + s * fma(c, gi, s * di));
            rot.apply(i, c, s);
        };
        rot.begin(m);
        if (AHEAD) {
            // Shuffles one step ahead, so they do not wait on the rotation chain.
            T ei = tri.old_e(m - 1), di = tri.old_d(m - 1);
#pragma unroll 2
            for (int i = m - 1; i >= l; --i) {
                const int in = i > l ? i - 1 : l;
                const T ein = tri.old_e(in), din = tri.old_d(in);
                rot.prefetch(in);
                step(i, ei, di);
                ei = ein;
                di = din;
            }
        } else {
            for (int i = m - 1; i >= l; --i) {
                rot.prefetch(i > l ? i - 1 : l);
                step(i, tri.old_e(i), tri.old_d(i));
            }
        }
        rot.end(l);
        p = -s * s2 * c3 * el1 * el / dl1;
        tri.set_e(l, s * p);
        tri.set_d(l, c * p);
        if (mb_abs(s * p) <= eps * q.tst1) {
            tri.set_d(l, c * p + q.f);
            tri.set_e(l, T(0));
            ++q.l;
            q.iter = 0;
        }
        return 1;
    }
}

// The Givens rotation of the nested-loop chase: r = hypot(p, e), c = p / r, s = e / r, with
// CUDA's rsqrt where p^2 + e^2 neither lost bits to underflow nor overflowed, libm's hypot
// and two divisions otherwise.
template <typename T>
__device__ __forceinline__ void mb_givens(T p, T e, T* r, T* c, T* s) {
    const T t = p * p + e * e;
    const T lo = mb_safe_min(T(0)) / mb_eps(T(0));
    if (t >= lo && t <= T(1) / lo) {
        const T inv = mb_rsqrt(t);
        *r = t * inv;
        *c = p * inv;
        *s = e * inv;
    } else {
        const T h = mb_hypot(p, e);
        *r = h;
        *c = p / h;
        *s = e / h;
    }
}

// The same QL as `mb_ql_next`, as JAMA's nested loops with the rotations of each chase
// applied to `zrow` inline. For groups of up to 16 lanes (orders <= 16), whose chases are a
// few rotations long: there the per-chase bookkeeping of the resumable form, and reading
// ahead, cost more than they save (measured on the H200: 15-20% at n = 4-16,
// docs/benchmarks/eigh-classes-h200.md).
template <typename T, int NC, int G, bool VEC>
__device__ bool mb_tridiag_ql_nested(MbLaneTridiag<T, NC, G>& tri, int n, T* zrow) {
    const T eps = mb_ulp(T(0));
    T tst1 = mb_safe_min(T(0)) / (eps * eps);
    T f = T(0);
    for (int l = 0; l < n; ++l) {
        tst1 = fmax(tst1, mb_abs(tri.get_d(l)) + mb_abs(tri.get_e(l)));
        const int m = tri.first_negligible(l, n, eps * tst1);
        if (m > l) {
            for (int iter = 1;; ++iter) {
                if (iter > 30) return false;
                T el, el1, dl1;
                f += mb_ql_shift(tri, l, n, &el, &el1, &dl1);
                T p = tri.get_d(m);
                tri.snapshot(l, m);
                T c = T(1), c2 = T(1), c3 = T(1), s = T(0), s2 = T(0);
                T carry = T(0);
                if (VEC && zrow) carry = zrow[m];
                for (int i = m - 1; i >= l; --i) {
                    const T ei = tri.old_e(i);
                    const T di = tri.old_d(i);
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    const T gi = c * ei;
                    const T hi = c * p;
                    T ri, cn, sn;
                    mb_givens(p, ei, &ri, &cn, &sn);
                    tri.set_e(i + 1, s * ri);
                    s = sn;
                    c = cn;
                    p = c * di - s * gi;
                    tri.set_d(i + 1, hi + s * (c * gi + s * di));
                    if (VEC && zrow) {
                        const T zi = zrow[i];
                        zrow[i + 1] = s * zi + c * carry;
                        carry = c * zi - s * carry;
                    }
                }
                if (VEC && zrow) zrow[l] = carry;
                p = -s * s2 * c3 * el1 * el / dl1;
                tri.set_e(l, s * p);
                tri.set_d(l, c * p);
                if (mb_abs(s * p) <= eps * tst1) break;
            }
        }
        tri.set_d(l, tri.get_d(l) + f);
        tri.set_e(l, T(0));
    }
    return true;
}

// Eigenvalues of `tri` into its d, every rotation applied to the row `zrow` (null: none).
// False if QL did not converge. All lanes of the group must call.
template <typename T, bool VEC, bool AHEAD, typename Tri>
__device__ bool mb_tridiag_ql(Tri& tri, int n, T* zrow) {
    MbQl<T> q = mb_ql_start<T>();
    int state;
    if (VEC) {
        MbRotateRow<T> rot;
        rot.z = zrow;
        while ((state = mb_ql_next<T, AHEAD>(q, tri, n, rot)) > 0) {
        }
    } else {
        MbNoRotation<T> rot;
        while ((state = mb_ql_next<T, AHEAD>(q, tri, n, rot)) > 0) {
        }
    }
    tri.sync();
    return state == 0;
}

// Position of eigenvalue t (owned by this lane: chunk t / G) in ascending order, ties by
// index; every lane of the group must call (t >= n gives garbage, unused).
template <typename T, int NC, int G>
__device__ __forceinline__ int mb_rank(const MbLaneTridiag<T, NC, G>& tri, int t, int n) {
    const T dt = mb_pick<NC>(tri.d, t / G);
    int rank = 0;
    for (int j = 0; j < n; ++j) {
        const T dj = tri.get_d(j);
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
