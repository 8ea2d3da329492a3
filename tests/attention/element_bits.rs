//! Element bits of partial blocks: the packed layout against a packer written here from the
//! documented byte order (`pack_le_bytes`), `from_mask_mod`'s block classification and bits
//! against the closure element by element, and every validation error.

use crate::common::element_mask_check::pack_le_bytes;
use megabatch::{BlockMask, BlockMaskParts, ElementBits, Error, MaskPredicate, BLOCK_SIZES};
use proptest::prelude::*;

fn parts(sq: usize, skv: usize, block: (usize, usize), rows: &[&[i32]]) -> BlockMaskParts {
    let kb = skv.div_ceil(block.1);
    let mut indices = vec![0; rows.len() * kb];
    for (r, row) in rows.iter().enumerate() {
        indices[r * kb..r * kb + row.len()].copy_from_slice(row);
    }
    BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
        block,
        batch: 1,
        heads: 1,
        kv_num_blocks: rows.iter().map(|r| r.len() as i32).collect(),
        kv_indices: indices,
        full: None,
        predicate: MaskPredicate::None,
    }
}

/// The documented example: one 16 x 16 tile, row r keeps columns r and 15, so word r is
/// `1 << r | 1 << 15` and the upper half stays zero.
#[test]
fn the_layout_is_little_endian_bits_in_u32_rows() {
    let bools: Vec<bool> = (0..16 * 16)
        .map(|e| e % 16 == e / 16 || e % 16 == 15)
        .collect();
    let words = ElementBits::pack(&bools, 16, 16).unwrap();
    let want: Vec<u32> = (0..16).map(|r| 1 << r | 1 << 15).collect();
    assert_eq!(words, want);
    assert_eq!(words, pack_le_bytes(&bools, 16));
    // BK = 128: four words a row, column 40 is bit 8 of word 1.
    let mut row = vec![false; 128];
    row[40] = true;
    row[127] = true;
    let bools: Vec<bool> = std::iter::repeat_n(row, 16).flatten().collect();
    let words = ElementBits::pack(&bools, 16, 128).unwrap();
    assert_eq!(&words[..4], &[0, 1 << 8, 0, 1 << 31]);
    assert_eq!(words, pack_le_bytes(&bools, 128));
    assert!(matches!(
        ElementBits::pack(&bools[1..], 16, 128),
        Err(Error::Mask { position: None, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every block of `from_mask_mod_bh` is classified from the closure exactly (full iff all
    /// kept, absent iff none, partial otherwise) and `BlockMask::keeps` (the lists and bits)
    /// equals the closure at every element, broadcast dimensions included.
    #[test]
    fn mask_mod_blocks_and_bits_follow_the_closure(
        sq in 1usize..140, skv in 1usize..140, bq in 0usize..4, bk in 0usize..4,
        mb in 1usize..3, mh in 1usize..3, seed in any::<u64>(),
    ) {
        let (_, f) = crate::common::element_mask_check::random_mask_mod(seed, sq, skv);
        let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
        let g = f.clone();
        let mask = BlockMask::from_mask_mod_bh(mb, mh, sq, skv, block, move |b, h, i, j| g(b, h, i, j)).unwrap();
        let (qb, kb) = mask.block_counts();
        let mut tiles = 0;
        for b in 0..2 {
            for h in 0..2 {
                let (fb, fh) = (if mb == 1 { 0 } else { b }, if mh == 1 { 0 } else { h });
                for q in 0..qb {
                    let row: Vec<(usize, bool)> = mask.row(b, h, q).collect();
                    if b < mb && h < mh {
                        tiles += row.iter().filter(|e| !e.1).count();
                    }
                    for k in 0..kb {
                        let cells: Vec<bool> = (q * block.0..((q + 1) * block.0).min(sq))
                            .flat_map(|i| (k * block.1..((k + 1) * block.1).min(skv)).map(move |j| (i, j)))
                            .map(|(i, j)| f(fb, fh, i, j))
                            .collect();
                        let want = if cells.iter().all(|&x| x) {
                            Some(true)
                        } else if cells.iter().any(|&x| x) {
                            Some(false)
                        } else {
                            None
                        };
                        let got = row.iter().find(|e| e.0 == k).map(|e| e.1);
                        prop_assert_eq!(got, want, "block ({}, {}) of (b {}, h {})", q, k, b, h);
                    }
                }
                for i in 0..sq {
                    for j in 0..skv {
                        prop_assert_eq!(mask.keeps(b, h, i, j), f(fb, fh, i, j), "({}, {})", i, j);
                    }
                }
            }
        }
        let bits = mask.element_bits().unwrap();
        prop_assert_eq!(bits.tiles(), tiles);
        prop_assert_eq!(bits.words().len(), tiles * block.0 * ElementBits::words_per_row(block.1));
    }
}

#[test]
fn wrong_lengths_stray_bits_and_predicates_are_mask_errors() {
    // 40 x 40 with 32 x 16 blocks: QB = 2, KB = 3; row 0 lists key block 2 (cols 32..40),
    // row 1 (queries 32..40) key block 0.
    let ok = || parts(40, 40, (32, 16), &[&[2], &[0]]);
    let tile = 32; // words of one 32 x 16 tile
    let mut words = vec![0u32; 2 * tile];
    words[0] = 0xff; // row 0 of tile 0: columns 32..40 (block-relative 0..8)
    words[tile] = 0xffff; // row 32 of tile 1: all 16 keys
    let mask = BlockMask::from_parts_with_bits(ok(), words.clone()).unwrap();
    assert!(mask.keeps(0, 0, 0, 39) && !mask.keeps(0, 0, 1, 39) && mask.keeps(0, 0, 32, 15));
    let err = |w: Vec<u32>| BlockMask::from_parts_with_bits(ok(), w).unwrap_err();
    let is = |e: Error, pos: Option<[usize; 4]>, text: &str| match e {
        Error::Mask { position, reason } => {
            assert_eq!(position, pos, "{reason}");
            assert!(reason.contains(text), "{reason}");
        }
        other => panic!("{other:?}"),
    };
    is(
        err(words[1..].to_vec()),
        None,
        "sum(kv_num_blocks) * BQ * ceil(BK/32)",
    );
    is(
        err([words.clone(), vec![0]].concat()),
        None,
        "sum(kv_num_blocks)",
    );
    // Column 8 of key block 2 is key 40, past Skv.
    let mut w = words.clone();
    w[3] |= 1 << 8;
    is(err(w), Some([0, 0, 0, 0]), "past the sequence ends");
    // BK = 16 leaves the upper half of each word as padding.
    let mut w = words.clone();
    w[5] |= 1 << 16;
    is(err(w), Some([0, 0, 0, 0]), "padding");
    // Row 8 of query block 1 is query 40, past Sq.
    let mut w = words.clone();
    w[tile + 8] = 1;
    is(err(w), Some([0, 0, 1, 0]), "past the sequence ends");
    // The bits replace the predicate.
    let causal = BlockMaskParts {
        predicate: MaskPredicate::Causal,
        ..ok()
    };
    is(
        BlockMask::from_parts_with_bits(causal, words.clone()).unwrap_err(),
        None,
        "MaskPredicate::None",
    );
    // The lists are validated first, as from_parts does.
    let bad = parts(40, 40, (32, 16), &[&[3], &[0]]);
    is(
        BlockMask::from_parts_with_bits(bad, words).unwrap_err(),
        Some([0, 0, 0, 0]),
        "out of range",
    );
    assert!(matches!(
        BlockMask::from_mask_mod(10, 10, (8, 16), |_, _| true),
        Err(Error::Mask { position: None, .. })
    ));
}

/// An all-true mask_mod gives only full blocks (no bits, like `dense`); an all-false one gives
/// no block at all.
#[test]
fn constant_mask_mods_need_no_bits() {
    let all = BlockMask::from_mask_mod(70, 50, (32, 16), |_, _| true).unwrap();
    assert_eq!(all.element_bits().unwrap().tiles(), 0);
    assert_eq!(all.kept_blocks(1, 1), 3 * 4);
    assert!((0..3).all(|q| all.row(0, 0, q).all(|(_, full)| full)));
    let none = BlockMask::from_mask_mod(70, 50, (32, 16), |_, _| false).unwrap();
    assert_eq!(none.kept_blocks(1, 1), 0);
}
