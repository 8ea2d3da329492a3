// Block-sparse attention forward: the online-softmax recurrence of FlashAttention-2 (Dao,
// 2023) over the kept key blocks of a FlexAttention-style block mask, one workgroup per
// (batch, query head, query block) at a time. The query block is processed in sub-tiles of
// R rows and each key block in chunks of C keys, so Q, the accumulators, K, V and the scores
// all sit in workgroup memory; scores, statistics and accumulators are f32.
//
// Non-finite scores propagate as in torch's SDPA: a row that meets a NaN or +inf score gets O
// and LSE NaN; -inf acts as masked. WGSL lets compilers assume no NaN/Inf (Mesa folds x != x to
// false), so scores are tested on their bits, and a bad row is marked by l = -1 (a sum of
// exponentials is never negative) instead of carrying NaN through max().
//
// The host prepends: `enable f16;` for f16 input, `alias T` (element), constants D (head
// dimension), R, C, WG.

struct Params {
    batch: u32,
    heads_q: u32,
    heads_kv: u32,
    seq_q: u32,
    seq_kv: u32,
    // BQ, BK and their counts.
    bq: u32,
    bk: u32,
    qb_count: u32,
    kb_count: u32,
    // 1 where the mask's batch (heads) dimension is broadcast.
    mask_batch_1: u32,
    mask_heads_1: u32,
    // 0 none, 1 causal, 2 sliding window, 3 documents, 4 causal documents, 5 element bits
    // (src/attention/kernel_rule.rs).
    predicate: u32,
    window: u32,
    write_lse: u32,
    scale: f32,
    tasks: u32,
}

@group(0) @binding(0) var<storage, read> q: array<T>;
@group(0) @binding(1) var<storage, read> k: array<T>;
@group(0) @binding(2) var<storage, read> v: array<T>;
@group(0) @binding(3) var<storage, read_write> o: array<T>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
// Per mask row: start of its entries in `entries` (row count + 1 values), then the entries:
// key block | 0x80000000 for a full block.
@group(0) @binding(5) var<storage, read> rows: array<u32>;
@group(0) @binding(6) var<storage, read> entries: array<u32>;
// Predicates 3, 4: the document id of every token. Predicate 5: the first tile of every mask
// row, then from index `mask_rows` the packed element bits (tile t, row r, column c: bit c % 32
// of word (t * BQ + r) * ceil(BK / 32) + c / 32). Else one unused value.
@group(0) @binding(7) var<storage, read> aux: array<u32>;
@group(0) @binding(8) var<uniform> params: Params;

var<workgroup> qs: array<f32, R * D>;
var<workgroup> acc: array<f32, R * D>;
var<workgroup> ks: array<f32, C * D>;
var<workgroup> vs: array<f32, C * D>;
var<workgroup> s: array<f32, R * C>;
var<workgroup> m: array<f32, R>;
var<workgroup> l: array<f32, R>;
var<workgroup> alpha: array<f32, R>;

const NEG_INF_BITS: u32 = 0xff800000u;

fn neg_inf() -> f32 {
    return bitcast<f32>(NEG_INF_BITS);
}

fn is_neg_inf(x: f32) -> bool {
    return bitcast<u32>(x) == NEG_INF_BITS;
}

// Whether a score is NaN or +inf (on the bits: see the top).
fn nan_or_pos_inf(x: f32) -> bool {
    let b = bitcast<u32>(x);
    return (b & 0x7fffffffu) >= 0x7f800000u && b != NEG_INF_BITS;
}

// A quiet NaN, from its bits.
fn nan_f32() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// Whether query i keeps key j inside a partial block (MaskPredicate::keeps, or the bit of
// `tile` at the block-relative position for predicate 5; `bits_at` is where the words start).
fn keeps(i: u32, j: u32, tile: u32, bits_at: u32) -> bool {
    let causal = j + params.seq_q <= i + params.seq_kv;
    switch params.predicate {
        case 5u: {
            // Blocks start at multiples of BQ and BK, both powers of two.
            let row_words = (params.bk + 31u) / 32u;
            let c = j & (params.bk - 1u);
            let w = aux[bits_at + (tile * params.bq + (i & (params.bq - 1u))) * row_words + c / 32u];
            return ((w >> (c % 32u)) & 1u) != 0u;
        }
        case 1u: {
            return causal;
        }
        case 2u: {
            return causal && i + params.seq_kv < j + params.seq_q + params.window;
        }
        case 3u: {
            return aux[i] == aux[j];
        }
        case 4u: {
            return aux[i] == aux[j] && causal;
        }
        default: {
            return true;
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let sq = params.seq_q;
    let skv = params.seq_kv;
    for (var task = wid.x; task < params.tasks; task += nwg.x) {
        let qb = task % params.qb_count;
        let h = (task / params.qb_count) % params.heads_q;
        let b = task / (params.qb_count * params.heads_q);
        let hk = h / (params.heads_q / params.heads_kv);
        let mb = select(b, 0u, params.mask_batch_1 != 0u);
        let mh = select(h, 0u, params.mask_heads_1 != 0u);
        let mask_batch = select(params.batch, 1u, params.mask_batch_1 != 0u);
        let mask_heads = select(params.heads_q, 1u, params.mask_heads_1 != 0u);
        let mrow = (mb * mask_heads + mh) * params.qb_count + qb;
        // Element bits: the row's first tile (its partial blocks come first, so entry ei is
        // tile tile0 + ei - e0) and where the words start, after the mask rows' tile starts.
        let bits_at = mask_batch * mask_heads * params.qb_count;
        var tile0 = 0u;
        if params.predicate == 5u {
            tile0 = aux[mrow];
        }
        let e0 = rows[mrow];
        let e1 = rows[mrow + 1u];
        let i_block = qb * params.bq;
        let block_rows = min(params.bq, sq - i_block);
        for (var r0 = 0u; r0 < block_rows; r0 += R) {
            let i0 = i_block + r0;
            let nr = min(R, block_rows - r0);
            let q_base = ((b * params.heads_q + h) * sq + i0) * D;
            for (var e = lid; e < R * D; e += WG) {
                let inside = e < nr * D;
                qs[e] = select(0.0, f32(q[q_base + select(0u, e, inside)]) * params.scale, inside);
                acc[e] = 0.0;
            }
            for (var r = lid; r < R; r += WG) {
                m[r] = neg_inf();
                l[r] = 0.0;
            }
            for (var ei = e0; ei < e1; ei++) {
                let entry = entries[ei];
                let full = (entry & 0x80000000u) != 0u;
                let j_block = (entry & 0x7fffffffu) * params.bk;
                let block_cols = min(params.bk, skv - j_block);
                for (var c0 = 0u; c0 < block_cols; c0 += C) {
                    let j0 = j_block + c0;
                    let nc = min(C, block_cols - c0);
                    let kv_base = ((b * params.heads_kv + hk) * skv + j0) * D;
                    workgroupBarrier();
                    for (var e = lid; e < C * D; e += WG) {
                        let inside = e < nc * D;
                        ks[e] = select(0.0, f32(k[kv_base + select(0u, e, inside)]), inside);
                        vs[e] = select(0.0, f32(v[kv_base + select(0u, e, inside)]), inside);
                    }
                    workgroupBarrier();
                    for (var e = lid; e < R * C; e += WG) {
                        let r = e / C;
                        let c = e % C;
                        var dot = 0.0;
                        for (var d = 0u; d < D; d++) {
                            dot += qs[r * D + d] * ks[c * D + d];
                        }
                        let kept = r < nr && c < nc && (full || keeps(i0 + r, j0 + c, tile0 + ei - e0, bits_at));
                        s[e] = select(neg_inf(), dot, kept);
                    }
                    workgroupBarrier();
                    for (var r = lid; r < R; r += WG) {
                        var m_new = m[r];
                        // l < 0: the row met a NaN or +inf score before.
                        var bad = l[r] < 0.0;
                        for (var c = 0u; c < C; c++) {
                            let x = s[r * C + c];
                            if !is_neg_inf(x) {
                                bad = bad || nan_or_pos_inf(x);
                                m_new = select(max(m_new, x), x, is_neg_inf(m_new));
                            }
                        }
                        if bad {
                            // Its output is NaN (written at the end): nothing to accumulate.
                            l[r] = -1.0;
                            alpha[r] = 1.0;
                            for (var c = 0u; c < C; c++) {
                                s[r * C + c] = 0.0;
                            }
                        } else if is_neg_inf(m_new) {
                            // Nothing kept in this row yet: its state stays as it is.
                            alpha[r] = 1.0;
                            for (var c = 0u; c < C; c++) {
                                s[r * C + c] = 0.0;
                            }
                        } else {
                            let a = select(exp(m[r] - m_new), 0.0, is_neg_inf(m[r]));
                            var sum = 0.0;
                            for (var c = 0u; c < C; c++) {
                                let x = s[r * C + c];
                                let p = select(exp(x - m_new), 0.0, is_neg_inf(x));
                                s[r * C + c] = p;
                                sum += p;
                            }
                            l[r] = l[r] * a + sum;
                            m[r] = m_new;
                            alpha[r] = a;
                        }
                    }
                    workgroupBarrier();
                    for (var e = lid; e < R * D; e += WG) {
                        let r = e / D;
                        let d = e % D;
                        var x = acc[e] * alpha[r];
                        for (var c = 0u; c < C; c++) {
                            x += s[r * C + c] * vs[c * D + d];
                        }
                        acc[e] = x;
                    }
                }
            }
            workgroupBarrier();
            // l = 0: nothing kept (O = 0, LSE = -inf); l < 0: a NaN or +inf score (NaN).
            for (var e = lid; e < nr * D; e += WG) {
                let r = e / D;
                let lr = l[r];
                o[q_base + e] = T(select(select(0.0, acc[e] / lr, lr > 0.0), nan_f32(), lr < 0.0));
            }
            if params.write_lse != 0u {
                for (var r = lid; r < nr; r += WG) {
                    lse[(b * params.heads_q + h) * sq + i0 + r] = select(
                        select(neg_inf(), m[r] + log(l[r]), l[r] > 0.0),
                        nan_f32(),
                        l[r] < 0.0,
                    );
                }
            }
            workgroupBarrier();
        }
    }
}
