// Shared by the eigh kernels (kernels/eigh/*.cu): per-type constants and math, the launch
// argument block, and where a matrix of a uniform or ragged batch lives.

// Where the dynamic shared memory of a kernel is declared; a CPU emulation of these kernels
// (scripts/cuda_emu) defines it first to hand out its own per-block buffer.
#ifndef MB_DYNAMIC_SHARED
#define MB_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

__device__ __forceinline__ double mb_abs(double x) { return fabs(x); }
__device__ __forceinline__ float mb_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double mb_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float mb_sqrt(float x) { return sqrtf(x); }
// 1 ulp (f64) / 2 ulp (f32): the Givens rotations of QL take c = p / r, s = e / r from it.
__device__ __forceinline__ double mb_rsqrt(double x) { return rsqrt(x); }
__device__ __forceinline__ float mb_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ double mb_hypot(double x, double y) { return hypot(x, y); }
__device__ __forceinline__ float mb_hypot(float x, float y) { return hypotf(x, y); }
__device__ __forceinline__ double mb_copysign(double x, double y) { return copysign(x, y); }
__device__ __forceinline__ float mb_copysign(float x, float y) { return copysignf(x, y); }
__device__ __forceinline__ double mb_scale2(double x, int e) { return scalbn(x, e); }
__device__ __forceinline__ float mb_scale2(float x, int e) { return scalbnf(x, e); }
__device__ __forceinline__ int mb_exponent(double x) { int e; frexp(x, &e); return e; }
__device__ __forceinline__ int mb_exponent(float x) { int e; frexpf(x, &e); return e; }
// Unit roundoff (half the machine epsilon), as LAPACK's dlamch('E').
__device__ __forceinline__ double mb_eps(double) { return 1.1102230246251565e-16; }
__device__ __forceinline__ float mb_eps(float) { return 5.9604645e-8f; }
// Machine epsilon (the spacing of floats at 1), the QL deflation test's epsilon as in JAMA's
// tql2 and the CPU backend.
__device__ __forceinline__ double mb_ulp(double) { return 2.220446049250313e-16; }
__device__ __forceinline__ float mb_ulp(float) { return 1.1920929e-7f; }
// Smallest normal number, LAPACK's dlamch('S').
__device__ __forceinline__ double mb_safe_min(double) { return 2.2250738585072014e-308; }
__device__ __forceinline__ float mb_safe_min(float) { return 1.17549435e-38f; }
__device__ __forceinline__ double mb_nan(double) { return __longlong_as_double(0x7ff8000000000000ll); }
__device__ __forceinline__ float mb_nan(float) { return __int_as_float(0x7fc00000); }
// Bit patterns of non-negative floats order like the values, so atomicMax on them is a max.
__device__ __forceinline__ u64 mb_abs_bits(double x) { return (u64)__double_as_longlong(fabs(x)); }
__device__ __forceinline__ u64 mb_abs_bits(float x) { return (u64)__float_as_uint(fabsf(x)); }
__device__ __forceinline__ double mb_from_bits(u64 b, double) { return __longlong_as_double((long long)b); }
__device__ __forceinline__ float mb_from_bits(u64 b, float) { return __uint_as_float((unsigned int)b); }
// Whether x is neither NaN nor infinite (x - x is NaN exactly then).
template <typename T> __device__ __forceinline__ bool mb_finite(T x) { return x - x == T(0); }

// One launch's arguments, passed by value as a single kernel parameter. Mirrored field for
// field by `EighArgs` in backends/cuda/eigh.rs (the NVRTC test checks the size).
struct MbEighArgs {
    u64 a;        // input matrices (T), row-major, lower triangles read
    u64 w;        // eigenvalues (T)
    u64 v;        // eigenvectors (T), 0 for values only
    u64 a_start;  // ragged: element offset of each matrix (u64), 0 for a uniform batch
    u64 w_start;  // ragged: element offset of each matrix's eigenvalues (u64)
    u64 order;    // ragged: order of each matrix (i32)
    u64 list;     // matrix indices (i32) this launch takes, 0 for 0..count in order
    u64 gwork;    // Jacobi: global workspace (0: shared memory); chains: rotation lists, a word per element of A; split: split.cu's workspace
    u64 status;   // 2 x i32: first non-finite matrix, first unconverged matrix (atomicMin)
    u64 info;     // i32 per matrix of the batch: MB_EIGH_* status, written for every matrix a launch takes
    int count;    // matrices in this launch
    int uniform_n;
    int nmax;     // largest (Jacobi: padded) order in this launch
    int team;     // Jacobi: threads per matrix; chains: matrices per block
    int vectors;  // Jacobi only: 1 with eigenvectors (the other kernels take it as a template)
    int phase;    // split replay: 1 on the last round (finish paused chains in the block); dc: the wave
    int layout;   // dc: MB_DC_*_GLOBAL bits, the steps whose per-order vectors live in the slot
};

// Per-matrix status codes in MbEighArgs::info (crate::EIGH_SOLVED and the others in
// src/eigh/mod.rs): cuSOLVER's batched `info`, one int per matrix.
#define MB_EIGH_SOLVED 0
#define MB_EIGH_NON_FINITE 1
#define MB_EIGH_NO_CONVERGENCE 2

// Records matrix idx's status (one thread per matrix calls it).
__device__ __forceinline__ void mb_set_info(const MbEighArgs& p, int idx, int code) {
    if (p.info && idx >= 0) ((int*)p.info)[idx] = code;
}

// The status of a matrix from its input test and its iteration.
__device__ __forceinline__ int mb_info_code(bool bad, bool failed) {
    return bad ? MB_EIGH_NON_FINITE : (failed ? MB_EIGH_NO_CONVERGENCE : MB_EIGH_SOLVED);
}

// One matrix of the batch: its index (-1 for none), order and element offsets.
struct MbMatrix {
    int idx;
    int n;
    u64 a0;
    u64 w0;
};

__device__ __forceinline__ MbMatrix mb_matrix(const MbEighArgs& p, int pos) {
    MbMatrix m;
    m.idx = -1;
    m.n = 0;
    m.a0 = 0;
    m.w0 = 0;
    if (pos < p.count) {
        m.idx = p.list ? ((const int*)p.list)[pos] : pos;
        if (p.order) {
            m.n = ((const int*)p.order)[m.idx];
            m.a0 = ((const u64*)p.a_start)[m.idx];
            m.w0 = ((const u64*)p.w_start)[m.idx];
        } else {
            m.n = p.uniform_n;
            m.a0 = (u64)m.idx * (u64)m.n * (u64)m.n;
            m.w0 = (u64)m.idx * (u64)m.n;
        }
    }
    return m;
}

// Reads the lower triangle of the n x n row-major matrix at a into M (row stride S), thread
// `tid` of `threads` taking every threads-th element (coalesced); with `mirror` also into the
// upper triangle. Sets *bad if an element read is NaN or infinite, *amax to the largest
// magnitude this thread read (reduce both over the threads afterwards).
template <typename T>
__device__ __forceinline__ void mb_load_lower(const T* a, int n, int tid, int threads, T* M, int S,
                                              bool mirror, bool* bad, T* amax) {
    for (int e = tid; e < n * n; e += threads) {
        const int i = e / n, j = e - i * n;
        if (j <= i) {
            const T x = a[e];
            *bad |= !mb_finite(x);
            *amax = fmax(*amax, mb_abs(x));
            M[i * S + j] = x;
            if (mirror) M[j * S + i] = x;
        }
    }
}
