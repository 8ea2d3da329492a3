// A CPU emulation of the parts of CUDA the eigh kernels use, so that their logic can be
// checked without a GPU: every CUDA thread of a block is a std::thread; warp collectives
// (__shfl*_sync, __ballot_sync, __any_sync, __syncwarp) meet at a barrier of the lanes in
// their mask, as independent thread scheduling requires; __syncthreads is a block barrier.
// Blocks run one after another. Slow (a barrier per shuffle), exact in semantics for code
// that keeps to the collectives' rules; a mismatched collective stops with a message.
#pragma once
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __align__(n) alignas(n)
#define __launch_bounds__(...)

using std::copysign;
using std::fabs;
using std::fma;
using std::fmax;
using std::fmin;
using std::frexp;
using std::hypot;
using std::scalbn;
using std::sqrt;

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct float4 { float x, y, z, w; };
struct double2 { double x, y; };
struct uint4 { unsigned int x, y, z, w; };

namespace emu {

struct Barrier {
    std::mutex m;
    std::condition_variable cv;
    int count = 0, waiting = 0;
    long gen = 0;
    explicit Barrier(int c) : count(c) {}
    void wait(const char* what) {
        std::unique_lock<std::mutex> l(m);
        const long g = gen;
        if (++waiting == count) {
            waiting = 0;
            ++gen;
            cv.notify_all();
            return;
        }
        if (!cv.wait_for(l, std::chrono::seconds(60), [&] { return gen != g; })) {
            std::fprintf(stderr, "emu: %s waited 60 s: a lane of its mask never arrived\n", what);
            std::abort();
        }
    }
};

struct Warp {
    std::mutex m;
    std::map<unsigned int, std::unique_ptr<Barrier>> barriers;
    uint64_t slot[32];
    Barrier& barrier(unsigned int mask) {
        std::lock_guard<std::mutex> l(m);
        auto& b = barriers[mask];
        if (!b) b = std::make_unique<Barrier>(std::popcount(mask));
        return *b;
    }
};

struct Block {
    std::vector<unsigned char> shared;
    std::unique_ptr<Barrier> barrier;
    std::vector<std::unique_ptr<Warp>> warps;
    std::vector<int> flags;
};

inline thread_local Block* block = nullptr;
inline std::mutex atomic_mutex;

inline Warp& warp();
}  // namespace emu

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline emu::Warp& emu::warp() { return *block->warps[threadIdx.x / 32]; }
inline unsigned char* emu_dynamic_shared() { return emu::block->shared.data(); }
#define MB_DYNAMIC_SHARED(name) unsigned char* name = emu_dynamic_shared()

inline int emu_lane() { return threadIdx.x & 31; }

inline void emu_check_mask(unsigned int mask, const char* what) {
    if (!(mask >> emu_lane() & 1u)) {
        std::fprintf(stderr, "emu: lane %d calls %s outside its mask %08x\n", emu_lane(), what, mask);
        std::abort();
    }
}

template <typename T> inline uint64_t emu_bits(T v) {
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T> inline T emu_from(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// The value of lane `src` (a lane of the warp) for every calling lane.
template <typename T> inline T emu_exchange(unsigned int mask, T var, int src, const char* what) {
    emu_check_mask(mask, what);
    emu::Warp& w = emu::warp();
    w.slot[emu_lane()] = emu_bits(var);
    emu::Barrier& b = w.barrier(mask);
    b.wait(what);
    if (!(mask >> src & 1u)) {
        std::fprintf(stderr, "emu: %s reads lane %d outside mask %08x\n", what, src, mask);
        std::abort();
    }
    const T out = emu_from<T>(w.slot[src]);
    b.wait(what);
    return out;
}

template <typename T> inline T __shfl_sync(unsigned int mask, T var, int src, int width = 32) {
    const int base = emu_lane() & ~(width - 1);
    return emu_exchange(mask, var, base + (src & (width - 1)), "__shfl_sync");
}
template <typename T> inline T __shfl_xor_sync(unsigned int mask, T var, int x, int width = 32) {
    const int base = emu_lane() & ~(width - 1);
    const int src = emu_lane() ^ x;
    return emu_exchange(mask, var, (src & ~(width - 1)) == base ? src : emu_lane(),
                        "__shfl_xor_sync");
}
template <typename T> inline T __shfl_down_sync(unsigned int mask, T var, int d, int width = 32) {
    const int base = emu_lane() & ~(width - 1);
    const int src = emu_lane() + d;
    return emu_exchange(mask, var, src < base + width ? src : emu_lane(), "__shfl_down_sync");
}
inline unsigned int __ballot_sync(unsigned int mask, int pred) {
    emu_check_mask(mask, "__ballot_sync");
    emu::Warp& w = emu::warp();
    w.slot[emu_lane()] = pred ? 1 : 0;
    emu::Barrier& b = w.barrier(mask);
    b.wait("__ballot_sync");
    unsigned int bits = 0;
    for (int l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && w.slot[l]) bits |= 1u << l;
    b.wait("__ballot_sync");
    return bits;
}
inline int __any_sync(unsigned int mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned int mask, int pred) {
    return __ballot_sync(mask, pred) == (mask & __ballot_sync(mask, 1));
}
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
    emu_check_mask(mask, "__syncwarp");
    emu::warp().barrier(mask).wait("__syncwarp");
}
inline void __syncthreads() { emu::block->barrier->wait("__syncthreads"); }
inline int __syncthreads_or(int pred) {
    emu::block->flags[threadIdx.x] = pred;
    __syncthreads();
    int any = 0;
    for (int f : emu::block->flags) any |= f;
    __syncthreads();
    return any;
}

inline int atomicMin(int* p, int v) {
    std::lock_guard<std::mutex> l(emu::atomic_mutex);
    const int old = *p;
    if (v < old) *p = v;
    return old;
}
inline int atomicOr(int* p, int v) {
    std::lock_guard<std::mutex> l(emu::atomic_mutex);
    const int old = *p;
    *p = old | v;
    return old;
}
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
    std::lock_guard<std::mutex> l(emu::atomic_mutex);
    const unsigned long long old = *p;
    if (v > old) *p = v;
    return old;
}

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int __ffs(unsigned int x) { return x ? std::countr_zero(x) + 1 : 0; }
inline int __popc(unsigned int x) { return std::popcount(x); }
inline double __longlong_as_double(long long b) { return emu_from<double>((uint64_t)b); }
inline long long __double_as_longlong(double x) { return (long long)emu_bits(x); }
inline float __int_as_float(int b) { return emu_from<float>((uint32_t)b); }
inline float __uint_as_float(unsigned int b) { return emu_from<float>(b); }
inline unsigned int __float_as_uint(float x) { return (unsigned int)emu_bits(x); }
inline int __float_as_int(float x) { return (int)emu_bits(x); }

namespace emu {
// Runs `kernel(args)` over `grid` blocks of `threads` threads with `shared` bytes of dynamic
// shared memory (poisoned with NaN bytes, as real shared memory starts with garbage).
template <typename Args>
void launch(void (*kernel)(Args), unsigned int grid, unsigned int threads, size_t shared,
            Args args) {
    for (unsigned int b = 0; b < grid; ++b) {
        Block blk;
        blk.shared.assign(shared + 16, 0xff);
        blk.barrier = std::make_unique<Barrier>((int)threads);
        for (unsigned int w = 0; w < (threads + 31) / 32; ++w)
            blk.warps.push_back(std::make_unique<Warp>());
        blk.flags.assign(threads, 0);
        std::vector<std::thread> ts;
        for (unsigned int t = 0; t < threads; ++t) {
            ts.emplace_back([&, t] {
                block = &blk;
                threadIdx.x = t;
                blockIdx.x = b;
                blockDim.x = threads;
                gridDim.x = grid;
                kernel(args);
            });
        }
        for (auto& t : ts) t.join();
    }
}
}  // namespace emu
