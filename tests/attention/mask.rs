//! Block masks: constructors classify every block exactly (checked element by element against
//! rules written independently here), validation names the position of bad entries, the
//! undefined tail of index rows is never read, and broadcast over batch and heads works.

use megabatch::{BlockMask, BlockMaskParts, Error, MaskPredicate, BLOCK_SIZES};
use proptest::prelude::*;

/// The rules, restated with signed arithmetic (query i sits at key position i + Skv - Sq).
fn keeps(rule: &MaskPredicate, i: usize, j: usize, sq: usize, skv: usize) -> bool {
    let pos = i as i64 + skv as i64 - sq as i64;
    let j = j as i64;
    match rule {
        MaskPredicate::None => true,
        MaskPredicate::Causal => j <= pos,
        MaskPredicate::SlidingWindow { window } => j <= pos && j > pos - *window as i64,
        MaskPredicate::Documents { ids, causal } => {
            ids[i] == ids[j as usize] && (!causal || j <= pos)
        }
        other => panic!("no restatement of {other:?}: add one here"),
    }
}

fn check_exact(mask: &BlockMask) -> Result<(), TestCaseError> {
    let (sq, skv) = mask.seq_lens();
    let (bq, bk) = mask.block_size();
    let (qb, kb) = mask.block_counts();
    let rule = mask.predicate().clone();
    for q in 0..qb {
        let listed: Vec<(usize, bool)> = mask.row(0, 0, q).collect();
        for k in 0..kb {
            let (mut any, mut all) = (false, true);
            for i in q * bq..((q + 1) * bq).min(sq) {
                for j in k * bk..((k + 1) * bk).min(skv) {
                    let kept = keeps(&rule, i, j, sq, skv);
                    prop_assert_eq!(
                        kept,
                        rule.keeps(i, j, sq, skv),
                        "predicate at ({}, {})",
                        i,
                        j
                    );
                    any |= kept;
                    all &= kept;
                }
            }
            let entry = listed.iter().find(|e| e.0 == k).map(|e| e.1);
            let expected = if all {
                Some(true)
            } else if any {
                Some(false)
            } else {
                None
            };
            prop_assert_eq!(entry, expected, "block ({}, {}) of {:?}", q, k, rule);
        }
    }
    Ok(())
}

fn rule() -> impl Strategy<Value = (usize, usize, MaskPredicate)> {
    prop_oneof![
        (1usize..300, 1usize..300).prop_map(|(a, b)| (a, b, MaskPredicate::None)),
        (1usize..300, 1usize..300).prop_map(|(a, b)| (a, b, MaskPredicate::Causal)),
        (1usize..300, 1usize..300, 1usize..200).prop_map(|(a, b, w)| (
            a,
            b,
            MaskPredicate::SlidingWindow { window: w }
        )),
        (prop::collection::vec(1usize..90, 1..6), any::<bool>()).prop_map(|(lengths, causal)| {
            let ids: Vec<u32> = lengths
                .iter()
                .enumerate()
                .flat_map(|(d, &n)| std::iter::repeat_n(d as u32, n))
                .collect();
            (
                ids.len(),
                ids.len(),
                MaskPredicate::Documents { ids, causal },
            )
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn constructors_classify_every_block_exactly((sq, skv, rule) in rule(), bq in 0usize..4, bk in 0usize..4) {
        let mask = BlockMask::from_predicate(sq, skv, (BLOCK_SIZES[bq], BLOCK_SIZES[bk]), rule).unwrap();
        check_exact(&mask)?;
    }
}

#[test]
fn named_constructors_match_their_rules() {
    check_exact(&BlockMask::dense(200, 77, (64, 16)).unwrap()).unwrap();
    check_exact(&BlockMask::causal(239, 1, (32, 32)).unwrap()).unwrap();
    check_exact(&BlockMask::causal(113, 203, (16, 64)).unwrap()).unwrap();
    check_exact(&BlockMask::sliding_window(300, 300, (32, 16), 40).unwrap()).unwrap();
    check_exact(&BlockMask::documents(&[10, 100, 3, 64], (16, 16), true).unwrap()).unwrap();
    // Sq = 40, Skv = 60 with blocks (16, 32): 3 x 2 blocks.
    let blocks = [true, false, true, true, false, false];
    let m = BlockMask::from_block_matrix(40, 60, (16, 32), &blocks).unwrap();
    let rows: Vec<Vec<(usize, bool)>> = (0..3).map(|q| m.row(0, 0, q).collect()).collect();
    assert_eq!(
        rows,
        vec![vec![(0, true)], vec![(0, true), (1, true)], vec![]]
    );
    assert!(BlockMask::from_block_matrix(40, 60, (16, 32), &blocks[..5]).is_err());
    assert!(BlockMask::sliding_window(10, 10, (16, 16), 0).is_err());
}

fn parts(counts: Vec<i32>, indices: Vec<i32>) -> BlockMaskParts {
    // Sq = 40, Skv = 50, blocks (16, 16): QB = 3, KB = 4; batch 2, heads broadcast.
    BlockMaskParts {
        seq_q: 40,
        seq_kv: 50,
        block: (16, 16),
        batch: 2,
        heads: 1,
        kv_num_blocks: counts,
        kv_indices: indices,
        full: None,
        predicate: MaskPredicate::None,
    }
}

#[test]
fn validation_names_the_bad_entry() {
    let good_counts = vec![1, 2, 0, 4, 0, 1];
    let mut idx = vec![-7; 24]; // the undefined tail holds garbage
    idx[0] = 3;
    idx[4] = 0;
    idx[5] = 2;
    idx[12..16].copy_from_slice(&[3, 1, 0, 2]);
    idx[20] = 1;
    let m = BlockMask::from_parts(parts(good_counts.clone(), idx.clone())).unwrap();
    assert_eq!(
        m.row(1, 5, 0).collect::<Vec<_>>(),
        vec![(3, false), (1, false), (0, false), (2, false)]
    );
    assert_eq!(
        m.row(0, 0, 1).collect::<Vec<_>>(),
        vec![(0, false), (2, false)]
    );
    assert!(m.fits(2, 8) && m.fits(2, 1) && !m.fits(3, 1));

    let err = |c: Vec<i32>, i: Vec<i32>| BlockMask::from_parts(parts(c, i)).unwrap_err();
    let mut bad = idx.clone();
    bad[13] = 4;
    assert_eq!(
        err(good_counts.clone(), bad),
        Error::Mask {
            position: Some([1, 0, 0, 1]),
            reason: "key-block index out of range"
        }
    );
    let mut dup = idx.clone();
    dup[14] = 3;
    assert_eq!(
        err(good_counts.clone(), dup),
        Error::Mask {
            position: Some([1, 0, 0, 2]),
            reason: "key block listed twice in one row"
        }
    );
    let mut count = good_counts.clone();
    count[2] = 5;
    assert_eq!(
        err(count, idx.clone()),
        Error::Mask {
            position: Some([0, 0, 2, 0]),
            reason: "block count outside 0..=ceil(Skv/BK)"
        }
    );
    assert!(matches!(err(vec![0; 5], idx.clone()), Error::Mask { .. }));
    let mut neg = good_counts.clone();
    neg[5] = -1;
    assert!(matches!(
        err(neg, idx.clone()),
        Error::Mask {
            position: Some([1, 0, 2, 0]),
            ..
        }
    ));

    // A block listed both partial and full is a duplicate too.
    let mut p = parts(good_counts.clone(), idx.clone());
    let mut full_idx = vec![0; 24];
    full_idx[4] = 2;
    p.full = Some((vec![0, 1, 0, 0, 0, 0], full_idx));
    assert!(matches!(
        BlockMask::from_parts(p),
        Err(Error::Mask {
            position: Some([0, 0, 1, 0]),
            ..
        })
    ));

    let mut p = parts(good_counts.clone(), idx.clone());
    p.block = (16, 24);
    assert!(matches!(BlockMask::from_parts(p), Err(Error::Mask { .. })));
    let mut p = parts(good_counts, idx);
    p.predicate = MaskPredicate::Documents {
        ids: vec![0; 40],
        causal: false,
    };
    assert!(matches!(BlockMask::from_parts(p), Err(Error::Mask { .. })));
    let decreasing = MaskPredicate::Documents {
        ids: vec![1, 1, 0],
        causal: false,
    };
    let p = BlockMaskParts {
        seq_q: 3,
        seq_kv: 3,
        block: (16, 16),
        batch: 1,
        heads: 1,
        kv_num_blocks: vec![1],
        kv_indices: vec![0],
        full: None,
        predicate: decreasing,
    };
    assert!(matches!(BlockMask::from_parts(p), Err(Error::Mask { .. })));
}
