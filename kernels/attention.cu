// Block-sparse attention forward, FlashAttention-2 structure (Dao, "FlashAttention-2: Faster
// Attention with Better Parallelism and Work Partitioning", 2023): each CTA owns QT query rows
// of one (batch, head), walks the kept key blocks of its mask row in chunks of KT keys, and
// keeps the online-softmax state (row max, row sum, O accumulator) in registers.
//
// Compiled by NVRTC once per variant: the host prepends the MB_ATT_* defines below. No
// #include (NVRTC runs without toolkit headers): 16-bit values travel as raw bits, and
// conversions, tensor-core and async-copy instructions are inline PTX (PTX ISA 8.x:
// mma.sync.m16n8k16, ldmatrix, cp.async; all sm_80+).
//
//   attention_mma  f16 / bf16, tensor cores: S = Q K^T and O += P V by mma.sync m16n8k16 with
//                  f32 accumulation; P is rounded to the input type for the second product,
//                  as FlashAttention does.
//   attention_fma  f32, plain FMA (no TF32: the f32 path keeps f32 accuracy).
//
// Non-finite scores propagate as in torch's SDPA: the running max is NaN-propagating (PTX
// max.NaN, the cost of fmaxf, which would drop a NaN score), so a NaN score makes the row's max,
// sum and output NaN, a +inf score gives exp2(inf - inf) = NaN, and -inf acts as masked. A row
// with sum 0 kept nothing (O = 0, LSE = -inf); NaN passes through the final division.

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

#ifndef MB_ATT_D
#define MB_ATT_D 64
#endif
#ifndef MB_ATT_WARPS
#define MB_ATT_WARPS 4
#endif
#ifndef MB_ATT_MT
#define MB_ATT_MT 1
#endif
#ifndef MB_ATT_KT
#define MB_ATT_KT 64
#endif
#ifndef MB_ATT_BF16
#define MB_ATT_BF16 0
#endif
#ifndef MB_ATT_FMA
#define MB_ATT_FMA 0
#endif

// Launch parameters, one struct passed by value; the Rust side mirrors it (`AttentionParams`).
struct MbAttParams {
    u64 q, k, v, o;   // [B, Hq, Sq, D], [B, Hkv, Skv, D] x2, [B, Hq, Sq, D]
    u64 lse;          // [B, Hq, Sq] f32, or 0
    u64 rows;         // u32 [mask rows + 1]: start of each mask row in `entries`
    u64 entries;      // u32 key-block index | 0x80000000 for a full block
    u64 ids;          // aux: u32 [Sq] document ids (predicate 3, 4); predicate 5: the first
                      // tile of each mask row, then the element bits from index bits_at
                      // (src/attention/kernel_rule.rs); else unused
    u64 work;         // u32 [items]: CTA -> work item (longest first), or 0 for identity
    int heads_q, heads_kv, seq_q, seq_kv;
    int bq, bk, qb_count, mask_heads;
    int mask_b_bcast, mask_h_bcast, predicate, window;
    int tiles;        // query tiles per (b, h): ceil(Sq / QT)
    int items;        // B * Hq * tiles
    float scale_log2; // softmax scale * log2(e): scores live in base 2
    int bits_at;      // predicate 5: where the element bits start in `ids` (the mask rows)
};

#define D MB_ATT_D
#define MB_LN2 0.6931471805599453f
#define MB_NEG_INF __int_as_float(0xff800000)

// Predicate 5: the partial block's own bits (src/attention/element_bits.rs).
#define MB_ATT_RULE_BITS 5

// Element rule inside partial blocks (src/attention/predicate.rs, `MaskPredicate::keeps`), or
// for predicate 5 bit (i, j) of element-bits tile `tile`: row i % BQ, column c = j % BK (blocks
// start at multiples of BQ and BK, powers of two) is bit c % 32 of word
// (tile * BQ + i % BQ) * ceil(BK / 32) + c / 32 of the words at `ids + bits_at`.
__device__ __forceinline__ bool mb_att_keeps(const MbAttParams& p, u32 tile, int i, int j) {
    if (p.predicate == MB_ATT_RULE_BITS) {
        const u32* bits = reinterpret_cast<const u32*>(p.ids) + p.bits_at;
        const u32 row_words = (u32)(p.bk + 31) >> 5;
        const u32 c = (u32)j & (u32)(p.bk - 1);
        const u32 w = bits[((u64)tile * p.bq + ((u32)i & (u32)(p.bq - 1))) * row_words + (c >> 5)];
        return (w >> (c & 31)) & 1u;
    }
    const long long qpos = (long long)i + p.seq_kv;  // query i sits at key position i + Skv - Sq
    const long long kpos = (long long)j + p.seq_q;
    const bool causal = kpos <= qpos;
    switch (p.predicate) {
    case 0: return true;
    case 1: return causal;
    case 2: return causal && qpos < kpos + p.window;
    default: {
        const u32* ids = reinterpret_cast<const u32*>(p.ids);
        return ids[i] == ids[j] && (p.predicate == 3 || causal);
    }
    }
}

// The CTA's work item: (batch, query head, query tile) and its mask row's entry range.
struct MbAttTask {
    int b, h, hk, i0;
    u32 e_begin, e_end;
    u32 tile0;  // predicate 5: the mask row's first element-bits tile (entry e: e - e_begin more)
};

__device__ __forceinline__ MbAttTask mb_att_task(const MbAttParams& p, int qt) {
    const u32 item = p.work ? reinterpret_cast<const u32*>(p.work)[blockIdx.x] : blockIdx.x;
    MbAttTask t;
    const u32 bh = item / (u32)p.tiles;
    t.i0 = (int)(item % (u32)p.tiles) * qt;
    t.h = (int)(bh % (u32)p.heads_q);
    t.b = (int)(bh / (u32)p.heads_q);
    t.hk = t.h / (p.heads_q / p.heads_kv);
    const int qblock = t.i0 / p.bq;
    const int mrow = ((p.mask_b_bcast ? 0 : t.b) * p.mask_heads + (p.mask_h_bcast ? 0 : t.h))
        * p.qb_count + qblock;
    const u32* rows = reinterpret_cast<const u32*>(p.rows);
    t.e_begin = rows[mrow];
    t.e_end = rows[mrow + 1];
    t.tile0 = p.predicate == MB_ATT_RULE_BITS ? reinterpret_cast<const u32*>(p.ids)[mrow] : 0u;
    return t;
}

// Chunk c of a row: KT keys of kept block entries[c / chunks_per_block]. Chunks that start at
// or past Skv (inside a partial last block) are skipped.
struct MbAttChunk {
    int j0;
    bool full;
    u32 tile;  // predicate 5, partial block: its element-bits tile (partial entries come first)
};

__device__ __forceinline__ MbAttChunk mb_att_chunk(const MbAttParams& p, const MbAttTask& t,
                                                   u32 c, int kt) {
    const int per_block = p.bk / kt;
    const u32 e = reinterpret_cast<const u32*>(p.entries)[t.e_begin + c / per_block];
    MbAttChunk ch;
    ch.full = (e >> 31) != 0;
    ch.tile = t.tile0 + c / per_block;
    ch.j0 = (int)(e & 0x7fffffffu) * p.bk + (int)(c % per_block) * kt;
    return ch;
}

__device__ __forceinline__ u32 mb_att_next(const MbAttParams& p, const MbAttTask& t, u32 c,
                                           u32 total, int kt) {
    while (c < total && mb_att_chunk(p, t, c, kt).j0 >= p.seq_kv) ++c;
    return c;
}

// max(a, b), NaN if either is (sm_80's max.NaN.f32: one instruction, as fmaxf).
__device__ __forceinline__ float mb_att_max(float a, float b) {
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

__device__ __forceinline__ float mb_ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

#if !MB_ATT_FMA
// ---------------------------------------------------------------------------------------
// Tensor-core path (f16 / bf16).

#define WARPS MB_ATT_WARPS
#define MT MB_ATT_MT
#define KT MB_ATT_KT
#define QT (16 * MT * WARPS)
#define THREADS (32 * WARPS)
// Shared-memory row stride in elements: D plus one 16-byte chunk. The skew puts the 8 rows an
// ldmatrix phase reads in 8 distinct 16-byte bank groups for every D here (an XOR swizzle does
// the same for power-of-two D, but not for D = 96).
#define LDS (D + 8)

__device__ __forceinline__ u32 mb_smem_addr(const void* p) {
    u32 a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}

// 16-byte global -> shared copy that bypasses L1; `bytes` = 0 writes zeros.
__device__ __forceinline__ void mb_cp_async16(u32 dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(bytes));
}
__device__ __forceinline__ void mb_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void mb_cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void mb_ldsm_x4(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void mb_ldsm_x4_t(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// c += a (16x16, row-major) * b (16x8, column-major), f32 accumulators.
__device__ __forceinline__ void mb_mma(float* c, const u32* a, u32 b0, u32 b1) {
#if MB_ATT_BF16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
#endif
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The two m16n8 products of one ldmatrix.x4 B load: b[0..1] feed `c0`, b[2..3] feed `c1`.
__device__ __forceinline__ void mb_mma_pair(float* c0, float* c1, const u32* a, const u32* b) {
    mb_mma(c0, a, b[0], b[1]);
    mb_mma(c1, a, b[2], b[3]);
}

// Two floats rounded to the input type (nearest even), `lo` in the low half.
__device__ __forceinline__ u32 mb_pack(float lo, float hi) {
    u32 r;
#if MB_ATT_BF16
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
    return r;
}

// ROWS x D tile starting at row `row0` of a [S, D] matrix into shared memory at shared-space
// address `dst`; rows at or past `valid` are zero-filled (their source address stays in bounds
// but is not read). Fixed trip count, so the unrolled loop uses constant offsets.
template <int ROWS>
__device__ __forceinline__ void mb_att_load_tile(u32 dst, const u16* g, int row0, int valid) {
    const int per_row = D / 8;
    // Partly unrolled: with one or two warps the trip count reaches 64, and a full unroll's
    // hoisted addresses would spill registers.
#pragma unroll 4
    for (int it = 0; it < (ROWS * per_row + THREADS - 1) / THREADS; ++it) {
        const int c = threadIdx.x + it * THREADS;
        if (ROWS * per_row % THREADS == 0 || c < ROWS * per_row) {
            const int r = c / per_row, ch = c % per_row;
            const bool ok = r < valid;
            const u16* src = g + ((u64)row0 + (ok ? r : 0)) * D + ch * 8;
            mb_cp_async16(dst + (r * LDS + ch * 8) * 2, src, ok ? 16 : 0);
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) attention_mma(const MbAttParams p) {
    extern __shared__ __align__(16) unsigned char mb_att_smem[];
    u16* q_s = reinterpret_cast<u16*>(mb_att_smem);
    u16* k_s = q_s + QT * LDS;      // two buffers of KT x LDS
    u16* v_s = k_s + 2 * KT * LDS;  // two buffers of KT x LDS

    const MbAttTask t = mb_att_task(p, QT);
    const u16* qg = reinterpret_cast<const u16*>(p.q) + ((u64)t.b * p.heads_q + t.h) * p.seq_q * D;
    const u16* kg = reinterpret_cast<const u16*>(p.k) + ((u64)t.b * p.heads_kv + t.hk) * p.seq_kv * D;
    const u16* vg = reinterpret_cast<const u16*>(p.v) + ((u64)t.b * p.heads_kv + t.hk) * p.seq_kv * D;
    const u32 total = (t.e_end - t.e_begin) * (u32)(p.bk / KT);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t4 = lane % 4;
    const int wrow = warp * 16 * MT;

    float o_acc[MT][D / 8][4];
    float m_run[MT][2], l_run[MT][2];
#pragma unroll
    for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
        for (int n = 0; n < D / 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) o_acc[mi][n][e] = 0.f;
        m_run[mi][0] = m_run[mi][1] = MB_NEG_INF;
        l_run[mi][0] = l_run[mi][1] = 0.f;
    }

    // Shared-space addresses: each lane's ldmatrix row address is a per-lane base plus
    // compile-time offsets (the fragment layouts of PTX ISA "Matrix Fragments for mma.m16n8k16").
    const u32 q_sa = mb_smem_addr(q_s), k_sa = mb_smem_addr(k_s), v_sa = mb_smem_addr(v_s);
    const int l7 = lane & 7, l8 = (lane >> 3) & 1, l16 = lane >> 4;
    // A (Q, row-major 16x16): matrices (rows 0-7 | 8-15) x (cols 0-7 | 8-15).
    const u32 q_lane = q_sa + ((wrow + l7 + l8 * 8) * LDS + l16 * 8) * 2;
    // B (K rows = keys): matrices (keys 0-7, dims 0-7 | 8-15), (keys 8-15, ...).
    const u32 k_lane = k_sa + ((l7 + l16 * 8) * LDS + l8 * 8) * 2;
    // B (V rows = keys, transposed): matrices (keys 0-7 | 8-15) x (dims 0-7 | 8-15).
    const u32 v_lane = v_sa + ((l7 + l8 * 8) * LDS + l16 * 8) * 2;
    const u32 buf_bytes = KT * LDS * 2;

    u32 c = mb_att_next(p, t, 0, total, KT);
    if (c < total) {
        mb_att_load_tile<QT>(q_sa, qg, t.i0, min(QT, p.seq_q - t.i0));
        const MbAttChunk ch = mb_att_chunk(p, t, c, KT);
        mb_att_load_tile<KT>(k_sa, kg, ch.j0, min(KT, p.seq_kv - ch.j0));
        mb_att_load_tile<KT>(v_sa, vg, ch.j0, min(KT, p.seq_kv - ch.j0));
    }
    mb_cp_commit();

    int buf = 0;
    while (c < total) {
        // One barrier per chunk: past it, this chunk's copies have landed for every thread and
        // every warp is done with the previous chunk, whose buffers the prefetch of the next
        // chunk then overwrites while this one is computed.
        mb_cp_wait<0>();
        __syncthreads();
        const u32 next = mb_att_next(p, t, c + 1, total, KT);
        if (next < total) {
            const MbAttChunk nc = mb_att_chunk(p, t, next, KT);
            const int valid = min(KT, p.seq_kv - nc.j0);
            mb_att_load_tile<KT>(k_sa + (buf ^ 1) * buf_bytes, kg, nc.j0, valid);
            mb_att_load_tile<KT>(v_sa + (buf ^ 1) * buf_bytes, vg, nc.j0, valid);
        }
        mb_cp_commit();

        const MbAttChunk ch = mb_att_chunk(p, t, c, KT);
        const u32 kb = k_lane + buf * buf_bytes;
        const u32 vb = v_lane + buf * buf_bytes;
        const bool masked = (!ch.full && p.predicate != 0) || ch.j0 + KT > p.seq_kv;

        // S = Q K^T for this warp's 16 * MT rows and the chunk's KT keys.
        float s[MT][KT / 8][4];
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int n = 0; n < KT / 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[mi][n][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            u32 a[MT][4];
#pragma unroll
            for (int mi = 0; mi < MT; ++mi)
                mb_ldsm_x4(a[mi], q_lane + (mi * 16 * LDS + kk * 16) * 2);
#pragma unroll
            for (int nn = 0; nn < KT / 16; ++nn) {
                u32 b[4];
                mb_ldsm_x4(b, kb + (nn * 16 * LDS + kk * 16) * 2);
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) mb_mma_pair(s[mi][2 * nn], s[mi][2 * nn + 1], a[mi], b);
            }
        }

        // Online softmax in base 2; the element mask only on partial or cut blocks.
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int row = min(t.i0 + wrow + mi * 16 + g + 8 * r, p.seq_q - 1);
                float mx = MB_NEG_INF;
#pragma unroll
                for (int n = 0; n < KT / 8; ++n)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        float x = s[mi][n][2 * r + e] * p.scale_log2;
                        if (masked) {
                            const int col = ch.j0 + n * 8 + 2 * t4 + e;
                            if (col >= p.seq_kv || !(ch.full || mb_att_keeps(p, ch.tile, row, col)))
                                x = MB_NEG_INF;
                        }
                        s[mi][n][2 * r + e] = x;
                        mx = mb_att_max(mx, x);
                    }
                mx = mb_att_max(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = mb_att_max(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = mb_att_max(m_run[mi][r], mx);
                // Nothing kept yet: subtract 0, so exp2(-inf - 0) = 0 instead of NaN.
                const float m_use = m_new == MB_NEG_INF ? 0.f : m_new;
                const float alpha = mb_ex2(m_run[mi][r] - m_use);
                m_run[mi][r] = m_new;
                float sum = 0.f;
#pragma unroll
                for (int n = 0; n < KT / 8; ++n)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float pr = mb_ex2(s[mi][n][2 * r + e] - m_use);
                        s[mi][n][2 * r + e] = pr;
                        sum += pr;
                    }
                l_run[mi][r] = l_run[mi][r] * alpha + sum;
#pragma unroll
                for (int n = 0; n < D / 8; ++n) {
                    o_acc[mi][n][2 * r] *= alpha;
                    o_acc[mi][n][2 * r + 1] *= alpha;
                }
            }
        }

        // O += P V: the score accumulators become the A operand (FlashAttention-2's register
        // reuse: an m16n8 C fragment pair has the layout of an m16k16 A fragment).
#pragma unroll
        for (int kk = 0; kk < KT / 16; ++kk) {
            u32 a[MT][4];
#pragma unroll
            for (int mi = 0; mi < MT; ++mi) {
                a[mi][0] = mb_pack(s[mi][2 * kk][0], s[mi][2 * kk][1]);
                a[mi][1] = mb_pack(s[mi][2 * kk][2], s[mi][2 * kk][3]);
                a[mi][2] = mb_pack(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
                a[mi][3] = mb_pack(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dd = 0; dd < D / 16; ++dd) {
                u32 b[4];
                mb_ldsm_x4_t(b, vb + (kk * 16 * LDS + dd * 16) * 2);
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
                    mb_mma_pair(o_acc[mi][2 * dd], o_acc[mi][2 * dd + 1], a[mi], b);
            }
        }
        c = next;
        buf ^= 1;
    }
    mb_cp_wait<0>();

    u32* og = reinterpret_cast<u32*>(p.o) + (((u64)t.b * p.heads_q + t.h) * p.seq_q) * (D / 2);
    float* lse = reinterpret_cast<float*>(p.lse);
#pragma unroll
    for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float l = l_run[mi][r];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const int row = t.i0 + wrow + mi * 16 + g + 8 * r;
            if (row >= p.seq_q) continue;
            // l = 0: nothing kept; l NaN: a NaN or +inf score, NaN through the division.
            const float inv = l == 0.f ? 0.f : 1.f / l;
#pragma unroll
            for (int n = 0; n < D / 8; ++n)
                og[(u64)row * (D / 2) + n * 4 + t4] =
                    mb_pack(o_acc[mi][n][2 * r] * inv, o_acc[mi][n][2 * r + 1] * inv);
            if (lse && t4 == 0)
                lse[((u64)t.b * p.heads_q + t.h) * p.seq_q + row] =
                    l == 0.f ? MB_NEG_INF : (m_run[mi][r] + log2f(l)) * MB_LN2;
        }
    }
}

#else
// ---------------------------------------------------------------------------------------
// FMA path (f32): 16 query rows per CTA, 8 threads per row, each owning the head dimensions
// u, u + 8, u + 16, ... (so a warp's four rows read the same K/V row: a broadcast, no bank
// conflict); keys in chunks of 16 staged in shared memory.

#define F_ROWS 16
#define F_KT 16
#define F_LANES 8

extern "C" __global__ void __launch_bounds__(F_ROWS * F_LANES) attention_fma(const MbAttParams p) {
    __shared__ float k_s[F_KT][D];
    __shared__ float v_s[F_KT][D];
    const MbAttTask t = mb_att_task(p, F_ROWS);
    const float* qg = reinterpret_cast<const float*>(p.q) + ((u64)t.b * p.heads_q + t.h) * p.seq_q * D;
    const float* kg = reinterpret_cast<const float*>(p.k) + ((u64)t.b * p.heads_kv + t.hk) * p.seq_kv * D;
    const float* vg = reinterpret_cast<const float*>(p.v) + ((u64)t.b * p.heads_kv + t.hk) * p.seq_kv * D;
    const u32 total = (t.e_end - t.e_begin) * (u32)(p.bk / F_KT);
    const int u = threadIdx.x % F_LANES;
    const int row = t.i0 + threadIdx.x / F_LANES;
    const int qrow = min(row, p.seq_q - 1);

    float qr[D / F_LANES], acc[D / F_LANES];
#pragma unroll
    for (int c = 0; c < D / F_LANES; ++c) {
        qr[c] = qg[(u64)qrow * D + u + F_LANES * c];
        acc[c] = 0.f;
    }
    float m_run = MB_NEG_INF, l_run = 0.f;
    for (u32 c = mb_att_next(p, t, 0, total, F_KT); c < total;
         c = mb_att_next(p, t, c + 1, total, F_KT)) {
        const MbAttChunk ch = mb_att_chunk(p, t, c, F_KT);
        const int valid = min(F_KT, p.seq_kv - ch.j0);
        __syncthreads();
        for (int x = threadIdx.x; x < F_KT * D; x += F_ROWS * F_LANES) {
            const int r = x / D, col = x % D;
            const bool ok = r < valid;
            k_s[r][col] = ok ? kg[((u64)ch.j0 + r) * D + col] : 0.f;
            v_s[r][col] = ok ? vg[((u64)ch.j0 + r) * D + col] : 0.f;
        }
        __syncthreads();
        const bool masked = (!ch.full && p.predicate != 0) || valid < F_KT;
        float s[F_KT];
        float mx = MB_NEG_INF;
#pragma unroll
        for (int j = 0; j < F_KT; ++j) {
            float part = 0.f;
#pragma unroll
            for (int c2 = 0; c2 < D / F_LANES; ++c2) part = fmaf(qr[c2], k_s[j][u + F_LANES * c2], part);
            part += __shfl_xor_sync(0xffffffffu, part, 1);
            part += __shfl_xor_sync(0xffffffffu, part, 2);
            part += __shfl_xor_sync(0xffffffffu, part, 4);
            float x = part * p.scale_log2;
            if (masked && (j >= valid || !(ch.full || mb_att_keeps(p, ch.tile, qrow, ch.j0 + j))))
                x = MB_NEG_INF;
            s[j] = x;
            mx = mb_att_max(mx, x);
        }
        const float m_new = mb_att_max(m_run, mx);
        const float m_use = m_new == MB_NEG_INF ? 0.f : m_new;
        const float alpha = exp2f(m_run - m_use);
        m_run = m_new;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < F_KT; ++j) {
            s[j] = exp2f(s[j] - m_use);
            sum += s[j];
        }
        l_run = l_run * alpha + sum;
#pragma unroll
        for (int c2 = 0; c2 < D / F_LANES; ++c2) {
            float a = acc[c2] * alpha;
#pragma unroll
            for (int j = 0; j < F_KT; ++j) a = fmaf(s[j], v_s[j][u + F_LANES * c2], a);
            acc[c2] = a;
        }
    }
    if (row >= p.seq_q) return;
    const float inv = l_run == 0.f ? 0.f : 1.f / l_run;
    float* og = reinterpret_cast<float*>(p.o) + (((u64)t.b * p.heads_q + t.h) * p.seq_q + row) * D;
#pragma unroll
    for (int c = 0; c < D / F_LANES; ++c) og[u + F_LANES * c] = acc[c] * inv;
    float* lse = reinterpret_cast<float*>(p.lse);
    if (lse && u == 0)
        lse[((u64)t.b * p.heads_q + t.h) * p.seq_q + row] =
            l_run == 0.f ? MB_NEG_INF : (m_run + log2f(l_run)) * MB_LN2;
}
#endif
