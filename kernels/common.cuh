// Shared by every megabatch kernel: element loads, NaN-propagating extrema, warp reductions.
// No #include: NVRTC compiles these sources without a CUDA toolkit's headers, so f16 and bf16
// are handled as raw 16-bit patterns and widened here.

typedef unsigned long long u64;
// Distinct types so that templates can tell IEEE half from bfloat16.
struct mb_f16 { unsigned short bits; };
struct mb_bf16 { unsigned short bits; };

#define MB_FULL_MASK 0xffffffffu

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included).
__device__ __forceinline__ float mb_f16_bits_to_f32(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1fu;
    unsigned int man = h & 0x3ffu;
    unsigned int bits;
    if (exp == 0x1fu) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        // Subnormal half: value = man * 2^-24, exact in float.
        float f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    return __int_as_float((int)bits);
}

// bfloat16 is the top half of a binary32.
__device__ __forceinline__ float mb_bf16_bits_to_f32(unsigned short h) {
    return __int_as_float((int)((unsigned int)h << 16));
}

// Per stored type: the accumulation type, and 16-byte vector loads widened to it.
template <typename T> struct MbElem;
template <> struct MbElem<float> {
    typedef float Acc;
    enum { VEC = 4 };
    static __device__ __forceinline__ float widen(float x) { return x; }
    static __device__ __forceinline__ void load_vec(const float* p, u64 i, float* o) {
        const float4 v = reinterpret_cast<const float4*>(p)[i];
        o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
    }
};
template <> struct MbElem<double> {
    typedef double Acc;
    enum { VEC = 2 };
    static __device__ __forceinline__ double widen(double x) { return x; }
    static __device__ __forceinline__ void load_vec(const double* p, u64 i, double* o) {
        const double2 v = reinterpret_cast<const double2*>(p)[i];
        o[0] = v.x; o[1] = v.y;
    }
};
// The two 16-bit formats differ only in how a bit pattern widens to float.
__device__ __forceinline__ float mb_bits_to_f32(mb_f16 x, unsigned short h) {
    return mb_f16_bits_to_f32(h);
}
__device__ __forceinline__ float mb_bits_to_f32(mb_bf16 x, unsigned short h) {
    return mb_bf16_bits_to_f32(h);
}
template <typename H> struct MbElem16 {
    typedef float Acc;
    enum { VEC = 8 };
    static __device__ __forceinline__ float widen(H x) { return mb_bits_to_f32(x, x.bits); }
    static __device__ __forceinline__ void load_vec(const H* p, u64 i, float* o) {
        const uint4 v = reinterpret_cast<const uint4*>(p)[i];
        const unsigned int w[4] = {v.x, v.y, v.z, v.w};
        for (int j = 0; j < 4; ++j) {
            o[2 * j] = mb_bits_to_f32(H(), (unsigned short)(w[j] & 0xffffu));
            o[2 * j + 1] = mb_bits_to_f32(H(), (unsigned short)(w[j] >> 16));
        }
    }
};
template <> struct MbElem<mb_f16> : MbElem16<mb_f16> {};
template <> struct MbElem<mb_bf16> : MbElem16<mb_bf16> {};

// max/min that return NaN when either operand is NaN (fmax/fmin would drop it).
template <typename A> __device__ __forceinline__ A mb_max_nan(A a, A b) {
    return (a > b || a != a) ? a : b;
}
template <typename A> __device__ __forceinline__ A mb_min_nan(A a, A b) {
    return (a < b || a != a) ? a : b;
}

__device__ __forceinline__ double mb_shfl_down(double v, int d) {
    return __shfl_down_sync(MB_FULL_MASK, v, d);
}
__device__ __forceinline__ float mb_shfl_down(float v, int d) {
    return __shfl_down_sync(MB_FULL_MASK, v, d);
}
