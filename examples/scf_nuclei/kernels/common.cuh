// Shared definitions of the scf_nuclei kernels (one translation unit: cuda.rs prepends a
// header of #defines generated from the Rust constants, then this file, then one file per step).
//
// Layouts (examples/scf_nuclei/layout.rs): per-grid arrays `(i * 2 + s) * grid + q`; `v_coul`
// `i * grid + q`; `h`, `vecs` `block_h_off[b] + r * dim + c`; `energies`, `v2`
// `block_w_off[b] + c`; `delta`, `lambda` `i * 2 + s`; basis tables `row * grid + q`; `cum`
// `q * grid + p`. Units: fm, MeV, fm^-3 (see layout.rs). Everything is f64.
//
// The kernels are line-for-line ports of the "one thread's work" bodies of steps/*.rs, with
// the same formulas in the same order of operations (NVRTC may contract a * b + c into an FMA,
// which changes the last bit, not the result at 1e-8).

#define SCF_SPECIES 2u
#define SCF_PI 3.14159265358979323846
// 1 / (4 pi), as steps/mod.rs's INV_4PI.
#define SCF_INV_4PI (0.25 / SCF_PI)
#define SCF_INF __longlong_as_double(0x7ff0000000000000LL)
#define SCF_FULL_MASK 0xffffffffu

// The functional's coefficients, the fields of skyrme.rs's `Coefficients` in order (uploaded
// as 17 f64 by cuda.rs).
struct ScfCoefficients {
    double c0a, c0b, c3a, c3b, alpha, b0, b1, d0, d1, e0a, e0b, e3a, e3b, w0_half, hb, e2, slater;
};
static_assert(sizeof(ScfCoefficients) == 17 * 8, "ScfCoefficients mirrors skyrme.rs");

// l.sigma = l for j = l + 1/2, -(l + 1) for j = l - 1/2 (layout.rs's l_dot_sigma).
__device__ __forceinline__ double scf_l_dot_sigma(unsigned l, unsigned j2) {
    return j2 > 2u * l ? (double)l : -(double)(l + 1u);
}

// rho^(1/6) = sqrt(cbrt(rho)) (skyrme.rs's pow_sixth).
__device__ __forceinline__ double scf_pow_sixth(double rho) { return sqrt(cbrt(rho)); }

// Rust's f64::clamp(lo, hi): NaN stays NaN.
__device__ __forceinline__ double scf_clamp(double v, double lo, double hi) {
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
}

// Folds B, U, W (MeV fm^2, MeV, MeV fm) with the weight w at x (oscillator length b) into
// f_b, f_l, f_u, f_w at flat index `at` (fields.rs's `weighted`).
__device__ __forceinline__ void scf_store_weighted(double bq, double uq, double wq, double b,
                                                   double x, double w, unsigned at,
                                                   double* __restrict__ f_b,
                                                   double* __restrict__ f_l,
                                                   double* __restrict__ f_u,
                                                   double* __restrict__ f_w) {
    const double fb = w * bq / (b * b);
    f_b[at] = fb;
    f_l[at] = fb / (x * x);
    f_u[at] = w * uq;
    f_w[at] = w * wq / (b * x);
}

// Warp-wide sum, min and max by an XOR butterfly: every lane ends with the same bits (each
// step adds the same two values in either order, and IEEE addition commutes), so control flow
// that depends on the result stays uniform across the warp.
__device__ __forceinline__ double scf_warp_sum(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(SCF_FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ double scf_warp_min(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmin(v, __shfl_xor_sync(SCF_FULL_MASK, v, o));
    // fmin(+0, -0) may depend on the order: lane 0's value for all.
    return __shfl_sync(SCF_FULL_MASK, v, 0);
}
__device__ __forceinline__ double scf_warp_max(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(SCF_FULL_MASK, v, o));
    return __shfl_sync(SCF_FULL_MASK, v, 0);
}
