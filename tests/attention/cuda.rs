//! CUDA block-sparse attention against the naive f64 reference of the CPU parity suite
//! (`tests/common/attention_check.rs`): random shapes, GQA, every mask kind, head dimension and
//! block size, f16/bf16 (tensor cores, FlashAttention's "at most twice the naive low-precision
//! error" rule) and f32 (the CPU's f32 tolerance); every kernel variant once (the binary
//! compute-sanitizer runs); metamorphic checks; errors. Skips without a device unless
//! `MEGABATCH_REQUIRE_CUDA=1`.
#![cfg(feature = "cuda")]

use crate::common;

use common::attention_check::{
    case, check_low_precision_on, check_on, device_path_matches_host, mask_for, reference, run_on,
    spec, Case,
};
use common::cuda_or_skip;
use half::{bf16, f16};
use megabatch::backends::cuda::{AttentionKernel, AttentionOptions, AttentionSchedule, Cuda};
use megabatch::{
    AttentionPlan, AttentionSpec, Backend, BlockMask, BlockMaskParts, Error, MaskPredicate,
    SparseAttention, BLOCK_SIZES, HEAD_DIMS,
};
use proptest::prelude::*;

const U_F16: f64 = 1.0 / 2048.0;
const U_BF16: f64 = 1.0 / 256.0;

/// Checks `c` in dtype `dtype` with that dtype's rule.
fn check_dtype(cuda: &Cuda, c: &Case, dtype: u8) -> Result<(), TestCaseError> {
    match dtype % 3 {
        0 => check_low_precision_on::<f16, _>(cuda, c, U_F16),
        1 => check_low_precision_on::<bf16, _>(cuda, c, U_BF16),
        _ => check_on::<f32, _>(cuda, c, 0.0),
    }
}

fn case_for(dtype: u8, s: AttentionSpec, mask: BlockMask, seed: u64) -> Case {
    match dtype % 3 {
        0 => case::<f16>(s, mask, seed),
        1 => case::<bf16>(s, mask, seed),
        _ => case::<f32>(s, mask, seed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_f64_reference(
        dtype in 0u8..3, batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..4,
        sq in 1usize..300, skv in 1usize..300, dim in 0usize..5, bq in 0usize..4, bk in 0usize..4,
        kind in 0u8..5, seed in any::<u64>(),
    ) {
        let Some(cuda) = cuda_or_skip() else { return Ok(()) };
        let skv = if kind % 5 == 3 { sq } else { skv };
        let s = spec(batch, heads_kv, group, sq, skv, HEAD_DIMS[dim]);
        let mask = mask_for(sq, skv, (BLOCK_SIZES[bq], BLOCK_SIZES[bk]), kind, seed);
        check_dtype(&cuda, &case_for(dtype, s, mask, seed), dtype)?;
    }
}

/// One small call per (dtype, D, BQ, BK): every compiled variant runs, with a cut last query
/// and key block, GQA and causal partial blocks. Under compute-sanitizer this is the
/// memcheck/racecheck coverage of every kernel variant.
#[test]
fn every_kernel_variant() {
    let Some(cuda) = cuda_or_skip() else { return };
    let mut seen = Vec::new();
    for dtype in 0u8..3 {
        for d in HEAD_DIMS {
            for bq in BLOCK_SIZES {
                for bk in BLOCK_SIZES {
                    let (sq, skv) = (bq + 5, 2 * bk + 3);
                    let s = spec(1, 1, 2, sq, skv, d);
                    let mask = BlockMask::causal(sq, skv, (bq, bk)).unwrap();
                    let c = case_for(dtype, s, mask, (d * bq + bk) as u64);
                    check_dtype(&cuda, &c, dtype)
                        .unwrap_or_else(|e| panic!("dtype {dtype} D {d} block ({bq}, {bk}): {e}"));
                    let name = ["f16", "bf16", "f32"][dtype as usize];
                    let k = AttentionKernel::for_shape(name, d, bq, bk);
                    if !seen.contains(&k) {
                        seen.push(k);
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), AttentionKernel::all().len());
}

#[test]
fn awkward_lengths_and_every_mask_kind() {
    let Some(cuda) = cuda_or_skip() else { return };
    for &(sq, skv) in &[(1, 1), (239, 1), (799, 3), (113, 203), (1023, 1024)] {
        for kind in 0..5u8 {
            let skv = if kind == 3 { sq } else { skv };
            for (dtype, block) in [(0u8, (128, 128)), (1, (64, 32)), (2, (16, 64))] {
                let s = spec(1, 2, 2, sq, skv, 64);
                let mask = mask_for(sq, skv, block, kind, sq as u64);
                check_dtype(&cuda, &case_for(dtype, s, mask, 7), dtype)
                    .unwrap_or_else(|e| panic!("({sq}, {skv}) kind {kind} dtype {dtype}: {e}"));
            }
        }
    }
}

/// Rows with nothing kept give O = 0 and LSE = -inf; garbage in the unused index tail is
/// never read (it would address blocks out of range).
#[test]
fn empty_rows_and_garbage_index_tail() {
    let Some(cuda) = cuda_or_skip() else { return };
    let (sq, skv, block) = (256, 256, (64, 64));
    let mask = BlockMask::from_parts(BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
        block,
        batch: 1,
        heads: 1,
        kv_num_blocks: vec![0, 2, 0, 1],
        kv_indices: vec![
            i32::MAX,
            -7,
            99,
            12345, // row 0: nothing kept, garbage
            3,
            0,
            i32::MIN,
            77, // row 1: blocks 3 and 0
            -1,
            -1,
            -1,
            -1, // row 2: nothing
            2,
            1 << 30,
            5,
            6, // row 3: block 2
        ],
        full: None,
        predicate: MaskPredicate::None,
    })
    .unwrap();
    for dtype in 0u8..3 {
        let c = case_for(dtype, spec(1, 1, 1, sq, skv, 128), mask.clone(), 5);
        check_dtype(&cuda, &c, dtype).unwrap();
        let (o_ref, _) = reference(&c);
        assert!(o_ref[..64 * 128].iter().all(|&x| x == 0.0));
    }
}

/// Listing every kept block as partial under the same predicate gives the same bits as the
/// mask with full blocks: the element mask is skipped only where it keeps everything anyway.
#[test]
fn full_blocks_equal_partial_blocks_with_the_predicate() {
    let Some(cuda) = cuda_or_skip() else { return };
    let (sq, skv, block) = (300, 300, (64, 32));
    let causal = BlockMask::causal(sq, skv, block).unwrap();
    let (qb, kb) = causal.block_counts();
    let mut counts = Vec::new();
    let mut indices = Vec::new();
    for q in 0..qb {
        let row: Vec<i32> = causal.row(0, 0, q).map(|(k, _)| k as i32).collect();
        counts.push(row.len() as i32);
        indices.extend(row.iter().copied().chain(std::iter::repeat(-1)).take(kb));
    }
    let all_partial = BlockMask::from_parts(BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
        block,
        batch: 1,
        heads: 1,
        kv_num_blocks: counts,
        kv_indices: indices,
        full: None,
        predicate: MaskPredicate::Causal,
    })
    .unwrap();
    let s = spec(2, 2, 2, sq, skv, 64);
    let a = case::<f16>(s, causal, 9);
    let b = Case {
        mask: all_partial,
        ..case::<f16>(s, a.mask.clone(), 9)
    };
    let (oa, la) = run_on::<f16, _>(&cuda, &a);
    let (ob, lb) = run_on::<f16, _>(&cuda, &b);
    assert_eq!(oa, ob);
    assert_eq!(la, lb);
}

/// The CTA order changes which SM runs a tile, never its arithmetic: both schedules give the
/// same bits, and so does the device-resident path against the host path.
#[test]
fn schedules_and_device_path_agree_bitwise() {
    let Some(cuda) = cuda_or_skip() else { return };
    let (sq, skv) = (777, 1000);
    let s = spec(2, 2, 4, sq, skv, 128);
    let mask = mask_for(sq, skv, (128, 64), 4, 21);
    let c = case::<bf16>(s, mask.clone(), 21);
    let conv = |x: &[f32]| x.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>();
    let (q, k, v) = (conv(&c.q), conv(&c.k), conv(&c.v));
    let (q_len, _, lse_len) = s.lens().unwrap();
    let mut outs = Vec::new();
    for schedule in [AttentionSchedule::LongestFirst, AttentionSchedule::Natural] {
        let options = AttentionOptions {
            schedule,
            ..AttentionOptions::default()
        };
        let mut plan = cuda
            .plan_attention_with::<bf16>(&s, &mask, options)
            .unwrap();
        let mut o = vec![bf16::ZERO; q_len];
        let mut lse = vec![0.0f32; lse_len];
        cuda.attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
            .unwrap();
        outs.push((o, lse));
    }
    assert_eq!(outs[0], outs[1]);
    let mut plan = cuda.plan_attention(&s, &mask).unwrap();
    let upload = |x: &[bf16]| {
        let mut b = cuda.alloc::<bf16>(x.len()).unwrap();
        cuda.upload(x, &mut b).unwrap();
        b
    };
    let (qd, kd, vd) = (upload(&q), upload(&k), upload(&v));
    let mut od = cuda.alloc::<bf16>(q_len).unwrap();
    let mut ld = cuda.alloc::<f32>(lse_len).unwrap();
    for _ in 0..3 {
        cuda.attention(&mut plan, &qd, &kd, &vd, &mut od, Some(&mut ld))
            .unwrap();
    }
    let mut o = vec![bf16::ZERO; q_len];
    let mut lse = vec![0.0f32; lse_len];
    cuda.download(&od, &mut o).unwrap();
    cuda.download(&ld, &mut lse).unwrap();
    assert_eq!((o, lse), outs[0]);
    device_path_matches_host::<f16, _>(&cuda, &case::<f16>(s, mask.clone(), 4));
    device_path_matches_host::<f32, _>(&cuda, &case::<f32>(s, mask, 4));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let Some(cuda) = cuda_or_skip() else { return };
    let s = spec(1, 1, 1, 64, 64, 32);
    let mask = BlockMask::dense(64, 64, (32, 32)).unwrap();
    let other = BlockMask::dense(64, 32, (32, 32)).unwrap();
    let plan: Result<AttentionPlan<Cuda, f16>, Error> = cuda.plan_attention(&s, &other);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::Mask { .. }), "{err:?}");
    let bad = AttentionSpec { head_dim: 48, ..s };
    let plan: Result<AttentionPlan<Cuda, f16>, Error> = cuda.plan_attention(&bad, &mask);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let mut plan = cuda.plan_attention(&s, &mask).unwrap();
    let x = vec![f16::ZERO; 64 * 32];
    let mut o = vec![f16::ZERO; 64 * 31];
    let err = cuda
        .attention_host(&mut plan, &x, &x, &x, &mut o, None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
    let other_cuda = Cuda::new().unwrap();
    let mut o = vec![f16::ZERO; 64 * 32];
    let err = other_cuda
        .attention_host(&mut plan, &x, &x, &x, &mut o, None)
        .unwrap_err();
    assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
}

/// NaN or Inf in Q or K propagates as torch's SDPA in both kernels (the NaN-propagating max
/// of the online softmax): exactly the rows that meet a NaN or +inf score are NaN, -inf acts
/// as masked, empty rows stay 0 / -inf, the rest equal the f64 reference
/// (`tests/common/attention_check.rs`; tensor cores held to P's rounding to 16 bits); host and
/// device-buffer calls.
#[test]
fn non_finite_q_or_k_makes_exactly_the_rows_that_meet_it_nan() {
    use common::attention_check::check_non_finite_rows;
    let Some(cuda) = cuda_or_skip() else { return };
    check_non_finite_rows::<f32, _>(&cuda, 1e-5, 1e-5);
    check_non_finite_rows::<f16, _>(&cuda, 8.0 * U_F16, 1e-4);
    check_non_finite_rows::<bf16, _>(&cuda, 8.0 * U_BF16, 1e-4);
}

/// Element masks (packed bits, any `mask_mod`) on CUDA, both kernels (f16/bf16 on tensor
/// cores, f32 FMA): `tests/common/element_mask_check.rs`.
mod element_masks {
    use super::*;
    use crate::common::element_mask_check::{
        check_builtin_rules_bitwise, check_empty_rows, check_mask_mod, check_random_bits, Rule,
    };

    fn rule(dtype: u8) -> Rule {
        match dtype % 3 {
            0 => Rule::TensorCore(U_F16),
            1 => Rule::TensorCore(U_BF16),
            _ => Rule::Rounded(0.0),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn random_mask_mods_match_the_f64_reference(
            dtype in 0u8..3, batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..300, skv in 1usize..300, dim in 0usize..5, bq in 0usize..4,
            bk in 0usize..4, seed in any::<u64>(),
        ) {
            let Some(cuda) = cuda_or_skip() else { return Ok(()) };
            let s = spec(batch, heads_kv, group, sq, skv, HEAD_DIMS[dim]);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            match dtype % 3 {
                0 => check_mask_mod::<f16, _>(&cuda, s, block, seed, rule(dtype))?,
                1 => check_mask_mod::<bf16, _>(&cuda, s, block, seed, rule(dtype))?,
                _ => check_mask_mod::<f32, _>(&cuda, s, block, seed, rule(dtype))?,
            }
        }

        #[test]
        fn random_packed_bits_match_the_f64_reference(
            dtype in 0u8..3, batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..300, skv in 1usize..300, dim in 0usize..5, bq in 0usize..4,
            bk in 0usize..4, seed in any::<u64>(),
        ) {
            let Some(cuda) = cuda_or_skip() else { return Ok(()) };
            let s = spec(batch, heads_kv, group, sq, skv, HEAD_DIMS[dim]);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            match dtype % 3 {
                0 => check_random_bits::<f16, _>(&cuda, s, block, seed, rule(dtype))?,
                1 => check_random_bits::<bf16, _>(&cuda, s, block, seed, rule(dtype))?,
                _ => check_random_bits::<f32, _>(&cuda, s, block, seed, rule(dtype))?,
            }
        }
    }

    #[test]
    fn rows_of_all_false_tiles_are_empty_rows() {
        let Some(cuda) = cuda_or_skip() else { return };
        check_empty_rows::<f32, _>(&cuda, rule(2));
        check_empty_rows::<f16, _>(&cuda, rule(0));
        check_empty_rows::<bf16, _>(&cuda, rule(1));
    }

    #[test]
    fn packed_built_in_rules_are_bitwise_the_built_in_rules() {
        let Some(cuda) = cuda_or_skip() else { return };
        check_builtin_rules_bitwise::<f32, _>(&cuda);
        check_builtin_rules_bitwise::<f16, _>(&cuda);
        check_builtin_rules_bitwise::<bf16, _>(&cuda);
    }

    /// Every kernel variant of one dtype and tile through the bit path once (the run
    /// compute-sanitizer checks), and the device-buffer path with element bits.
    #[test]
    fn every_head_dim_with_element_bits_and_device_buffers() {
        let Some(cuda) = cuda_or_skip() else { return };
        let mask =
            BlockMask::from_mask_mod(150, 170, (64, 32), |i, j| (i * 7 + j * 3) % 5 < 3).unwrap();
        for (n, &d) in HEAD_DIMS.iter().enumerate() {
            let s = spec(1, 2, 2, 150, 170, d);
            check_random_bits::<f16, _>(&cuda, s, (64, 32), n as u64, rule(0)).unwrap();
            check_random_bits::<f32, _>(&cuda, s, (32, 64), n as u64, rule(2)).unwrap();
        }
        let s = spec(2, 1, 2, 150, 170, 64);
        device_path_matches_host::<f16, _>(&cuda, &case::<f16>(s, mask.clone(), 3));
        device_path_matches_host::<f32, _>(&cuda, &case::<f32>(s, mask, 3));
    }
}
