// A CPU emulation of the parts of CUDA the eigh kernels use, so that their logic can be
// checked without a GPU: every CUDA thread of a block is a fiber (x86-64; elsewhere, or with
// MB_EMU_THREADS defined, a std::thread); warp collectives (__shfl*_sync, __ballot_sync,
// __any_sync, __syncwarp) meet at a barrier of the lanes in their mask, as independent thread
// scheduling requires; __syncthreads is a block barrier. A fiber runs until it waits at a
// barrier, then the next runs (round robin), so a lane may run far ahead of lane 0 between
// collectives; blocks are spread over the machine's cores. Exact in semantics for code that
// keeps to the collectives' rules; a mismatched collective (a round in which no fiber of a
// block gets further) stops with a message. Fibers switch without a system call: a block of
// 256 threads runs about 20x faster than with a std::thread per CUDA thread.
#pragma once
#include <algorithm>
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

#if defined(__x86_64__) && !defined(MB_EMU_THREADS)
#define MB_EMU_FIBERS 1
// Saves the callee-saved registers on the current stack, stores its pointer in *save and
// continues on the stack `to` (a fiber's or the scheduler's).
extern "C" void mb_emu_switch(void** save, void* to);
asm(R"(
.pushsection .text
.type mb_emu_switch, @function
mb_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.popsection
)");

// The fibers of the block an OS thread runs.
struct Fiber {
    void* sp = nullptr;
    bool done = false;
    const char* waits = nullptr;  // the collective it waits at
};
struct Sched {
    void* main_sp = nullptr;
    std::vector<Fiber> fibers;
    std::vector<std::unique_ptr<char[]>> stacks;
    int cur = 0;
    long progress = 0;
    std::function<void(unsigned int)> body;
};
inline thread_local Sched* sched = nullptr;
constexpr size_t FIBER_STACK = 256 * 1024;

inline void fiber_yield(const char* what) {
    Fiber& f = sched->fibers[sched->cur];
    f.waits = what;
    mb_emu_switch(&f.sp, sched->main_sp);
    f.waits = nullptr;
}

struct Barrier {
    int count = 0, waiting = 0;
    long gen = 0;
    explicit Barrier(int c) : count(c) {}
    void wait(const char* what) {
        ++sched->progress;
        if (++waiting == count) {
            waiting = 0;
            ++gen;
            return;
        }
        const long g = gen;
        while (gen == g) fiber_yield(what);
    }
};
#else
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
#endif

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
#ifdef MB_EMU_FIBERS
[[noreturn]] inline void fiber_entry() {
    sched->body(threadIdx.x);
    sched->fibers[sched->cur].done = true;
    ++sched->progress;
    mb_emu_switch(&sched->fibers[sched->cur].sp, sched->main_sp);
    std::abort();
}

// Runs block `b` of `grid` as `threads` fibers on this OS thread.
template <typename Args>
void run_block(void (*kernel)(Args), unsigned int b, unsigned int grid, unsigned int threads,
               size_t shared, const Args& args, Sched& s) {
    Block blk;
    blk.shared.assign(shared + 16, 0xff);
    blk.barrier = std::make_unique<Barrier>((int)threads);
    for (unsigned int w = 0; w < (threads + 31) / 32; ++w) blk.warps.push_back(std::make_unique<Warp>());
    blk.flags.assign(threads, 0);
    block = &blk;
    blockIdx.x = b;
    blockDim.x = threads;
    gridDim.x = grid;
    s.body = [&](unsigned int) { kernel(args); };
    s.fibers.assign(threads, Fiber{});
    while (s.stacks.size() < threads) s.stacks.push_back(std::make_unique<char[]>(FIBER_STACK));
    for (unsigned int t = 0; t < threads; ++t) {
        // A fresh stack: fiber_entry's address for mb_emu_switch's `ret` (aligned as after a
        // call) and six zero registers below it.
        uintptr_t top = ((uintptr_t)s.stacks[t].get() + FIBER_STACK) & ~(uintptr_t)15;
        void** sp = (void**)top;
        *--sp = nullptr;
        *--sp = (void*)&fiber_entry;
        for (int r = 0; r < 6; ++r) *--sp = nullptr;
        s.fibers[t].sp = sp;
    }
    unsigned int left = threads;
    while (left > 0) {
        const long before = s.progress;
        for (unsigned int t = 0; t < threads; ++t) {
            if (s.fibers[t].done) continue;
            s.cur = (int)t;
            threadIdx.x = t;
            mb_emu_switch(&s.main_sp, s.fibers[t].sp);
            if (s.fibers[t].done) --left;
        }
        if (left > 0 && s.progress == before) {
            for (unsigned int t = 0; t < threads; ++t)
                if (!s.fibers[t].done) {
                    std::fprintf(stderr, "emu: block %u thread %u waits at %s forever: a lane of its mask never arrives\n",
                                 b, t, s.fibers[t].waits ? s.fibers[t].waits : "?");
                    break;
                }
            std::abort();
        }
    }
    block = nullptr;
}
#endif

// Runs `kernel(args)` over `grid` blocks of `threads` threads with `shared` bytes of dynamic
// shared memory (poisoned with NaN bytes, as real shared memory starts with garbage).
template <typename Args>
void launch(void (*kernel)(Args), unsigned int grid, unsigned int threads, size_t shared,
            Args args) {
#ifdef MB_EMU_FIBERS
    // Blocks spread over the cores, each core's blocks one after another.
    std::atomic<unsigned int> next{0};
    const unsigned int workers = std::max(1u, std::min(grid, std::thread::hardware_concurrency()));
    std::vector<std::thread> ts;
    for (unsigned int k = 0; k < workers; ++k) {
        ts.emplace_back([&] {
            Sched s;
            sched = &s;
            for (unsigned int b; (b = next++) < grid;) run_block(kernel, b, grid, threads, shared, args, s);
            sched = nullptr;
        });
    }
    for (auto& t : ts) t.join();
#else
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
#endif
}
}  // namespace emu
