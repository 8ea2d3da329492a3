//! wgpu block-sparse attention against the same naive f64 reference and tolerances as the CPU
//! backend (`tests/common/attention_check.rs`): random shapes, GQA, every mask kind, f32 and
//! f16, partial last blocks, rows with nothing kept, typed errors. Skips without an adapter
//! unless `MEGABATCH_REQUIRE_WGPU=1`.
#![cfg(feature = "wgpu")]

use crate::common;

use common::attention_check::{
    case, check_on, device_path_matches_host, mask_for, reference, spec,
};
use common::wgpu_or_skip;
use half::{bf16, f16};
use megabatch::backends::wgpu::Wgpu;
use megabatch::{AttentionPlan, AttentionSpec, BlockMask, Error, SparseAttention, BLOCK_SIZES};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn f32_matches_the_f64_reference(
        batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..4,
        sq in 1usize..130, skv in 1usize..130, dim in 0usize..2, bq in 0usize..4, bk in 0usize..4,
        kind in 0u8..5, seed in any::<u64>(),
    ) {
        let Some(gpu) = wgpu_or_skip() else { return Ok(()) };
        let skv = if kind % 5 == 3 { sq } else { skv };
        let s = spec(batch, heads_kv, group, sq, skv, [32, 64][dim]);
        let mask = mask_for(sq, skv, (BLOCK_SIZES[bq], BLOCK_SIZES[bk]), kind, seed);
        check_on::<f32, _>(&gpu, &case::<f32>(s, mask, seed), 0.0)?;
    }

    #[test]
    fn f16_within_output_rounding(sq in 1usize..100, skv in 1usize..100, kind in 0u8..5, seed in any::<u64>()) {
        let Some(gpu) = wgpu_or_skip() else { return Ok(()) };
        if !gpu.adapter().f16 {
            return Ok(());
        }
        let skv = if kind % 5 == 3 { sq } else { skv };
        let s = spec(1, 2, 2, sq, skv, 64);
        let mask = mask_for(sq, skv, (32, 16), kind, seed);
        check_on::<f16, _>(&gpu, &case::<f16>(s, mask, seed), 2f64.powi(-11))?;
    }
}

#[test]
fn every_head_dim_and_awkward_lengths() {
    let Some(gpu) = wgpu_or_skip() else { return };
    for &(sq, skv) in &[(1, 1), (47, 3), (113, 203)] {
        for dim in [32, 64, 96, 128, 256] {
            let s = spec(1, 1, 2, sq, skv, dim);
            let mask = BlockMask::causal(sq, skv, (16, 32)).unwrap();
            check_on::<f32, _>(&gpu, &case::<f32>(s, mask, dim as u64), 0.0).unwrap();
        }
    }
}

#[test]
fn rows_with_no_kept_block_give_zero_and_minus_infinity() {
    let Some(gpu) = wgpu_or_skip() else { return };
    // Only query block 1 keeps anything.
    let blocks = [false, false, true, false];
    let mask = BlockMask::from_block_matrix(64, 64, (32, 32), &blocks).unwrap();
    let c = case::<f32>(spec(1, 1, 1, 64, 64, 32), mask, 3);
    check_on::<f32, _>(&gpu, &c, 0.0).unwrap();
    let (o_ref, _) = reference(&c);
    assert!(o_ref[..32 * 32].iter().all(|&x| x == 0.0));
}

#[test]
fn unsupported_dtypes_and_bad_inputs_are_typed_errors() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let s = spec(1, 1, 1, 64, 64, 32);
    let mask = BlockMask::dense(64, 64, (32, 32)).unwrap();
    let plan: Result<AttentionPlan<Wgpu, bf16>, Error> = gpu.plan_attention(&s, &mask);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let other = BlockMask::dense(64, 32, (32, 32)).unwrap();
    let plan: Result<AttentionPlan<Wgpu, f32>, Error> = gpu.plan_attention(&s, &other);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::Mask { .. }), "{err:?}");
    let bad = AttentionSpec { head_dim: 48, ..s };
    let plan: Result<AttentionPlan<Wgpu, f32>, Error> = gpu.plan_attention(&bad, &mask);
    let err = plan.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let mut plan = gpu.plan_attention(&s, &mask).unwrap();
    let x = vec![0.0f32; 64 * 32];
    let mut o = vec![0.0f32; 64 * 32];
    let err = gpu
        .attention_host(&mut plan, &x[1..], &x, &x, &mut o, None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { what: "q", .. }), "{err:?}");
}

/// Device-buffer calls (a cached bind group per buffer set, with and without LSE) give the
/// host path's bits.
#[test]
fn device_buffers_match_host_slices() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let s = spec(1, 2, 2, 70, 90, 32);
    let mask = mask_for(70, 90, (16, 32), 1, 3);
    device_path_matches_host::<f32, _>(&gpu, &case::<f32>(s, mask.clone(), 3));
    if gpu.adapter().f16 {
        device_path_matches_host::<f16, _>(&gpu, &case::<f16>(s, mask, 3));
    }
}

/// NaN or Inf in Q or K propagates as torch's SDPA on wgpu too (tested on the bits, since
/// WGSL compilers may assume no NaN): exactly the rows that meet a NaN or +inf score are NaN,
/// -inf acts as masked, empty rows stay 0 / -inf, the rest equal the f64 reference
/// (`tests/common/attention_check.rs`); host and device-buffer calls, f32 and f16.
#[test]
fn non_finite_q_or_k_makes_exactly_the_rows_that_meet_it_nan() {
    use common::attention_check::check_non_finite_rows;
    let Some(gpu) = wgpu_or_skip() else { return };
    check_non_finite_rows::<f32, _>(&gpu, 1e-5, 1e-5);
    if gpu.adapter().f16 {
        check_non_finite_rows::<f16, _>(&gpu, 1e-5 + 1.0 / 2048.0, 1e-5);
    }
}

/// Element masks (packed bits, any `mask_mod`) on wgpu: `tests/common/element_mask_check.rs`.
mod element_masks {
    use super::*;
    use crate::common::element_mask_check::{
        check_builtin_rules_bitwise, check_empty_rows, check_mask_mod, check_random_bits, Rule,
    };

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn random_mask_mods_match_the_f64_reference(
            batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..130, skv in 1usize..130, bq in 0usize..4, bk in 0usize..4,
            seed in any::<u64>(),
        ) {
            let Some(gpu) = wgpu_or_skip() else { return Ok(()) };
            let s = spec(batch, heads_kv, group, sq, skv, 32);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            check_mask_mod::<f32, _>(&gpu, s, block, seed, Rule::Rounded(0.0))?;
        }

        #[test]
        fn random_packed_bits_match_the_f64_reference(
            batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..130, skv in 1usize..130, bq in 0usize..4, bk in 0usize..4,
            seed in any::<u64>(),
        ) {
            let Some(gpu) = wgpu_or_skip() else { return Ok(()) };
            let s = spec(batch, heads_kv, group, sq, skv, 32);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            check_random_bits::<f32, _>(&gpu, s, block, seed, Rule::Rounded(0.0))?;
            if gpu.adapter().f16 {
                check_random_bits::<f16, _>(&gpu, s, block, seed, Rule::Rounded(2f64.powi(-11)))?;
            }
        }
    }

    #[test]
    fn rows_of_all_false_tiles_are_empty_rows() {
        let Some(gpu) = wgpu_or_skip() else { return };
        check_empty_rows::<f32, _>(&gpu, Rule::Rounded(0.0));
        if gpu.adapter().f16 {
            check_empty_rows::<f16, _>(&gpu, Rule::Rounded(2f64.powi(-11)));
        }
    }

    #[test]
    fn packed_built_in_rules_are_bitwise_the_built_in_rules() {
        let Some(gpu) = wgpu_or_skip() else { return };
        check_builtin_rules_bitwise::<f32, _>(&gpu);
        if gpu.adapter().f16 {
            check_builtin_rules_bitwise::<f16, _>(&gpu);
        }
    }

    /// The element bits reach the device through device-buffer calls too.
    #[test]
    fn device_buffers_match_host_slices_with_element_bits() {
        let Some(gpu) = wgpu_or_skip() else { return };
        let s = spec(2, 1, 2, 70, 90, 32);
        let mask =
            BlockMask::from_mask_mod(70, 90, (16, 32), |i, j| (i * 7 + j * 3) % 5 < 3).unwrap();
        assert!(mask.element_bits().is_some_and(|b| b.tiles() > 0));
        device_path_matches_host::<f32, _>(&gpu, &case::<f32>(s, mask, 3));
    }
}
