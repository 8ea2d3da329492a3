//! CPU block-sparse attention against a naive dense masked softmax in f64, computed from the
//! same (exactly widened) inputs. Tolerances: f32, max |O - O_ref| <= 1e-5 max |O_ref| and LSE
//! within 1e-5 (absolute, natural log); f16/bf16, additionally the rounding of the output to the
//! dtype, u max |O_ref| with u = 2^-11 (f16) or 2^-8 (bf16): the kernel computes in f32 and
//! rounds once at the end, and the reference starts from the same rounded inputs.

use crate::common;

use common::attention_check::{
    case, check_on, device_path_matches_host, mask_for, run_on, spec, Case,
};

use half::{bf16, f16};
use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionElement, AttentionSpec, BlockMask, BlockMaskParts, Error, MaskPredicate,
    SparseAttention, BLOCK_SIZES,
};
use proptest::prelude::*;

fn run<T: AttentionElement>(c: &Case, threads: usize) -> (Vec<f64>, Vec<f32>) {
    run_on::<T, Cpu>(&Cpu::with_threads(threads).unwrap(), c)
}

fn check<T: AttentionElement>(c: &Case, unit_roundoff: f64) -> Result<(), TestCaseError> {
    check_on::<T, Cpu>(&Cpu::with_threads(2).unwrap(), c, unit_roundoff)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn f32_matches_the_f64_reference(
        batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..4,
        sq in 1usize..160, skv in 1usize..160, dim in 0usize..2, bq in 0usize..4, bk in 0usize..4,
        kind in 0u8..5, seed in any::<u64>(),
    ) {
        let skv = if kind % 5 == 3 { sq } else { skv };
        let s = spec(batch, heads_kv, group, sq, skv, [32, 64][dim]);
        let mask = mask_for(sq, skv, (BLOCK_SIZES[bq], BLOCK_SIZES[bk]), kind, seed);
        check::<f32>(&case::<f32>(s, mask, seed), 0.0)?;
    }

    #[test]
    fn half_precision_within_output_rounding(sq in 1usize..100, skv in 1usize..100, kind in 0u8..5, seed in any::<u64>()) {
        let skv = if kind % 5 == 3 { sq } else { skv };
        let s = spec(1, 2, 2, sq, skv, 64);
        let mask = mask_for(sq, skv, (32, 16), kind, seed);
        check::<f16>(&case::<f16>(s, mask.clone(), seed), 2f64.powi(-11))?;
        check::<bf16>(&case::<bf16>(s, mask, seed), 2f64.powi(-8))?;
    }
}

#[test]
fn awkward_lengths_and_head_dims() {
    for (i, &(sq, skv)) in [(1, 1), (239, 1), (799, 3), (113, 203)].iter().enumerate() {
        for dim in [96, 128, 256] {
            let s = spec(1, 1, 2, sq, skv, dim);
            let mask = BlockMask::causal(sq, skv, (64, 128)).unwrap();
            check::<f32>(&case::<f32>(s, mask, i as u64), 0.0).unwrap();
        }
    }
}

#[test]
fn rows_with_no_kept_block_give_zero_and_minus_infinity() {
    // Causal, bottom-right aligned, Sq > Skv: the first Sq - Skv queries see no key.
    let s = spec(1, 1, 1, 200, 50, 32);
    let c = case::<f32>(s, BlockMask::causal(200, 50, (16, 16)).unwrap(), 9);
    let (o, lse) = run::<f32>(&c, 2);
    assert!(o[..150 * 32].iter().all(|&x| x == 0.0));
    assert!(
        lse[..150].iter().all(|&x| x == f32::NEG_INFINITY)
            && lse[150..].iter().all(|x| x.is_finite())
    );
    check::<f32>(&c, 0.0).unwrap();
}

#[test]
fn all_partial_blocks_with_no_predicate_equal_dense() {
    let (sq, skv, block) = (100, 130, (32, 64));
    let dense = BlockMask::dense(sq, skv, block).unwrap();
    let (qb, kb) = dense.block_counts();
    let partial = BlockMask::from_parts(BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
        block,
        batch: 1,
        heads: 1,
        kv_num_blocks: vec![kb as i32; qb],
        kv_indices: (0..qb).flat_map(|_| (0..kb as i32).rev()).collect(),
        full: None,
        predicate: MaskPredicate::None,
    })
    .unwrap();
    let s = spec(2, 1, 2, sq, skv, 64);
    let a = case::<f32>(s, dense, 5);
    let b = Case {
        spec: a.spec,
        mask: partial,
        q: a.q.clone(),
        k: a.k.clone(),
        v: a.v.clone(),
    };
    let ((oa, la), (ob, lb)) = (run::<f32>(&a, 1), run::<f32>(&b, 3));
    let scale = oa.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(oa
        .iter()
        .zip(&ob)
        .all(|(x, y)| (x - y).abs() <= 1e-6 * scale));
    assert!(la
        .iter()
        .zip(&lb)
        .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0)));
}

#[test]
fn bad_specs_masks_and_lengths_are_typed_errors() {
    let cpu = Cpu::with_threads(1).unwrap();
    let mask = BlockMask::dense(10, 20, (16, 16)).unwrap();
    let plan = |s: AttentionSpec, m: &BlockMask| cpu.plan_attention(&s, m);
    assert!(matches!(
        plan(spec(1, 1, 1, 10, 20, 48), &mask),
        Err(Error::InvalidArgument(_))
    ));
    let mut odd = spec(1, 2, 1, 10, 20, 32);
    odd.heads_q = 3;
    assert!(matches!(plan(odd, &mask), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        plan(spec(1, 1, 1, 10, 21, 32), &mask),
        Err(Error::Mask { .. })
    ));
    let mut p = plan(spec(1, 1, 1, 10, 20, 32), &mask).unwrap();
    let (q, kv) = (vec![0.0f32; 320], vec![0.0f32; 640]);
    let mut o = vec![0.0f32; 320];
    assert_eq!(
        cpu.attention_host(&mut p, &q[..300], &kv, &kv, &mut o, None),
        Err(Error::Shape {
            what: "q",
            expected: 320,
            got: 300
        })
    );
    assert_eq!(
        cpu.attention_host(&mut p, &q, &kv, &kv[..1], &mut o, None),
        Err(Error::Shape {
            what: "v",
            expected: 640,
            got: 1
        })
    );
    let mut lse = vec![0.0f32; 9];
    assert_eq!(
        cpu.attention_host(&mut p, &q, &kv, &kv, &mut o, Some(&mut lse)),
        Err(Error::Shape {
            what: "lse",
            expected: 10,
            got: 9
        })
    );
    assert!(cpu
        .attention_host(&mut p, &q, &kv, &kv, &mut o, None)
        .is_ok());
}

#[test]
fn auto_runs_attention_and_explains_its_choice() {
    use megabatch::{Auto, BackendKind};
    let auto = Auto::with_cpu(Cpu::with_threads(2).unwrap());
    let s = spec(1, 2, 2, 70, 90, 32);
    let mask = BlockMask::causal(70, 90, (32, 32)).unwrap();
    // 3 x 3 blocks, causal bottom-right (offset 20): 2 + 3 + 3 kept per head, 4 heads.
    assert_eq!(mask.kept_blocks(1, 4), 32);
    let decision = auto
        .explain_attention::<f32>(&s, &mask, megabatch::Residency::Host)
        .unwrap();
    assert_eq!(decision.chosen, BackendKind::Cpu);
    let c = case::<f32>(s, mask.clone(), 3);
    let mut plan = auto.plan_attention(&s, &mask).unwrap();
    assert_eq!(plan.backend(), BackendKind::Cpu);
    let mut o = vec![0.0f32; c.q.len()];
    auto.attention_host(&mut plan, &c.q, &c.k, &c.v, &mut o, None)
        .unwrap();
    let (direct, _) = run::<f32>(&c, 2);
    assert!(o.iter().zip(&direct).all(|(a, b)| f64::from(*a) == *b));
}

/// `SparseAttention::attention` on backend buffers equals the host-slice call, on the CPU and
/// through `Auto` (whose host buffers go straight to the CPU plan).
#[test]
fn device_buffers_match_host_slices() {
    let s = spec(2, 2, 2, 150, 97, 64);
    let mask = mask_for(150, 97, (32, 16), 4, 8);
    let cpu = Cpu::new().unwrap();
    device_path_matches_host::<f32, _>(&cpu, &case::<f32>(s, mask.clone(), 8));
    device_path_matches_host::<f16, _>(&cpu, &case::<f16>(s, mask.clone(), 8));
    let auto = megabatch::Auto::with_cpu(cpu);
    device_path_matches_host::<f32, _>(&auto, &case::<f32>(s, mask, 8));
}

/// NaN or Inf in Q or K propagates as torch's SDPA: exactly the rows whose kept scores meet
/// NaN or +inf get NaN O and LSE, -inf scores act as masked, empty rows stay 0 / -inf, every
/// other row equals the f64 reference (`tests/common/attention_check.rs`); host call and the
/// device-buffer form, f32, f16 and bf16.
#[test]
fn non_finite_q_or_k_makes_exactly_the_rows_that_meet_it_nan() {
    use common::attention_check::check_non_finite_rows;
    let cpu = Cpu::with_threads(2).unwrap();
    check_non_finite_rows::<f32, _>(&cpu, 1e-5, 1e-5);
    check_non_finite_rows::<f16, _>(&cpu, 1e-5 + 1.0 / 2048.0, 1e-5);
    check_non_finite_rows::<bf16, _>(&cpu, 1e-5 + 1.0 / 256.0, 1e-5);
}

/// Element masks (packed bits, any `mask_mod`): `tests/common/element_mask_check.rs`.
mod element_masks {
    use super::*;
    use crate::common::element_mask_check::{
        check_builtin_rules_bitwise, check_empty_rows, check_mask_mod, check_random_bits, Rule,
    };

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn random_mask_mods_match_the_f64_reference(
            batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..150, skv in 1usize..150, bq in 0usize..4, bk in 0usize..4,
            seed in any::<u64>(),
        ) {
            let s = spec(batch, heads_kv, group, sq, skv, 32);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            check_mask_mod::<f32, _>(&Cpu::with_threads(2).unwrap(), s, block, seed, Rule::Rounded(0.0))?;
        }

        #[test]
        fn random_packed_bits_match_the_f64_reference(
            batch in 1usize..3, heads_kv in 1usize..3, group in 1usize..3,
            sq in 1usize..150, skv in 1usize..150, bq in 0usize..4, bk in 0usize..4,
            seed in any::<u64>(),
        ) {
            let s = spec(batch, heads_kv, group, sq, skv, 32);
            let block = (BLOCK_SIZES[bq], BLOCK_SIZES[bk]);
            let cpu = Cpu::with_threads(2).unwrap();
            check_random_bits::<f32, _>(&cpu, s, block, seed, Rule::Rounded(0.0))?;
            check_random_bits::<bf16, _>(&cpu, s, block, seed, Rule::Rounded(2f64.powi(-8)))?;
        }
    }

    #[test]
    fn rows_of_all_false_tiles_are_empty_rows() {
        check_empty_rows::<f32, _>(&Cpu::with_threads(2).unwrap(), Rule::Rounded(0.0));
        check_empty_rows::<f16, _>(&Cpu::new().unwrap(), Rule::Rounded(2f64.powi(-11)));
    }

    #[test]
    fn packed_built_in_rules_are_bitwise_the_built_in_rules() {
        check_builtin_rules_bitwise::<f32, _>(&Cpu::with_threads(2).unwrap());
        check_builtin_rules_bitwise::<bf16, _>(&Cpu::new().unwrap());
    }
}
