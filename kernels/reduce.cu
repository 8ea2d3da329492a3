// Deterministic reductions: a fixed grid per plan, each thread accumulating a fixed set of
// elements in a fixed order, then fixed-shape warp-shuffle and shared-memory trees (the
// two-stage scheme of CUB's DeviceReduce, without its float atomics). Max/min propagate NaN.
// Loads are 16-byte vectors where the layout allows (whole arrays, starting at a buffer's
// 256-byte-aligned base).

// Accumulating operations over whole arrays (`ReduceOp`), rows (`RowReduceOp`) and segments.
#define MB_SUM 0
#define MB_DOT 1
#define MB_MIN 2
#define MB_MAX 3
#define MB_MAXABS 4
#define MB_MAXABSDIFF 5
#define MB_MAXREL 6  // two accumulators: max |x - y| and max |y|
#define MB_WSUM 7    // rows: sum w_r x_rc, with sum w_r alongside

// Finishing step applied to the reduced value.
#define MB_FIN_NONE 0
#define MB_FIN_MEAN 1
#define MB_FIN_REL 2

template <typename A> __device__ __forceinline__ A mb_inf();
template <> __device__ __forceinline__ float mb_inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double mb_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000ll);
}
template <typename A> __device__ __forceinline__ A mb_tiny();
template <> __device__ __forceinline__ float mb_tiny<float>() { return 1.17549435e-38f; }
template <> __device__ __forceinline__ double mb_tiny<double>() { return 2.2250738585072014e-308; }

template <int OP, typename A> __device__ __forceinline__ A mb_identity() {
    if (OP == MB_MIN) return mb_inf<A>();
    if (OP == MB_MAX) return -mb_inf<A>();
    return A(0);
}

template <int OP, typename A> __device__ __forceinline__ A mb_combine(A a, A b) {
    if (OP == MB_SUM || OP == MB_DOT || OP == MB_WSUM) return a + b;
    if (OP == MB_MIN) return mb_min_nan(a, b);
    return mb_max_nan(a, b);
}

// What element i contributes to the first accumulator.
template <int OP, typename A> __device__ __forceinline__ A mb_term(A x, A y) {
    if (OP == MB_DOT) return x * y;
    if (OP == MB_MAXABS) return x < A(0) ? -x : x;  // keeps NaN
    if (OP == MB_MAXABSDIFF || OP == MB_MAXREL) {
        const A d = x - y;
        return d < A(0) ? -d : d;
    }
    return x;
}

template <int OP> __device__ __forceinline__ bool mb_needs_y() {
    return OP == MB_DOT || OP == MB_MAXABSDIFF || OP == MB_MAXREL;
}

template <int OP, typename A> __device__ __forceinline__ A mb_warp_reduce(A v) {
    for (int d = 16; d > 0; d >>= 1) v = mb_combine<OP, A>(v, mb_shfl_down(v, d));
    return v;
}

// Whole-block reduction (blockDim.x a multiple of 32, at most 1024); the result is valid in
// thread 0. `sh` holds 32 values; the trailing barrier makes it reusable at once.
template <int OP, typename A> __device__ A mb_block_reduce(A v, A* sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = mb_warp_reduce<OP, A>(v);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    if (warp == 0) {
        v = lane < warps ? sh[lane] : mb_identity<OP, A>();
        v = mb_warp_reduce<OP, A>(v);
    }
    __syncthreads();
    return v;
}

template <typename A> __device__ __forceinline__ A mb_finish(int fin, A r, A second, u64 count) {
    if (fin == MB_FIN_MEAN) return r / A(count);
    if (fin == MB_FIN_REL) return r / mb_max_nan(second, mb_tiny<A>());
    return r;
}

// Stage 1 over a whole array: one partial (two for MB_MAXREL) per block, or the finished
// result when the grid is one block.
template <typename T, int OP>
__device__ void mb_reduce_full(const T* __restrict__ x, const T* __restrict__ y, u64 len,
                               typename MbElem<T>::Acc* partials,
                               typename MbElem<T>::Acc* out, int fin) {
    typedef typename MbElem<T>::Acc A;
    const int VEC = MbElem<T>::VEC;
    __shared__ A sh[32];
    A acc = mb_identity<OP, A>();
    A acc_y = A(0);  // max |y| for MB_MAXREL
    const u64 stride = (u64)gridDim.x * blockDim.x;
    const u64 gid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    const u64 nvec = len / VEC;
    for (u64 i = gid; i < nvec; i += stride) {
        A xs[VEC], ys[VEC];
        MbElem<T>::load_vec(x, i, xs);
        if (mb_needs_y<OP>()) MbElem<T>::load_vec(y, i, ys);
        for (int j = 0; j < VEC; ++j) {
            const A yj = mb_needs_y<OP>() ? ys[j] : A(0);
            acc = mb_combine<OP, A>(acc, mb_term<OP, A>(xs[j], yj));
            if (OP == MB_MAXREL) acc_y = mb_max_nan(acc_y, yj < A(0) ? -yj : yj);
        }
    }
    for (u64 i = nvec * VEC + gid; i < len; i += stride) {
        const A xi = MbElem<T>::widen(x[i]);
        const A yi = mb_needs_y<OP>() ? MbElem<T>::widen(y[i]) : A(0);
        acc = mb_combine<OP, A>(acc, mb_term<OP, A>(xi, yi));
        if (OP == MB_MAXREL) acc_y = mb_max_nan(acc_y, yi < A(0) ? -yi : yi);
    }
    acc = mb_block_reduce<OP, A>(acc, sh);
    if (OP == MB_MAXREL) acc_y = mb_block_reduce<MB_MAX, A>(acc_y, sh);
    if (threadIdx.x == 0) {
        if (gridDim.x == 1) {
            out[0] = mb_finish(fin, acc, acc_y, len);
        } else {
            partials[2 * blockIdx.x] = acc;
            partials[2 * blockIdx.x + 1] = acc_y;
        }
    }
}

// Stage 2: one block folds the stage-1 partials in a fixed order.
template <typename A, int OP>
__device__ void mb_reduce_full_final(const A* __restrict__ partials, int count, u64 len, A* out,
                                     int fin) {
    __shared__ A sh[32];
    A acc = mb_identity<OP, A>();
    A acc_y = A(0);
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        acc = mb_combine<OP, A>(acc, partials[2 * i]);
        acc_y = mb_max_nan(acc_y, partials[2 * i + 1]);
    }
    acc = mb_block_reduce<OP, A>(acc, sh);
    if (OP == MB_MAXREL) acc_y = mb_block_reduce<MB_MAX, A>(acc_y, sh);
    if (threadIdx.x == 0) out[0] = mb_finish(fin, acc, acc_y, len);
}

// Rows of a row-major (rows, cols) matrix, one result per column. Block (bx, by) covers rows
// [bx * rows_per_block, ...) and columns [by * C, by * C + C), C = min(cols, blockDim.x); its
// threads are C columns by L = blockDim.x / C row lanes. MB_WSUM also sums the weights.
template <typename T, int OP>
__device__ void mb_reduce_rows(const T* __restrict__ x, const T* __restrict__ wts, u64 rows,
                               u64 cols, u64 rows_per_block, typename MbElem<T>::Acc* partials,
                               typename MbElem<T>::Acc* wpartials,
                               typename MbElem<T>::Acc* out, int fin) {
    typedef typename MbElem<T>::Acc A;
    __shared__ A sh[1024];
    __shared__ A shw[1024];
    const u64 C = cols < (u64)blockDim.x ? cols : (u64)blockDim.x;
    const u64 L = blockDim.x / C;
    const u64 c0 = threadIdx.x % C, lane = threadIdx.x / C;
    const u64 col = (u64)blockIdx.y * C + c0;
    const u64 r_begin = (u64)blockIdx.x * rows_per_block;
    const u64 r_end = min(rows, r_begin + rows_per_block);
    A acc = mb_identity<OP, A>();
    A wacc = A(0);
    if (lane < L && col < cols) {
        for (u64 r = r_begin + lane; r < r_end; r += L) {
            const A v = MbElem<T>::widen(x[r * cols + col]);
            if (OP == MB_WSUM) {
                const A wr = MbElem<T>::widen(wts[r]);
                acc += wr * v;
                wacc += wr;
            } else {
                acc = mb_combine<OP, A>(acc, v);
            }
        }
    }
    sh[threadIdx.x] = acc;
    shw[threadIdx.x] = wacc;
    __syncthreads();
    if (lane == 0 && col < cols) {
        A total = sh[c0];
        A wtotal = shw[c0];
        for (u64 j = 1; j < L; ++j) {
            total = mb_combine<OP, A>(total, sh[j * C + c0]);
            wtotal += shw[j * C + c0];
        }
        if (gridDim.x == 1) {
            out[col] = mb_finish(fin, OP == MB_WSUM ? total / wtotal : total, A(0), rows);
        } else {
            partials[(u64)blockIdx.x * cols + col] = total;
            if (blockIdx.y == 0 && c0 == 0) wpartials[blockIdx.x] = wtotal;
        }
    }
}

// Stage 2 for rows: one thread per column folds the partials of every row block in order.
template <typename A, int OP>
__device__ void mb_reduce_rows_final(const A* __restrict__ partials, const A* __restrict__ wpartials,
                                     int blocks, u64 rows, u64 cols, A* out, int fin) {
    const u64 col = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    A total = partials[col];
    A wtotal = wpartials[0];
    for (int b = 1; b < blocks; ++b) {
        total = mb_combine<OP, A>(total, partials[(u64)b * cols + col]);
        wtotal += wpartials[b];
    }
    out[col] = mb_finish(fin, OP == MB_WSUM ? total / wtotal : total, A(0), rows);
}

// Segments x[offsets[s] .. offsets[s + 1]]: a group of `gsize` threads (a warp, or the whole
// block for long segments) per segment, grid-striding over segments.
template <typename T, int OP>
__device__ void mb_reduce_segments(const T* __restrict__ x, const T* __restrict__ y,
                                   const u64* __restrict__ offsets, u64 segments, int gsize,
                                   typename MbElem<T>::Acc* out, int fin) {
    typedef typename MbElem<T>::Acc A;
    __shared__ A sh[32];
    const int groups = blockDim.x / gsize;
    const int group = threadIdx.x / gsize, lane = threadIdx.x % gsize;
    for (u64 s0 = (u64)blockIdx.x * groups; s0 < segments; s0 += (u64)gridDim.x * groups) {
        const u64 s = s0 + group;
        A acc = mb_identity<OP, A>();
        u64 lo = 0, hi = 0;
        if (s < segments) {
            lo = offsets[s];
            hi = offsets[s + 1];
            for (u64 i = lo + lane; i < hi; i += gsize) {
                const A xi = MbElem<T>::widen(x[i]);
                const A yi = mb_needs_y<OP>() ? MbElem<T>::widen(y[i]) : A(0);
                acc = mb_combine<OP, A>(acc, mb_term<OP, A>(xi, yi));
            }
        }
        if (gsize == 32) {
            acc = mb_warp_reduce<OP, A>(acc);
        } else {
            acc = mb_block_reduce<OP, A>(acc, sh);
        }
        if (lane == 0 && s < segments) out[s] = mb_finish(fin, acc, A(0), hi - lo);
    }
}

// The one parameter of every reduction kernel, mirrored by `ReduceArgs` in
// backends/cuda/params.rs (the NVRTC test checks size and offsets). Unused fields are 0.
struct MbReduceArgs {
    u64 x;              // first operand (T)
    u64 y;              // second operand (T) or row weights, 0 when unused
    u64 offsets;        // segments: segments + 1 element offsets (u64)
    u64 partials;       // per-block partial accumulators (Acc) of a two-stage reduction
    u64 wpartials;      // rows: per-block weight sums
    u64 out;            // results (Acc)
    u64 len;            // full: elements
    u64 rows;           // rows: rows of x
    u64 cols;           // rows: columns of x
    u64 rows_per_block; // rows: rows per first-stage block
    u64 segments;       // segments: number of segments
    int blocks;         // second stages: first-stage blocks to combine
    int group;          // segments: threads per segment (32: a warp, else a block)
    int fin;            // mb_finish's mode
    int pad;
};

#define MB_FULL(NAME, T, OP)                                                                    \
    extern "C" __global__ void reduce_full_##NAME(MbReduceArgs p) {                             \
        using A = MbElem<T>::Acc;                                                               \
        mb_reduce_full<T, OP>((const T*)p.x, (const T*)p.y, p.len, (A*)p.partials, (A*)p.out,   \
                              p.fin);                                                           \
    }
#define MB_FULL_FINAL(NAME, A, OP)                                                              \
    extern "C" __global__ void reduce_full_final_##NAME(MbReduceArgs p) {                       \
        mb_reduce_full_final<A, OP>((const A*)p.partials, p.blocks, p.len, (A*)p.out, p.fin);   \
    }
#define MB_ROWS(NAME, T, OP)                                                                    \
    extern "C" __global__ void reduce_rows_##NAME(MbReduceArgs p) {                             \
        using A = MbElem<T>::Acc;                                                               \
        mb_reduce_rows<T, OP>((const T*)p.x, (const T*)p.y, p.rows, p.cols, p.rows_per_block,   \
                              (A*)p.partials, (A*)p.wpartials, (A*)p.out, p.fin);               \
    }
#define MB_ROWS_FINAL(NAME, A, OP)                                                              \
    extern "C" __global__ void reduce_rows_final_##NAME(MbReduceArgs p) {                       \
        mb_reduce_rows_final<A, OP>((const A*)p.partials, (const A*)p.wpartials, p.blocks,      \
                                    p.rows, p.cols, (A*)p.out, p.fin);                          \
    }
#define MB_SEGMENTS(NAME, T, OP)                                                                \
    extern "C" __global__ void reduce_segments_##NAME(MbReduceArgs p) {                         \
        using A = MbElem<T>::Acc;                                                               \
        mb_reduce_segments<T, OP>((const T*)p.x, (const T*)p.y, (const u64*)p.offsets,          \
                                  p.segments, p.group, (A*)p.out, p.fin);                       \
    }

#define MB_FOR_TYPE(T, TN)                                                                      \
    MB_FULL(sum_##TN, T, MB_SUM)                                                                \
    MB_FULL(dot_##TN, T, MB_DOT)                                                                \
    MB_FULL(min_##TN, T, MB_MIN)                                                                \
    MB_FULL(max_##TN, T, MB_MAX)                                                                \
    MB_FULL(maxabs_##TN, T, MB_MAXABS)                                                          \
    MB_FULL(maxabsdiff_##TN, T, MB_MAXABSDIFF)                                                  \
    MB_FULL(maxrel_##TN, T, MB_MAXREL)                                                          \
    MB_ROWS(sum_##TN, T, MB_SUM)                                                                \
    MB_ROWS(wsum_##TN, T, MB_WSUM)                                                              \
    MB_ROWS(max_##TN, T, MB_MAX)                                                                \
    MB_SEGMENTS(sum_##TN, T, MB_SUM)                                                            \
    MB_SEGMENTS(dot_##TN, T, MB_DOT)                                                            \
    MB_SEGMENTS(min_##TN, T, MB_MIN)                                                            \
    MB_SEGMENTS(max_##TN, T, MB_MAX)

#define MB_FOR_ACC(A, AN)                                                                       \
    MB_FULL_FINAL(sum_##AN, A, MB_SUM)                                                          \
    MB_FULL_FINAL(dot_##AN, A, MB_DOT)                                                          \
    MB_FULL_FINAL(min_##AN, A, MB_MIN)                                                          \
    MB_FULL_FINAL(max_##AN, A, MB_MAX)                                                          \
    MB_FULL_FINAL(maxabs_##AN, A, MB_MAXABS)                                                    \
    MB_FULL_FINAL(maxabsdiff_##AN, A, MB_MAXABSDIFF)                                            \
    MB_FULL_FINAL(maxrel_##AN, A, MB_MAXREL)                                                    \
    MB_ROWS_FINAL(sum_##AN, A, MB_SUM)                                                          \
    MB_ROWS_FINAL(wsum_##AN, A, MB_WSUM)                                                        \
    MB_ROWS_FINAL(max_##AN, A, MB_MAX)

MB_FOR_TYPE(float, f32)
MB_FOR_TYPE(double, f64)
MB_FOR_TYPE(mb_f16, f16)
MB_FOR_TYPE(mb_bf16, bf16)
MB_FOR_ACC(float, f32)
MB_FOR_ACC(double, f64)
