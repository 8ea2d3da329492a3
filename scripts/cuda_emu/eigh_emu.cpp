// Runs the CUDA eigh kernels (kernels/eigh/*.cu) under the CPU emulation of cuda_emu.h on
// a ragged batch of test matrices and checks every result against properties that do not come
// from the kernels: LAPACK dsyt21's residual ||A V - V W|| / (n ||A|| eps) and orthogonality
// ||V^T V - I|| / (n eps) ratios (long double), eigenvalues against a long-double cyclic Jacobi,
// ascending order, the sign rule, NaN input reported in the status word and the per-matrix info
// array (MB_EIGH_NON_FINITE for exactly those matrices, MB_EIGH_SOLVED for the others) with
// NaN eigenvalues and eigenvectors.
//
// Build and run: scripts/cuda_emu/run.sh [kernel] [dtype] [orders...]
//   kernel: warp:G:R (e.g. warp:16:12), chains:G:R:M, block:NC (e.g. block:2),
//           split:NC:ROUNDS (the host's sequence of launches, ROUNDS replay rounds),
//           dc:SLOTS[:LAYOUT] (divide and conquer, the host's launches in waves of SLOTS
//           matrices; LAYOUT the MB_DC_*_GLOBAL bits, 3: every per-order vector in the slots),
//           jacobi, plan:FILE (the launches backends/cuda/eigh_classes planned for this batch,
//           written by tests/kernels/cuda/emulated_plans.rs: per pass a line `vectors V count C
//           nmax N workspace BYTES`, then a line `ENTRY BLOCK GRID SHARED NMAX TEAM PHASE
//           LAYOUT` per launch)
#include "cuda_emu.h"

#include "../../kernels/common.cuh"
#include "../../kernels/eigh/common.cuh"
#include "../../kernels/eigh/jacobi.cu"
#include "../../kernels/eigh/ql.cuh"
#include "../../kernels/eigh/warp.cu"
#include "../../kernels/eigh/block.cu"
#include "../../kernels/eigh/chains.cu"
#include "../../kernels/eigh/split.cu"
#include "../../kernels/eigh/dc.cu"

#define MB_EIGH_WARP(G, R)                                                               \
    MB_EIGH_WARP_KERNEL(eigh_warp_f32_g##G##_r##R##_v, float, G, R, true)                \
    MB_EIGH_WARP_KERNEL(eigh_warp_f32_g##G##_r##R##_w, float, G, R, false)               \
    MB_EIGH_WARP_KERNEL(eigh_warp_f64_g##G##_r##R##_v, double, G, R, true)               \
    MB_EIGH_WARP_KERNEL(eigh_warp_f64_g##G##_r##R##_w, double, G, R, false)
MB_EIGH_WARP(2, 2)
MB_EIGH_WARP(4, 4)
MB_EIGH_WARP(8, 8)
MB_EIGH_WARP(16, 12)
MB_EIGH_WARP(16, 16)
MB_EIGH_WARP(32, 24)
MB_EIGH_WARP(32, 32)
#define MB_EIGH_CHAINS(G, R)                                                             \
    MB_EIGH_CHAINS_KERNEL(eigh_chains_f32_g##G##_r##R##_v, float, G, R, true)            \
    MB_EIGH_CHAINS_KERNEL(eigh_chains_f32_g##G##_r##R##_w, float, G, R, false)           \
    MB_EIGH_CHAINS_KERNEL(eigh_chains_f64_g##G##_r##R##_v, double, G, R, true)           \
    MB_EIGH_CHAINS_KERNEL(eigh_chains_f64_g##G##_r##R##_w, double, G, R, false)
MB_EIGH_CHAINS(16, 12)
MB_EIGH_CHAINS(16, 16)
MB_EIGH_CHAINS(32, 24)
MB_EIGH_CHAINS(32, 32)
#define MB_EIGH_BLOCK(NC)                                                                \
    MB_EIGH_BLOCK_KERNEL(eigh_block_f32_c##NC##_v, float, NC, true)                      \
    MB_EIGH_BLOCK_KERNEL(eigh_block_f32_c##NC##_w, float, NC, false)                     \
    MB_EIGH_BLOCK_KERNEL(eigh_block_f64_c##NC##_v, double, NC, true)                     \
    MB_EIGH_BLOCK_KERNEL(eigh_block_f64_c##NC##_w, double, NC, false)
MB_EIGH_BLOCK(2)
MB_EIGH_BLOCK(4)
MB_EIGH_BLOCK(8)
#define MB_EIGH_SPLIT(NC)                                                                \
    MB_EIGH_SPLIT_KERNELS(eigh_split_f32_c##NC##_v, float, NC, true)                     \
    MB_EIGH_SPLIT_KERNELS(eigh_split_f32_c##NC##_w, float, NC, false)                    \
    MB_EIGH_SPLIT_KERNELS(eigh_split_f64_c##NC##_v, double, NC, true)                    \
    MB_EIGH_SPLIT_KERNELS(eigh_split_f64_c##NC##_w, double, NC, false)
MB_EIGH_SPLIT(2)
MB_EIGH_SPLIT(4)
MB_EIGH_SPLIT(8)
MB_EIGH_DC_KERNELS(eigh_dc_f32_v, float, true)
MB_EIGH_DC_KERNELS(eigh_dc_f32_w, float, false)
MB_EIGH_DC_KERNELS(eigh_dc_f64_v, double, true)
MB_EIGH_DC_KERNELS(eigh_dc_f64_w, double, false)

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

typedef long double ld;

enum Type { RANDOM, DIAGONAL, ZERO, IDENTITY, CLUSTERED, TINY, HUGE_, WILKINSON, RANK1, GRADED,
            NAN_LOWER, NAN_UPPER, TYPES };
static const char* type_name[] = {"random", "diagonal", "zero", "identity", "clustered", "tiny",
                                  "huge", "wilkinson", "rank1", "graded", "nan-lower",
                                  "nan-upper"};

// Random orthogonal Q (n x n, row-major) from Gram-Schmidt on a Gaussian matrix.
static std::vector<ld> random_orthogonal(int n, std::mt19937_64& rng) {
    std::normal_distribution<double> g;
    std::vector<ld> q(n * n);
    for (auto& x : q) x = g(rng);
    for (int c = 0; c < n; ++c) {
        for (int pass = 0; pass < 2; ++pass)
            for (int k = 0; k < c; ++k) {
                ld dot = 0;
                for (int r = 0; r < n; ++r) dot += q[r * n + c] * q[r * n + k];
                for (int r = 0; r < n; ++r) q[r * n + c] -= dot * q[r * n + k];
            }
        ld nrm = 0;
        for (int r = 0; r < n; ++r) nrm += q[r * n + c] * q[r * n + c];
        nrm = std::sqrt(nrm);
        for (int r = 0; r < n; ++r) q[r * n + c] /= nrm;
    }
    return q;
}

static std::vector<ld> with_spectrum(const std::vector<ld>& lam, std::mt19937_64& rng) {
    const int n = (int)lam.size();
    auto q = random_orthogonal(n, rng);
    std::vector<ld> a(n * n, 0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            ld s = 0;
            for (int k = 0; k < n; ++k) s += q[i * n + k] * lam[k] * q[j * n + k];
            a[i * n + j] = s;
        }
    return a;
}

template <typename T> std::vector<T> make(Type t, int n, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<ld> a(n * n, 0);
    switch (t) {
    case RANDOM: case TINY: case HUGE_: case NAN_LOWER: case NAN_UPPER:
        for (int i = 0; i < n; ++i)
            for (int j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = u(rng);
        break;
    case DIAGONAL:
        for (int i = 0; i < n; ++i) a[i * n + i] = u(rng);
        break;
    case ZERO: break;
    case IDENTITY:
        for (int i = 0; i < n; ++i) a[i * n + i] = 3;
        break;
    case CLUSTERED: {
        std::vector<ld> lam(n);
        for (int i = 0; i < n; ++i) lam[i] = 1 + (i % 3) * 1e-7L + (i < n / 2 ? 0 : 1);
        a = with_spectrum(lam, rng);
        break;
    }
    case WILKINSON:
        for (int i = 0; i < n; ++i) {
            a[i * n + i] = std::fabs((ld)i - (n - 1) / 2.0L);
            if (i + 1 < n) a[i * n + i + 1] = a[(i + 1) * n + i] = 1;
        }
        break;
    case RANK1: {
        std::vector<ld> x(n);
        for (auto& v : x) v = u(rng);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) a[i * n + j] = x[i] * x[j];
        break;
    }
    case GRADED: {
        std::vector<ld> lam(n);
        for (int i = 0; i < n; ++i) lam[i] = std::pow(10.0L, -(ld)i * 12 / std::max(1, n - 1));
        a = with_spectrum(lam, rng);
        break;
    }
    default: break;
    }
    const ld scale = t == TINY ? (sizeof(T) == 8 ? 1e-300L : 1e-35L)
                     : t == HUGE_ ? (sizeof(T) == 8 ? 1e300L : 1e35L) : 1;
    std::vector<T> out(n * n);
    for (int i = 0; i < n * n; ++i) out[i] = (T)(a[i] * scale);
    // Upper triangles must never be read: poison them.
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j) out[i * n + j] = NAN;
    if (t == NAN_LOWER && n > 0) out[(n - 1) * n] = NAN;
    return out;
}

// Eigenvalues by cyclic Jacobi in long double, ascending: an independent reference.
static std::vector<ld> reference_eigenvalues(std::vector<ld> a, int n) {
    for (int sweep = 0; sweep < 100; ++sweep) {
        ld off = 0;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
        if (off == 0) break;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) {
                const ld apq = a[p * n + q];
                if (apq == 0) continue;
                const ld tau = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                const ld t = (tau >= 0 ? 1 : -1) / (std::fabs(tau) + std::sqrt(1 + tau * tau));
                const ld c = 1 / std::sqrt(1 + t * t), s = t * c;
                for (int k = 0; k < n; ++k) {
                    const ld x = a[k * n + p], y = a[k * n + q];
                    a[k * n + p] = c * x - s * y;
                    a[k * n + q] = s * x + c * y;
                }
                for (int k = 0; k < n; ++k) {
                    const ld x = a[p * n + k], y = a[q * n + k];
                    a[p * n + k] = c * x - s * y;
                    a[q * n + k] = s * x + c * y;
                }
            }
    }
    std::vector<ld> w(n);
    for (int i = 0; i < n; ++i) w[i] = a[i * n + i];
    std::sort(w.begin(), w.end());
    return w;
}

typedef void (*Kernel)(MbEighArgs);

// The entry points a `plan:` file may name.
static Kernel kernel_by_name(const std::string& name) {
#define NAMED(K) {#K, K},
    static const std::map<std::string, Kernel> named = {
        NAMED(eigh_dc_f32_v_reduce) NAMED(eigh_dc_f32_v_solve) NAMED(eigh_dc_f32_v_back)
        NAMED(eigh_dc_f32_w_reduce) NAMED(eigh_dc_f32_w_values)
        NAMED(eigh_dc_f64_v_reduce) NAMED(eigh_dc_f64_v_solve) NAMED(eigh_dc_f64_v_back)
        NAMED(eigh_dc_f64_w_reduce) NAMED(eigh_dc_f64_w_values)
    };
#undef NAMED
    const auto it = named.find(name);
    if (it == named.end()) {
        std::fprintf(stderr, "plan: no emulated kernel %s\n", name.c_str());
        std::exit(2);
    }
    return it->second;
}

// Runs the launches of a `plan:` file's pass for `vec` over the batch described by p (count,
// nmax as the file says, else exit 2: the file was planned for another batch).
template <typename T>
static void run_plan(const std::string& path, bool vec, int batch, int nmax, MbEighArgs p,
                     std::vector<T>& gwork) {
    std::ifstream f(path);
    std::string line;
    bool mine = false, found = false;
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::string word;
        in >> word;
        if (word == "vectors") {
            int v = 0, count = 0, n = 0;
            size_t bytes = 0;
            std::string k1, k2, k3;
            in >> v >> k1 >> count >> k2 >> n >> k3 >> bytes;
            mine = v == (int)vec;
            if (!mine) continue;
            found = true;
            if (count != batch || n != nmax) {
                std::fprintf(stderr, "plan: planned for %d matrices of order <= %d, the batch has %d of <= %d\n",
                             count, n, batch, nmax);
                std::exit(2);
            }
            gwork.assign(bytes / sizeof(T) + 1, (T)-9.5);
            p.gwork = (u64)gwork.data();
            continue;
        }
        if (!mine || word.empty()) continue;
        unsigned int block = 0, grid = 0;
        size_t shared = 0;
        in >> block >> grid >> shared >> p.nmax >> p.team >> p.phase >> p.layout;
        emu::launch(kernel_by_name(word), grid, block, shared, p);
    }
    if (!found) {
        std::fprintf(stderr, "plan: %s has no pass with vectors %d\n", path.c_str(), (int)vec);
        std::exit(2);
    }
}

struct Launch {
    Kernel kernel;
    unsigned int threads, per_block;  // threads per block, matrices per block
    size_t shared;
    int nmax, team;
    bool workspace;  // a global workspace as large as A (chains)
};

template <typename T> Launch choose(const std::string& kind, bool vec, int nmax) {
    const bool f64 = sizeof(T) == 8;
    Launch l{};
    if (kind.rfind("warp:", 0) == 0) {
        int g = 0, r = 0;
        std::sscanf(kind.c_str(), "warp:%d:%d", &g, &r);
#define PICK(G, R)                                                                           \
    if (g == G && r == R)                                                                    \
        l.kernel = f64 ? (vec ? eigh_warp_f64_g##G##_r##R##_v : eigh_warp_f64_g##G##_r##R##_w) \
                       : (vec ? eigh_warp_f32_g##G##_r##R##_v : eigh_warp_f32_g##G##_r##R##_w);
        PICK(2, 2) PICK(4, 4) PICK(8, 8) PICK(16, 12) PICK(16, 16) PICK(32, 24) PICK(32, 32)
#undef PICK
        if (!l.kernel || nmax > r) { std::fprintf(stderr, "no warp kernel %s for n %d\n", kind.c_str(), nmax); std::exit(2); }
        l.threads = 128;
        l.per_block = 128 / g;
        l.shared = l.per_block * (r * (r + 1) + 2 * r) * sizeof(T);
    } else if (kind.rfind("chains:", 0) == 0) {
        int g = 0, r = 0, m = 32;
        std::sscanf(kind.c_str(), "chains:%d:%d:%d", &g, &r, &m);
#define PICK(G, R)                                                                           \
    if (g == G && r == R)                                                                    \
        l.kernel = f64 ? (vec ? eigh_chains_f64_g##G##_r##R##_v : eigh_chains_f64_g##G##_r##R##_w) \
                       : (vec ? eigh_chains_f32_g##G##_r##R##_v : eigh_chains_f32_g##G##_r##R##_w);
        PICK(16, 12) PICK(16, 16) PICK(32, 24) PICK(32, 32)
#undef PICK
        if (!l.kernel || nmax > r || m < 1 || m > 32) { std::fprintf(stderr, "no chains kernel %s for n %d\n", kind.c_str(), nmax); std::exit(2); }
        l.threads = 128;
        l.per_block = m;
        l.team = m;
        l.shared = (2 * 32 * r + (128 / g) * (r * (r + 1) + 2 * r + MB_CHAINS_STAGE)) * sizeof(T) + 3 * 32 * 4;
        l.workspace = true;
    } else if (kind.rfind("block:", 0) == 0) {
        int nc = std::atoi(kind.c_str() + 6);
#define PICK(NC)                                                                             \
    if (nc == NC)                                                                            \
        l.kernel = f64 ? (vec ? eigh_block_f64_c##NC##_v : eigh_block_f64_c##NC##_w)         \
                       : (vec ? eigh_block_f32_c##NC##_v : eigh_block_f32_c##NC##_w);
        PICK(2) PICK(4) PICK(8)
#undef PICK
        if (!l.kernel || nmax > 32 * nc) { std::fprintf(stderr, "no block kernel for n %d\n", nmax); std::exit(2); }
        l.threads = 32 * (nc + 1);
        l.per_block = 1;
        l.shared = ((size_t)nmax * (nmax | 1) + 9 * nmax + 64) * sizeof(T) + 16;
        l.nmax = nmax;
    } else {
        const int np = nmax + (nmax & 1) < 2 ? 2 : nmax + (nmax & 1);
        int items = 1;
        while (items < np / 2 * np) items *= 2;
        int team = np <= 32 ? std::clamp(items, 4, 32) : std::clamp(items, 64, 256);
        l.kernel = f64 ? eigh_jacobi_f64 : eigh_jacobi_f32;
        l.threads = team <= 32 ? 128 : team;
        l.per_block = l.threads / team;
        const size_t mats = (size_t)np * (np + 1) * (vec ? 2 : 1), per_team = mats + 3 * np;
        const size_t ints = (l.per_block * per_team * sizeof(T) + 7) & ~(size_t)7;
        l.shared = ints + l.per_block * (2 * np + 4) * 4 + l.per_block * 8;
        l.nmax = np;
        l.team = team;
    }
    return l;
}

template <typename T> int run(const std::string& kind, std::vector<int> orders, int per_order,
                              bool vec, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::vector<int> sizes;
    std::vector<Type> types;
    for (int n : orders)
        for (int t = 0; t < TYPES; ++t)
            for (int k = 0; k < (t == RANDOM ? per_order : 1); ++k) {
                sizes.push_back(n);
                types.push_back((Type)t);
            }
    const int batch = (int)sizes.size();
    std::vector<u64> a_start(batch), w_start(batch);
    std::vector<int> order(batch), list;
    std::vector<T> a;
    u64 at = 0, wt = 0;
    int nmax = 0;
    for (int i = 0; i < batch; ++i) {
        a_start[i] = at;
        w_start[i] = wt;
        order[i] = sizes[i];
        auto m = make<T>(types[i], sizes[i], rng);
        a.insert(a.end(), m.begin(), m.end());
        at += m.size();
        wt += sizes[i];
        nmax = std::max(nmax, sizes[i]);
        list.push_back(i);
    }
    // Largest first, as the host orders each class's list.
    std::stable_sort(list.begin(), list.end(), [&](int x, int y) { return sizes[x] > sizes[y]; });
    std::vector<T> w(wt, (T)-7.25), v(at, (T)-7.25);
    int status[2] = {0x7f7f7f7f, 0x7f7f7f7f};
    // Every matrix a launch takes gets its code; -99 shows one left unwritten.
    std::vector<int> info(batch, -99);
    std::vector<T> gwork;
    const bool multi = kind.rfind("split:", 0) == 0 || kind.rfind("dc:", 0) == 0 ||
                       kind.rfind("plan:", 0) == 0;
    Launch l = multi ? Launch{} : choose<T>(kind, vec, nmax);
    if (l.workspace) gwork.assign(at, (T)-9.5);
    MbEighArgs p{};
    p.a = (u64)a.data();
    p.w = (u64)w.data();
    p.v = vec ? (u64)v.data() : 0;
    p.a_start = (u64)a_start.data();
    p.w_start = (u64)w_start.data();
    p.order = (u64)order.data();
    p.list = (u64)list.data();
    p.status = (u64)status;
    p.info = (u64)info.data();
    p.gwork = l.workspace ? (u64)gwork.data() : 0;
    p.count = batch;
    p.nmax = l.nmax;
    p.team = l.team;
    p.vectors = vec;
    if (kind.rfind("split:", 0) == 0) {
        int nc = 0, rounds = 3;
        std::sscanf(kind.c_str(), "split:%d:%d", &nc, &rounds);
        Kernel reduce = nullptr, chains = nullptr, replay = nullptr;
        const bool f64 = sizeof(T) == 8;
#define PICK(NC)                                                                             \
    if (nc == NC) {                                                                          \
        reduce = f64 ? (vec ? eigh_split_f64_c##NC##_v_reduce : eigh_split_f64_c##NC##_w_reduce) \
                     : (vec ? eigh_split_f32_c##NC##_v_reduce : eigh_split_f32_c##NC##_w_reduce); \
        chains = f64 ? (vec ? eigh_split_f64_c##NC##_v_chains : eigh_split_f64_c##NC##_w_chains) \
                     : (vec ? eigh_split_f32_c##NC##_v_chains : eigh_split_f32_c##NC##_w_chains); \
        replay = f64 ? eigh_split_f64_c##NC##_v_replay : eigh_split_f32_c##NC##_v_replay;     \
    }
        PICK(2) PICK(4) PICK(8)
#undef PICK
        if (!reduce || nmax > 32 * nc || rounds < 1) { std::fprintf(stderr, "no split kernel %s for n %d\n", kind.c_str(), nmax); std::exit(2); }
        // split.cu's workspace: d, e, f, tst1, the ints, then the lists (as many words as A).
        const size_t ints = ((size_t)batch * MB_SPLIT_INTS * 4 + sizeof(T) - 1) / sizeof(T);
        const size_t state = (size_t)batch * (2 * nmax + 2) + ints;
        gwork.assign(state + (vec ? at : 0), (T)-9.5);
        p.gwork = (u64)gwork.data();
        p.nmax = nmax;
        const size_t block_shared = ((size_t)nmax * (nmax | 1) + 9 * nmax + 64) * sizeof(T) + 16;
        emu::launch(reduce, batch, 32 * nc, block_shared, p);
        for (int round = 0; round < (vec ? rounds : 1); ++round) {
            emu::launch(chains, (batch + 31) / 32, 32, 2 * 32 * (size_t)nmax * sizeof(T), p);
            if (!vec) break;
            p.phase = round + 1 == rounds;
            emu::launch(replay, batch, 32 * nc, block_shared, p);
        }
    } else if (kind.rfind("plan:", 0) == 0) {
        run_plan<T>(kind.substr(5), vec, batch, nmax, p, gwork);
    } else if (kind.rfind("dc:", 0) == 0) {
        // The dc class's launches: per wave of `slots` matrices reduce, then solve and back
        // (vectors) or values; the workspace as backends/cuda/eigh_classes/dc.rs sizes it.
        int slots = 1, layout = 0;
        std::sscanf(kind.c_str(), "dc:%d:%d", &slots, &layout);
        slots = std::max(1, slots);
        const bool f64 = sizeof(T) == 8;
        const Kernel reduce = f64 ? (vec ? eigh_dc_f64_v_reduce : eigh_dc_f64_w_reduce)
                                  : (vec ? eigh_dc_f32_v_reduce : eigh_dc_f32_w_reduce);
        const size_t bytes = mb_dc_workspace_bytes<T>(slots, nmax, layout);
        gwork.assign(bytes / sizeof(T) + 1, (T)-9.5);
        p.gwork = (u64)gwork.data();
        p.nmax = nmax;
        p.team = slots;
        p.layout = layout;
        for (int wave = 0; wave * slots < batch; ++wave) {
            const int here = std::min(slots, batch - wave * slots);
            p.phase = wave;
            emu::launch(reduce, here, MB_DC_THREADS, mb_dc_reduce_shared_bytes<T>(nmax, layout), p);
            if (vec) {
                emu::launch(f64 ? eigh_dc_f64_v_solve : eigh_dc_f32_v_solve, here, MB_DC_THREADS,
                            mb_dc_merge_shared_bytes<T>(nmax, layout), p);
                emu::launch(f64 ? eigh_dc_f64_v_back : eigh_dc_f32_v_back, here, MB_DC_THREADS,
                            mb_dc_back_shared_bytes<T>(), p);
            } else {
                emu::launch(f64 ? eigh_dc_f64_w_values : eigh_dc_f32_w_values,
                            (here + MB_DC_VALUES_PER_BLOCK - 1) / MB_DC_VALUES_PER_BLOCK,
                            MB_DC_VALUES_PER_BLOCK, 0, p);
            }
        }
    } else {
        const unsigned int grid = (batch + l.per_block - 1) / l.per_block;
        emu::launch(l.kernel, grid, l.threads, l.shared, p);
    }

    const ld eps = sizeof(T) == 8 ? 1.1102230246251565e-16L : 5.9604645e-8L;
    int failures = 0;
    ld worst_res = 0, worst_orth = 0, worst_ev = 0;
    int first_nan = -1;
    for (int i = 0; i < batch; ++i) {
        const int n = sizes[i];
        const int want = n == 0 ? -99 : (types[i] == NAN_LOWER ? MB_EIGH_NON_FINITE : MB_EIGH_SOLVED);
        if (info[i] != want) {
            std::printf("FAIL n=%d %s: info %d, expected %d\n", n, type_name[types[i]], info[i], want);
            ++failures;
        }
        if (types[i] == NAN_LOWER && n > 0) {
            if (first_nan < 0) first_nan = i;
            bool all_nan = true;
            for (int k = 0; k < n; ++k) all_nan &= std::isnan((double)w[w_start[i] + k]);
            if (vec)
                for (int k = 0; k < n * n; ++k) all_nan &= std::isnan((double)v[a_start[i] + k]);
            if (!all_nan) { std::printf("FAIL n=%d %s: outputs not NaN\n", n, type_name[types[i]]); ++failures; }
            continue;
        }
        std::vector<ld> A(n * n);
        for (int r = 0; r < n; ++r)
            for (int c = 0; c < n; ++c)
                A[r * n + c] = c <= r ? (ld)a[a_start[i] + r * n + c] : (ld)a[a_start[i] + c * n + r];
        ld anorm = 0;
        for (int c = 0; c < n; ++c) {
            ld s = 0;
            for (int r = 0; r < n; ++r) s += std::fabs(A[r * n + c]);
            anorm = std::max(anorm, s);
        }
        const T* wi = &w[w_start[i]];
        bool ok = true;
        for (int k = 0; k + 1 < n; ++k) ok &= wi[k] <= wi[k + 1];
        if (!ok) { std::printf("FAIL n=%d %s: not ascending\n", n, type_name[types[i]]); ++failures; }
        auto ref = reference_eigenvalues(A, n);
        ld ev = 0;
        for (int k = 0; k < n; ++k) {
            const ld d = std::fabs((ld)wi[k] - ref[k]);
            ev = std::max(ev, anorm > 0 ? d / (n * anorm * eps) : (d > 0 ? INFINITY : 0));
        }
        if (!(ev < 30)) { std::printf("FAIL n=%d %s: eigenvalue ratio %.3Lg\n", n, type_name[types[i]], ev); ++failures; }
        worst_ev = std::max(worst_ev, ev);
        if (!vec) continue;
        const T* vi = &v[a_start[i]];
        // dsyt21: ||A - V W V^T||_1 / (n ||A||_1 eps) and ||I - V^T V||_1 / (n eps).
        ld res = 0, orth = 0;
        for (int c = 0; c < n; ++c) {
            ld sr = 0, so = 0;
            for (int r = 0; r < n; ++r) {
                ld x = A[r * n + c], y = (r == c);
                for (int k = 0; k < n; ++k) {
                    x -= (ld)vi[r * n + k] * (ld)wi[k] * (ld)vi[c * n + k];
                    y -= (ld)vi[k * n + r] * (ld)vi[k * n + c];
                }
                sr += std::fabs(x);
                so += std::fabs(y);
            }
            res = std::max(res, sr);
            orth = std::max(orth, so);
        }
        res = anorm > 0 ? res / (n * anorm * eps) : (res > 0 ? INFINITY : 0);
        orth /= n * eps;
        bool sign_ok = true;
        for (int k = 0; k < n; ++k) {
            T big = 0, first = 0;
            for (int r = 0; r < n; ++r)
                if (std::fabs(vi[r * n + k]) > big) { big = std::fabs(vi[r * n + k]); first = vi[r * n + k]; }
            sign_ok &= first > 0;
        }
        if (!(res < 30 && orth < 30 && sign_ok)) {
            std::printf("FAIL n=%d %s: residual %.3Lg orthogonality %.3Lg sign %d\n", n,
                        type_name[types[i]], res, orth, (int)sign_ok);
            ++failures;
        }
        worst_res = std::max(worst_res, res);
        worst_orth = std::max(worst_orth, orth);
    }
    if (status[0] != first_nan && !(first_nan < 0 && status[0] == 0x7f7f7f7f)) {
        std::printf("FAIL status[0] = %d, first NaN matrix %d\n", status[0], first_nan);
        ++failures;
    }
    if (status[1] != 0x7f7f7f7f) { std::printf("FAIL unconverged matrix %d\n", status[1]); ++failures; }
    std::printf("%s %s %s: %d matrices, worst residual %.3Lg orthogonality %.3Lg eigenvalues %.3Lg, %d failures\n",
                kind.c_str(), sizeof(T) == 8 ? "f64" : "f32", vec ? "vectors" : "values", batch,
                worst_res, worst_orth, worst_ev, failures);
    return failures;
}

// Random matrices per order in a run (one of every other type).
constexpr int PER_ORDER = 3;

int main(int argc, char** argv) {
    std::string kind = argc > 1 ? argv[1] : "warp:16:12";
    if (kind == "batch") {
        // `batch ORDERS...`: the batch a run of these orders builds, for a `plan:` file.
        long long count = 0, a_len = 0;
        int nmax = 0;
        for (int i = 2; i < argc; ++i) {
            const long long n = std::atoi(argv[i]), k = TYPES - 1 + PER_ORDER;
            count += k;
            a_len += k * n * n;
            nmax = std::max(nmax, (int)n);
        }
        std::printf("count %lld nmax %d a_len %lld\n", count, nmax, a_len);
        return 0;
    }
    std::string dtype = argc > 2 ? argv[2] : "f64";
    std::vector<int> orders;
    for (int i = 3; i < argc; ++i) orders.push_back(std::atoi(argv[i]));
    if (orders.empty()) orders = {1, 2, 5, 12};
    int fails = 0;
    for (bool vec : {true, false}) {
        fails += dtype == "f64" ? run<double>(kind, orders, PER_ORDER, vec, 1234)
                                : run<float>(kind, orders, PER_ORDER, vec, 1234);
    }
    return fails ? 1 : 0;
}
