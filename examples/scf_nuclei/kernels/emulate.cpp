// Runs one scf_nuclei kernel on the CPU under scripts/cuda_emu/cuda_emu.h, for
// tests_emulated.rs, which writes a translation unit of: cuda_emu.h, the kernels' source
// (cuda.rs's kernel_source), then this file; compiles it with g++ and runs it once per launch:
//
//   emulate JOB OUT
//
// JOB (little-endian): u32 name length, name, u32 grid blocks, u32 threads per block, u32
// argument count, then per argument a u32 tag and its value: 0 = f64 buffer (u64 length, the
// values), 1 = u32 buffer (u64 length, the values), 2 = f64 scalar, 3 = u32 scalar. OUT gets
// every buffer argument back, in order (u64 length, the values). Kernels without warp
// collectives run their threads one after another on one OS thread; scf_bcs runs a thread per
// lane (warp shuffles meet at barriers, as cuda_emu.h describes; the translation unit defines
// MB_EMU_THREADS, so those barriers are cuda_emu.h's thread-safe ones, not its fibers').
#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace scf_emu {

struct Arg {
    unsigned tag = 0;
    std::vector<double> f;
    std::vector<unsigned> u;
    double fs = 0.0;
    unsigned us = 0;

    template <typename T> operator T*() {
        using V = std::remove_cv_t<T>;
        if constexpr (std::is_same_v<V, unsigned>) {
            need(1);
            return u.data();
        } else {
            // double, or ScfCoefficients (a record of doubles) from an f64 buffer.
            need(0);
            return reinterpret_cast<T*>(f.data());
        }
    }
    operator double() const {
        need(2);
        return fs;
    }
    operator unsigned() const {
        need(3);
        return us;
    }
    void need(unsigned want) const {
        if (tag != want) {
            std::fprintf(stderr, "emulate: argument tag %u where the kernel takes tag %u\n", tag,
                         want);
            std::exit(2);
        }
    }
};

template <typename... P, std::size_t... I>
void call_with(void (*kernel)(P...), std::vector<Arg>& a, std::index_sequence<I...>) {
    kernel(a[I]...);
}

template <typename... P> std::function<void(std::vector<Arg>&)> caller(void (*kernel)(P...)) {
    return [kernel](std::vector<Arg>& a) {
        if (a.size() != sizeof...(P)) {
            std::fprintf(stderr, "emulate: %zu arguments for a kernel of %zu\n", a.size(),
                         sizeof...(P));
            std::exit(2);
        }
        call_with(kernel, a, std::index_sequence_for<P...>{});
    };
}

// Runs `body` as every thread of `grid` blocks of `threads`: one after another, or (with
// `collective`) a std::thread per CUDA thread of each block, as emu::launch does.
inline void run(unsigned grid, unsigned threads, bool collective,
                const std::function<void()>& body) {
    for (unsigned b = 0; b < grid; ++b) {
        emu::Block blk;
        blk.shared.assign(16, 0xff);
        blk.barrier = std::make_unique<emu::Barrier>((int)threads);
        for (unsigned w = 0; w < (threads + 31) / 32; ++w)
            blk.warps.push_back(std::make_unique<emu::Warp>());
        blk.flags.assign(threads, 0);
        auto as_thread = [&](unsigned t) {
            emu::block = &blk;
            threadIdx.x = t;
            blockIdx.x = b;
            blockDim.x = threads;
            gridDim.x = grid;
            body();
        };
        if (!collective) {
            for (unsigned t = 0; t < threads; ++t) as_thread(t);
            continue;
        }
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < threads; ++t) ts.emplace_back(as_thread, t);
        for (auto& t : ts) t.join();
    }
}

template <typename T> T read_one(std::FILE* f) {
    T v{};
    if (std::fread(&v, sizeof v, 1, f) != 1) {
        std::fprintf(stderr, "emulate: truncated job\n");
        std::exit(2);
    }
    return v;
}

template <typename T> void read_many(std::FILE* f, std::vector<T>& out) {
    out.resize(read_one<unsigned long long>(f));
    if (!out.empty() && std::fread(out.data(), sizeof(T), out.size(), f) != out.size()) {
        std::fprintf(stderr, "emulate: truncated buffer\n");
        std::exit(2);
    }
}

template <typename T> void write_many(std::FILE* f, const std::vector<T>& v) {
    const unsigned long long n = v.size();
    std::fwrite(&n, sizeof n, 1, f);
    if (n) std::fwrite(v.data(), sizeof(T), v.size(), f);
}

}  // namespace scf_emu

int main(int argc, char** argv) {
    using namespace scf_emu;
    if (argc != 3) {
        std::fprintf(stderr, "usage: emulate JOB OUT\n");
        return 2;
    }
    std::FILE* job = std::fopen(argv[1], "rb");
    if (!job) {
        std::perror(argv[1]);
        return 2;
    }
    std::string name(read_one<unsigned>(job), '\0');
    if (!name.empty() && std::fread(name.data(), 1, name.size(), job) != name.size()) return 2;
    const unsigned grid = read_one<unsigned>(job), threads = read_one<unsigned>(job);
    std::vector<Arg> args(read_one<unsigned>(job));
    for (Arg& a : args) {
        a.tag = read_one<unsigned>(job);
        switch (a.tag) {
            case 0: read_many(job, a.f); break;
            case 1: read_many(job, a.u); break;
            case 2: a.fs = read_one<double>(job); break;
            case 3: a.us = read_one<unsigned>(job); break;
            default: std::fprintf(stderr, "emulate: bad tag %u\n", a.tag); return 2;
        }
    }
    std::fclose(job);

    std::function<void(std::vector<Arg>&)> kernel;
    bool collective = false;
    if (name == "scf_woods_saxon") kernel = caller(scf_woods_saxon);
    else if (name == "scf_coulomb") kernel = caller(scf_coulomb);
    else if (name == "scf_fields") kernel = caller(scf_fields);
    else if (name == "scf_hamiltonian") kernel = caller(scf_hamiltonian);
    else if (name == "scf_densities") kernel = caller(scf_densities);
    else if (name == "scf_mix") kernel = caller(scf_mix);
    else if (name == "scf_bcs") {
        kernel = caller(scf_bcs);
        collective = true;
    } else {
        std::fprintf(stderr, "emulate: no kernel %s\n", name.c_str());
        return 2;
    }
    run(grid, threads, collective, [&] { kernel(args); });

    std::FILE* out = std::fopen(argv[2], "wb");
    if (!out) {
        std::perror(argv[2]);
        return 2;
    }
    for (const Arg& a : args) {
        if (a.tag == 0) write_many(out, a.f);
        if (a.tag == 1) write_many(out, a.u);
    }
    return std::fclose(out) == 0 ? 0 : 2;
}
