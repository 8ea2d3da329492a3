//! The element-mask (packed bits, any `mask_mod`) part of the attention parity suite, for any
//! backend. Every reference comes from outside the bits: the `mask_mod` closure a mask was built
//! from, or the boolean tiles a test drew and packed with its own packer
//! ([`pack_le_bytes`], bytes first as `numpy.packbits(bitorder="little")`, not the crate's
//! `ElementBits::pack`), through `attention_check::reference_with`.
#![allow(dead_code)]

use std::sync::Arc;

use megabatch::{
    AttentionElement, AttentionSpec, BlockMask, BlockMaskParts, MaskPredicate, SparseAttention,
};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;

use super::attention_check::{
    case, check_against, check_low_precision_with, reference_with, run_on, spec, Case,
};

/// How a backend's output is held to the f64 reference (`tests/common/attention_check.rs`).
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// f32 computation, output rounded once: `(1e-5 + u) max |O_ref|` for unit roundoff `u`.
    Rounded(f64),
    /// Tensor cores (P rounded before P V): twice the naive low-precision error plus the above.
    TensorCore(f64),
}

/// `backend` on `c` against the reference of the kept pairs `keeps`, by `rule`.
fn check_rule<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
    rule: Rule,
    keeps: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Result<(), TestCaseError> {
    match rule {
        Rule::Rounded(u) => check_against::<T, B>(backend, c, u, reference_with(c, keeps)),
        Rule::TensorCore(u) => check_low_precision_with::<T, B>(backend, c, u, keeps),
    }
}

/// A `mask_mod(b, h, q_idx, kv_idx)`.
pub type MaskMod = Arc<dyn Fn(usize, usize, usize, usize) -> bool + Send + Sync>;

/// SplitMix64: a hash of the element for the Bernoulli masks.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One of the `mask_mod`s FlexAttention users write, with parameters drawn from `seed`: prefix-LM,
/// per-batch padding of queries and keys, dilated, image-text (a bidirectional image span
/// in a causal text), per-head sliding windows, and per-(b, h) Bernoulli noise. Returns its name.
pub fn random_mask_mod(seed: u64, sq: usize, skv: usize) -> (&'static str, MaskMod) {
    let mut rng = super::rng(seed);
    // Query i sits at key position i + skv - sq (bottom-right aligned, as the crate's causal).
    let causal = move |i: usize, j: usize| j + sq <= i + skv;
    match seed % 6 {
        0 => {
            let prefix = rng.random_range(0..=skv);
            (
                "prefix-lm",
                Arc::new(move |_, _, i, j| j < prefix || causal(i, j)),
            )
        }
        1 => {
            let lens: Vec<(usize, usize)> = (0..4)
                .map(|_| (rng.random_range(0..=sq), rng.random_range(0..=skv)))
                .collect();
            (
                "padding",
                Arc::new(move |b, _, i, j| i < lens[b % 4].0 && j < lens[b % 4].1),
            )
        }
        2 => {
            let stride = rng.random_range(2..6);
            (
                "dilated",
                Arc::new(move |_, _, i, j| i.abs_diff(j) % stride == 0),
            )
        }
        3 => {
            let a = rng.random_range(0..=skv);
            let b = rng.random_range(a..=skv);
            let image = move |x: usize| (a..b).contains(&x);
            (
                "image-text",
                Arc::new(move |_, _, i, j| causal(i, j) || (image(i) && image(j))),
            )
        }
        4 => {
            let base = rng.random_range(1..40);
            (
                "per-head window",
                Arc::new(move |_, h, i, j| causal(i, j) && i + skv < j + sq + base + 9 * h),
            )
        }
        _ => {
            let density = rng.random_range(0..=256u64);
            (
                "bernoulli",
                Arc::new(move |b, h, i, j| {
                    let key =
                        seed ^ ((b as u64) << 48 | (h as u64) << 40 | (i as u64) << 20 | j as u64);
                    mix(key) % 256 < density
                }),
            )
        }
    }
}

/// A random `mask_mod` on `backend`: the mask from [`BlockMask::from_mask_mod_bh`] (the mask's
/// batch and head dimensions broadcast or not, by `seed`), the reference from the closure
/// itself, so the block classification is checked too.
#[allow(clippy::too_many_arguments)]
pub fn check_mask_mod<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    s: AttentionSpec,
    block: (usize, usize),
    seed: u64,
    rule: Rule,
) -> Result<(), TestCaseError> {
    let (name, f) = random_mask_mod(seed, s.seq_q, s.seq_kv);
    let mb = if seed & 64 == 0 { 1 } else { s.batch };
    let mh = if seed & 128 == 0 { 1 } else { s.heads_q };
    let g = Arc::clone(&f);
    let mask = BlockMask::from_mask_mod_bh(mb, mh, s.seq_q, s.seq_kv, block, move |b, h, i, j| {
        g(b, h, i, j)
    })
    .unwrap();
    let truth = move |b: usize, h: usize, i: usize, j: usize| {
        f(
            if mb == 1 { 0 } else { b },
            if mh == 1 { 0 } else { h },
            i,
            j,
        )
    };
    let c = case::<T>(s, mask, seed);
    check_rule::<T, B>(backend, &c, rule, &truth)
        .map_err(|e| TestCaseError::fail(format!("{name} mask_mod: {e}")))
}

/// `(nnz, bq, bk)` booleans packed as the documented layout, built independently of the crate:
/// each row's bits into bytes, least significant bit first (`numpy.packbits(bitorder="little")`),
/// the row padded to a multiple of 4 bytes, then read as little-endian `u32`.
pub fn pack_le_bytes(bools: &[bool], bk: usize) -> Vec<u32> {
    let row_bytes = bk.div_ceil(32) * 4;
    let mut bytes = Vec::new();
    for row in bools.chunks(bk) {
        let mut packed = vec![0u8; row_bytes];
        for (c, &keep) in row.iter().enumerate() {
            packed[c / 8] |= u8::from(keep) << (c % 8);
        }
        bytes.extend(packed);
    }
    bytes
        .chunks(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}

/// What a partial block's tile holds.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Tile {
    /// Nothing kept: the block adds nothing.
    AllFalse,
    /// Every in-range pair kept: the block acts as a full one.
    AllTrue,
    /// Bernoulli with the given density.
    Random(f64),
}

/// A mask drawn at random with its own truth: for every mask row `[mb, mh, QB]`, key blocks in
/// random order, some partial (tiles as `tile_kind` draws them), some full, the rest absent;
/// `empty_rows` of the rows get only all-false partial blocks. Returns the mask (built with
/// `from_parts_with_bits` from [`pack_le_bytes`]) and its truth table.
#[allow(clippy::too_many_arguments)]
pub fn random_bits_mask(
    (mb, mh): (usize, usize),
    (sq, skv): (usize, usize),
    (bq, bk): (usize, usize),
    seed: u64,
    empty_rows: f64,
    tile_kind: &dyn Fn(&mut rand::rngs::StdRng) -> Tile,
) -> (BlockMask, MaskMod) {
    let mut rng = super::rng(seed);
    let (qb, kb) = (sq.div_ceil(bq), skv.div_ceil(bk));
    let rows = mb * mh * qb;
    let (mut pn, mut pi) = (vec![0i32; rows], vec![0i32; rows * kb]);
    let (mut fnum, mut fi) = (vec![0i32; rows], vec![0i32; rows * kb]);
    // truth[r][k]: None absent, Some(None) full, Some(Some(tile)) partial.
    let mut truth: Vec<Vec<Option<Option<Vec<bool>>>>> = vec![vec![None; kb]; rows];
    let mut bools = Vec::new();
    for r in 0..rows {
        let q = r % qb;
        let mut order: Vec<usize> = (0..kb).collect();
        order.shuffle(&mut rng);
        let empty = rng.random::<f64>() < empty_rows;
        let kept = rng.random_range(0..=kb);
        for &k in &order[..kept] {
            let partial = empty || rng.random::<f64>() < 0.7;
            if !partial {
                fi[r * kb + fnum[r] as usize] = k as i32;
                fnum[r] += 1;
                truth[r][k] = Some(None);
                continue;
            }
            let kind = if empty {
                Tile::AllFalse
            } else {
                tile_kind(&mut rng)
            };
            let tile: Vec<bool> = (0..bq * bk)
                .map(|e| {
                    let (i, j) = (q * bq + e / bk, k * bk + e % bk);
                    i < sq
                        && j < skv
                        && match kind {
                            Tile::AllFalse => false,
                            Tile::AllTrue => true,
                            Tile::Random(p) => rng.random::<f64>() < p,
                        }
                })
                .collect();
            bools.extend_from_slice(&tile);
            pi[r * kb + pn[r] as usize] = k as i32;
            pn[r] += 1;
            truth[r][k] = Some(Some(tile));
        }
        // The undefined tail of each index row holds garbage, as PyTorch's may.
        for slot in pn[r] as usize..kb {
            pi[r * kb + slot] = -7;
        }
    }
    let mask = BlockMask::from_parts_with_bits(
        BlockMaskParts {
            seq_q: sq,
            seq_kv: skv,
            block: (bq, bk),
            batch: mb,
            heads: mh,
            kv_num_blocks: pn,
            kv_indices: pi,
            full: Some((fnum, fi)),
            predicate: MaskPredicate::None,
        },
        pack_le_bytes(&bools, bk),
    )
    .unwrap();
    let keep: MaskMod = Arc::new(move |b, h, i, j| {
        let r = ((if mb == 1 { 0 } else { b }) * mh + if mh == 1 { 0 } else { h }) * qb + i / bq;
        match &truth[r][j / bk] {
            None => false,
            Some(None) => true,
            Some(Some(tile)) => tile[(i % bq) * bk + j % bk],
        }
    });
    (mask, keep)
}

/// Random packed masks on `backend` against the reference from the test's own tiles: random
/// block order, random densities including all-false and all-true tiles, broadcast or
/// per-(b, h) masks, some rows with only all-false blocks.
pub fn check_random_bits<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    s: AttentionSpec,
    block: (usize, usize),
    seed: u64,
    rule: Rule,
) -> Result<(), TestCaseError> {
    let dims = (
        if seed & 1 == 0 { 1 } else { s.batch },
        if seed & 2 == 0 { 1 } else { s.heads_q },
    );
    let kinds = |rng: &mut rand::rngs::StdRng| match rng.random_range(0..5) {
        0 => Tile::AllFalse,
        1 => Tile::AllTrue,
        _ => Tile::Random(rng.random()),
    };
    let (mask, keep) = random_bits_mask(dims, (s.seq_q, s.seq_kv), block, seed, 0.2, &kinds);
    let c = case::<T>(s, mask, seed);
    check_rule::<T, B>(backend, &c, rule, &*keep)
}

/// Rows whose partial blocks are all false, and nothing else, are empty rows: O exactly 0 and
/// LSE -inf, never NaN (finite inputs); the other rows match the reference. Half the rows of
/// a per-(b, h) mask are made so, with all-true tiles elsewhere.
pub fn check_empty_rows<T: AttentionElement, B: SparseAttention<T>>(backend: &B, rule: Rule) {
    for (seed, block, (sq, skv)) in [(1u64, (32, 16), (96, 80)), (2, (16, 64), (50, 130))] {
        let s = spec(2, 1, 2, sq, skv, 32);
        let all_true = |_: &mut rand::rngs::StdRng| Tile::AllTrue;
        let (mask, keep) = random_bits_mask((2, 2), (sq, skv), block, seed, 0.5, &all_true);
        let c = case::<T>(s, mask, seed);
        let (_, lse_ref) = reference_with(&c, &*keep);
        let (o, lse) = run_on::<T, B>(backend, &c);
        let d = s.head_dim;
        let mut empty = 0;
        for (r, &l_ref) in lse_ref.iter().enumerate() {
            let out = &o[r * d..(r + 1) * d];
            if l_ref == f64::NEG_INFINITY {
                empty += 1;
                assert!(
                    lse[r] == f32::NEG_INFINITY && out.iter().all(|&x| x == 0.0),
                    "{} row {r}: an empty row must give O = 0 and LSE = -inf (LSE {}, O[0] {})",
                    T::DTYPE,
                    lse[r],
                    out[0]
                );
            } else {
                assert!(
                    lse[r].is_finite() && out.iter().all(|x| x.is_finite()),
                    "row {r}"
                );
            }
        }
        // The draw must really have made empty rows and kept ones.
        assert!(empty > 0 && empty < lse_ref.len(), "{empty} empty rows");
        check_rule::<T, B>(backend, &c, rule, &*keep).unwrap();
    }
}

/// Rebuilds `mask`'s lists (a broadcast built-in mask) with element bits: each partial block's
/// tile from the mask's predicate; `full_as_partial` turns full blocks into all-true partial
/// ones; `extra_false` appends every absent block as a partial one with an all-false tile
/// (after the real partial blocks, so the kept blocks keep their order).
fn rebuild(mask: &BlockMask, full_as_partial: bool, extra_false: bool) -> BlockMask {
    let (sq, skv) = mask.seq_lens();
    let (bq, bk) = mask.block_size();
    let (qb, kb) = mask.block_counts();
    let (mut pn, mut pi) = (vec![0i32; qb], vec![0i32; qb * kb]);
    let (mut fnum, mut fi) = (vec![0i32; qb], vec![0i32; qb * kb]);
    let mut bools = Vec::new();
    let predicate = mask.predicate().clone();
    let mut push_partial = |q: usize, k: usize, rule: &dyn Fn(usize, usize) -> bool| {
        pi[q * kb + pn[q] as usize] = k as i32;
        pn[q] += 1;
        for e in 0..bq * bk {
            let (i, j) = (q * bq + e / bk, k * bk + e % bk);
            bools.push(i < sq && j < skv && rule(i, j));
        }
    };
    for q in 0..qb {
        let row: Vec<(usize, bool)> = mask.row(0, 0, q).collect();
        for &(k, full) in &row {
            if !full {
                push_partial(q, k, &|i, j| predicate.keeps(i, j, sq, skv));
            } else if full_as_partial {
                push_partial(q, k, &|_, _| true);
            }
        }
        if extra_false {
            for k in (0..kb).filter(|k| !row.iter().any(|r| r.0 == *k)) {
                push_partial(q, k, &|_, _| false);
            }
        }
        for &(k, full) in &row {
            if full && !full_as_partial {
                fi[q * kb + fnum[q] as usize] = k as i32;
                fnum[q] += 1;
            }
        }
    }
    BlockMask::from_parts_with_bits(
        BlockMaskParts {
            seq_q: sq,
            seq_kv: skv,
            block: (bq, bk),
            batch: 1,
            heads: 1,
            kv_num_blocks: pn,
            kv_indices: pi,
            full: Some((fnum, fi)),
            predicate: MaskPredicate::None,
        },
        pack_le_bytes(&bools, bk),
    )
    .unwrap()
}

/// A packed mask that encodes a built-in rule gives the built-in rule's bits exactly on
/// `backend` (causal, sliding window, documents with and without causality; f32 and `T`),
/// and so do all-true partial blocks in place of full ones and all-false partial blocks in
/// place of absent ones: the bit test changes which pairs are kept, never the arithmetic.
pub fn check_builtin_rules_bitwise<T: AttentionElement, B: SparseAttention<T>>(backend: &B) {
    let cases: Vec<(&str, BlockMask)> = vec![
        ("causal", BlockMask::causal(100, 130, (32, 16)).unwrap()),
        ("causal 64x32", BlockMask::causal(77, 77, (64, 32)).unwrap()),
        (
            "window",
            BlockMask::sliding_window(90, 90, (16, 32), 21).unwrap(),
        ),
        (
            "documents",
            BlockMask::documents(&[30, 1, 50, 19], (32, 32), false).unwrap(),
        ),
        (
            "causal documents",
            BlockMask::documents(&[45, 55], (16, 16), true).unwrap(),
        ),
        ("dense", BlockMask::dense(40, 70, (32, 64)).unwrap()),
    ];
    for (name, builtin) in cases {
        let (sq, skv) = builtin.seq_lens();
        let s = spec(1, 2, 2, sq, skv, 64);
        let c = case::<T>(s, builtin.clone(), 7);
        let (o, lse) = run_on::<T, B>(backend, &c);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (variant, full_as_partial, extra_false) in [
            ("bits of the rule", false, false),
            ("full blocks as all-true tiles", true, false),
            ("absent blocks as all-false tiles", false, true),
        ] {
            let packed = rebuild(&builtin, full_as_partial, extra_false);
            assert!(packed.element_bits().is_some());
            let c2 = Case {
                mask: packed,
                ..case::<T>(s, builtin.clone(), 7)
            };
            let (o2, lse2) = run_on::<T, B>(backend, &c2);
            let same = o.iter().zip(&o2).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{} {name}, {variant}: O differs from the built-in rule",
                T::DTYPE
            );
            assert_eq!(
                bits(&lse),
                bits(&lse2),
                "{} {name}, {variant}: LSE",
                T::DTYPE
            );
        }
    }
}
