//! The attention parity suite for any backend: a naive dense masked softmax in f64 from the
//! same (exactly widened) inputs, test cases, masks of every kind. Tolerances: f32, max
//! |O - O_ref| <= 1e-5 max |O_ref| and LSE within 1e-5 (absolute, natural log); f16/bf16,
//! additionally the rounding of the output to the dtype, u max |O_ref| with u = 2^-11 (f16) or
//! 2^-8 (bf16): kernels compute in f32 and round once at the end, and the reference starts
//! from the same rounded inputs.
#![allow(dead_code)]

use megabatch::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use proptest::prelude::*;
use rand::Rng;

pub struct Case {
    pub spec: AttentionSpec,
    pub mask: BlockMask,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

/// Naive reference: every (b, h, i), every key j the mask keeps, softmax in f64. Non-finite
/// scores as torch's SDPA: a NaN or +inf kept score makes the row's O and LSE NaN, a -inf one
/// counts as masked (a row left with no score is empty: O = 0, LSE = -inf).
pub fn reference(c: &Case) -> (Vec<f64>, Vec<f64>) {
    let s = c.spec;
    let (bq, bk) = c.mask.block_size();
    reference_with(c, &|b, h, i, j| {
        c.mask.row(b, h, i / bq).any(|(kb, full)| {
            kb == j / bk && (full || c.mask.predicate().keeps(i, j, s.seq_q, s.seq_kv))
        })
    })
}

/// [`reference`] with the kept pairs given by `keeps(b, h, i, j)` instead of read from the
/// mask's lists and predicate: the truth for masks with element bits, which the tests know
/// from the `mask_mod` they built the mask from (or their own tile tables), not from the bits.
pub fn reference_with(
    c: &Case,
    keeps: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> (Vec<f64>, Vec<f64>) {
    let s = c.spec;
    let d = s.head_dim;
    let scale = f64::from(s.softmax_scale());
    let mut o = vec![0.0; c.q.len()];
    let mut lse = vec![f64::NEG_INFINITY; s.batch * s.heads_q * s.seq_q];
    for b in 0..s.batch {
        for h in 0..s.heads_q {
            let hk = h / (s.heads_q / s.heads_kv);
            for i in 0..s.seq_q {
                let kept = |j: usize| keeps(b, h, i, j);
                let qi = &c.q[((b * s.heads_q + h) * s.seq_q + i) * d..][..d];
                let scores: Vec<(usize, f64)> = (0..s.seq_kv)
                    .filter(|&j| kept(j))
                    .map(|j| {
                        let kj = &c.k[((b * s.heads_kv + hk) * s.seq_kv + j) * d..][..d];
                        (
                            j,
                            scale
                                * qi.iter()
                                    .zip(kj)
                                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                                    .sum::<f64>(),
                        )
                    })
                    .collect();
                if scores.iter().any(|x| x.1.is_nan() || x.1 == f64::INFINITY) {
                    o[((b * s.heads_q + h) * s.seq_q + i) * d..][..d].fill(f64::NAN);
                    lse[(b * s.heads_q + h) * s.seq_q + i] = f64::NAN;
                    continue;
                }
                let scores: Vec<(usize, f64)> = scores
                    .into_iter()
                    .filter(|x| x.1 != f64::NEG_INFINITY)
                    .collect();
                if scores.is_empty() {
                    continue;
                }
                let m = scores.iter().fold(f64::NEG_INFINITY, |m, x| m.max(x.1));
                let z: f64 = scores.iter().map(|x| (x.1 - m).exp()).sum();
                let out = &mut o[((b * s.heads_q + h) * s.seq_q + i) * d..][..d];
                for &(j, sc) in &scores {
                    let p = (sc - m).exp() / z;
                    let vj = &c.v[((b * s.heads_kv + hk) * s.seq_kv + j) * d..][..d];
                    for (a, x) in out.iter_mut().zip(vj) {
                        *a += p * f64::from(*x);
                    }
                }
                lse[(b * s.heads_q + h) * s.seq_q + i] = m + z.ln();
            }
        }
    }
    (o, lse)
}

/// Runs case `c` on `backend` in dtype `T`: O widened to f64, and LSE.
pub fn run_on<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
) -> (Vec<f64>, Vec<f32>) {
    let cpu = backend;
    let conv = |x: &[f32]| x.iter().map(|&v| T::from_f32(v)).collect::<Vec<T>>();
    let (q, k, v) = (conv(&c.q), conv(&c.k), conv(&c.v));
    let mut plan = cpu.plan_attention(&c.spec, &c.mask).unwrap();
    let mut o = vec![T::from_f32(0.0); q.len()];
    let mut lse = vec![0.0f32; c.spec.batch * c.spec.heads_q * c.spec.seq_q];
    cpu.attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
        .unwrap();
    (o.iter().map(|x| f64::from(x.to_f32())).collect(), lse)
}

/// Inputs already rounded to `T`, so the reference sees exactly what the kernel reads.
pub fn case<T: AttentionElement>(spec: AttentionSpec, mask: BlockMask, seed: u64) -> Case {
    let mut rng = super::rng(seed);
    let (ql, kvl, _) = spec.lens().unwrap();
    let mut gen = |n: usize| {
        (0..n)
            .map(|_| T::from_f32(rng.random::<f32>() * 4.0 - 2.0).to_f32())
            .collect::<Vec<f32>>()
    };
    Case {
        q: gen(ql),
        k: gen(kvl),
        v: gen(kvl),
        spec,
        mask,
    }
}

/// `backend`'s O and LSE against [`reference`]: `(1e-5 + unit_roundoff) max |O_ref|` and LSE
/// within 1e-5.
pub fn check_on<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
    unit_roundoff: f64,
) -> Result<(), TestCaseError> {
    check_against::<T, B>(backend, c, unit_roundoff, reference(c))
}

/// [`check_on`] against a given reference `(O, LSE)` (from [`reference_with`]).
pub fn check_against<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
    unit_roundoff: f64,
    (o_ref, lse_ref): (Vec<f64>, Vec<f64>),
) -> Result<(), TestCaseError> {
    let (o, lse) = run_on::<T, B>(backend, c);
    let scale = o_ref.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol = (1e-5 + unit_roundoff) * scale.max(1e-30);
    for (idx, (a, r)) in o.iter().zip(&o_ref).enumerate() {
        prop_assert!(
            (a - r).abs() <= tol,
            "{} O[{idx}]: {a} vs {r} (tol {tol:e})",
            T::DTYPE
        );
    }
    for (idx, (a, r)) in lse.iter().zip(&lse_ref).enumerate() {
        if r.is_infinite() {
            prop_assert!(*a == f32::NEG_INFINITY, "LSE[{idx}]: {a} for an empty row");
        } else {
            prop_assert!((f64::from(*a) - r).abs() <= 1e-5, "LSE[{idx}]: {a} vs {r}");
        }
    }
    Ok(())
}

/// The naive low-precision computation the tensor-core kernels are held to (FlashAttention's
/// test rule, Dao et al.): per row, scores and softmax in f32 from the `T` inputs, the
/// probabilities rounded to `T` before they multiply V (as a kernel feeding P V to 16-bit
/// tensor cores must), the product accumulated in f32, O rounded to `T`.
pub fn naive_low_precision<T: AttentionElement>(c: &Case) -> Vec<f64> {
    let s = c.spec;
    let (bq, bk) = c.mask.block_size();
    naive_low_precision_with::<T>(c, &|b, h, i, j| {
        c.mask.row(b, h, i / bq).any(|(kb, full)| {
            kb == j / bk && (full || c.mask.predicate().keeps(i, j, s.seq_q, s.seq_kv))
        })
    })
}

/// [`naive_low_precision`] with the kept pairs from `keeps(b, h, i, j)` (see
/// [`reference_with`]).
pub fn naive_low_precision_with<T: AttentionElement>(
    c: &Case,
    keeps: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Vec<f64> {
    let s = c.spec;
    let d = s.head_dim;
    let scale = s.softmax_scale();
    let mut o = vec![0.0; c.q.len()];
    for b in 0..s.batch {
        for h in 0..s.heads_q {
            let hk = h / (s.heads_q / s.heads_kv);
            for i in 0..s.seq_q {
                let qi = &c.q[((b * s.heads_q + h) * s.seq_q + i) * d..][..d];
                let scores: Vec<(usize, f32)> = (0..s.seq_kv)
                    .filter(|&j| keeps(b, h, i, j))
                    .map(|j| {
                        let kj = &c.k[((b * s.heads_kv + hk) * s.seq_kv + j) * d..][..d];
                        (
                            j,
                            scale * qi.iter().zip(kj).map(|(x, y)| x * y).sum::<f32>(),
                        )
                    })
                    .collect();
                if scores.is_empty() {
                    continue;
                }
                let m = scores.iter().fold(f32::NEG_INFINITY, |m, x| m.max(x.1));
                let p: Vec<f32> = scores.iter().map(|x| (x.1 - m).exp()).collect();
                let l: f32 = p.iter().sum();
                let mut acc = vec![0.0f32; d];
                for (&(j, _), &pj) in scores.iter().zip(&p) {
                    let pj = T::from_f32(pj).to_f32();
                    let vj = &c.v[((b * s.heads_kv + hk) * s.seq_kv + j) * d..][..d];
                    for (a, x) in acc.iter_mut().zip(vj) {
                        *a += pj * x;
                    }
                }
                let out = &mut o[((b * s.heads_q + h) * s.seq_q + i) * d..][..d];
                for (dst, a) in out.iter_mut().zip(acc) {
                    *dst = f64::from(T::from_f32(a / l).to_f32());
                }
            }
        }
    }
    o
}

/// Tensor-core tolerance: `backend`'s max |O - O_ref| at most twice the naive low-precision
/// computation's ([`naive_low_precision`]) plus the f32 floor of [`check_on`]
/// (`(1e-5 + u) max |O_ref|`); LSE within 1e-5 (it comes from f32 scores either way); empty
/// rows exactly 0 and -inf.
pub fn check_low_precision_on<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
    unit_roundoff: f64,
) -> Result<(), TestCaseError> {
    let (bq, bk) = c.mask.block_size();
    let s = c.spec;
    check_low_precision_with::<T, B>(backend, c, unit_roundoff, &|b, h, i, j| {
        c.mask.row(b, h, i / bq).any(|(kb, full)| {
            kb == j / bk && (full || c.mask.predicate().keeps(i, j, s.seq_q, s.seq_kv))
        })
    })
}

/// [`check_low_precision_on`] with the kept pairs from `keeps(b, h, i, j)` (see
/// [`reference_with`]).
pub fn check_low_precision_with<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    c: &Case,
    unit_roundoff: f64,
    keeps: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Result<(), TestCaseError> {
    let (o_ref, lse_ref) = reference_with(c, keeps);
    let naive = naive_low_precision_with::<T>(c, keeps);
    let (o, lse) = run_on::<T, B>(backend, c);
    let max_err = |x: &[f64]| {
        x.iter()
            .zip(&o_ref)
            .fold(0.0f64, |m, (a, r)| m.max((a - r).abs()))
    };
    let scale = o_ref.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol = 2.0 * max_err(&naive) + (1e-5 + unit_roundoff) * scale.max(1e-30);
    let err = max_err(&o);
    prop_assert!(
        err <= tol,
        "{}: max |O - O_ref| = {err:e} > {tol:e} (naive low precision: {:e})",
        T::DTYPE,
        max_err(&naive)
    );
    for (idx, (a, r)) in lse.iter().zip(&lse_ref).enumerate() {
        if r.is_infinite() {
            prop_assert!(*a == f32::NEG_INFINITY, "LSE[{idx}]: {a} for an empty row");
            let row = &o[idx * c.spec.head_dim..][..c.spec.head_dim];
            prop_assert!(row.iter().all(|&x| x == 0.0), "O row {idx} of an empty row");
        } else {
            prop_assert!((f64::from(*a) - r).abs() <= 1e-5, "LSE[{idx}]: {a} vs {r}");
        }
    }
    Ok(())
}

pub fn spec(
    batch: usize,
    heads_kv: usize,
    group: usize,
    seq_q: usize,
    seq_kv: usize,
    head_dim: usize,
) -> AttentionSpec {
    AttentionSpec {
        batch,
        heads_q: heads_kv * group,
        heads_kv,
        seq_q,
        seq_kv,
        head_dim,
        scale: None,
    }
}

pub fn mask_for(sq: usize, skv: usize, block: (usize, usize), kind: u8, seed: u64) -> BlockMask {
    match kind % 5 {
        0 => BlockMask::dense(sq, skv, block).unwrap(),
        1 => BlockMask::causal(sq, skv, block).unwrap(),
        2 => BlockMask::sliding_window(sq, skv, block, 1 + (seed as usize % 50)).unwrap(),
        3 if sq == skv => {
            BlockMask::documents(&[sq / 3, sq - sq / 3], block, seed.is_multiple_of(2)).unwrap()
        }
        _ => {
            // Random blocks, density between 0 and 1.
            let mut rng = super::rng(seed);
            let (qb, kb) = (sq.div_ceil(block.0), skv.div_ceil(block.1));
            let density: f64 = rng.random();
            let blocks: Vec<bool> = (0..qb * kb)
                .map(|_| rng.random::<f64>() < density)
                .collect();
            BlockMask::from_block_matrix(sq, skv, block, &blocks).unwrap()
        }
    }
}

/// The device-resident call ([`SparseAttention::attention`] on `backend`'s buffers, twice,
/// to cover reuse of whatever it caches per buffer set) gives the same bits as the host call,
/// with and without LSE.
pub fn device_path_matches_host<T: AttentionElement + PartialEq + std::fmt::Debug, B>(
    backend: &B,
    c: &Case,
) where
    B: SparseAttention<T>,
{
    let conv = |x: &[f32]| x.iter().map(|&v| T::from_f32(v)).collect::<Vec<T>>();
    let (q, k, v) = (conv(&c.q), conv(&c.k), conv(&c.v));
    let (q_len, _, lse_len) = c.spec.lens().unwrap();
    let mut plan = backend.plan_attention(&c.spec, &c.mask).unwrap();
    let mut o = vec![T::from_f32(0.0); q_len];
    let mut lse = vec![0.0f32; lse_len];
    backend
        .attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
        .unwrap();
    let upload = |x: &[T]| {
        let mut b = backend.alloc::<T>(x.len()).unwrap();
        backend.upload(x, &mut b).unwrap();
        b
    };
    let (qd, kd, vd) = (upload(&q), upload(&k), upload(&v));
    let mut od = backend.alloc::<T>(q_len).unwrap();
    let mut ld = backend.alloc::<f32>(lse_len).unwrap();
    for with_lse in [true, true, false] {
        backend
            .upload(&vec![T::from_f32(0.0); q_len], &mut od)
            .unwrap();
        let l = if with_lse { Some(&mut ld) } else { None };
        backend
            .attention(&mut plan, &qd, &kd, &vd, &mut od, l)
            .unwrap();
        let mut o2 = vec![T::from_f32(0.0); q_len];
        backend.download(&od, &mut o2).unwrap();
        assert_eq!(o2, o, "{}: O from device buffers", T::DTYPE);
    }
    let mut l2 = vec![0.0f32; lse_len];
    backend.download(&ld, &mut l2).unwrap();
    assert_eq!(
        l2.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        lse.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        "LSE from device buffers"
    );
}

/// The non-finite contract of `SparseAttention` on `backend` in dtype `T`, host and device
/// paths: B = 2, Hq = 4 on Hkv = 2 (GQA), Sq = 128, Skv = 96, D = 64, a causal mask of 32 x 32
/// blocks (bottom-right aligned, so rows 0-31 keep nothing), random inputs with
/// - NaN in K at batch 0, key-value head 1, key 40: exactly the rows of query heads 2 and 3
///   that keep key 40 (i >= 72) become NaN (O and LSE), every other row stays as the reference;
/// - NaN in Q at batch 1, head 0, row 100: that row alone;
/// - +inf in K at batch 1, key-value head 1, key 10, dimension 0, with Q's dimension 0 set to
///   +0.5 in head 2 and -0.5 in head 3: head 2's rows that keep key 10 meet a +inf score
///   (NaN, as torch's `inf - inf`), head 3's a -inf score, which acts as masked (they equal
///   the reference without key 10).
///
/// Rows with no kept key stay O = 0, LSE = -inf. Finite rows are held to `o_tol` times
/// max |O_ref| and `lse_tol` (absolute).
pub fn check_non_finite_rows<T: AttentionElement, B: SparseAttention<T>>(
    backend: &B,
    o_tol: f64,
    lse_tol: f64,
) {
    let spec = AttentionSpec {
        batch: 2,
        heads_q: 4,
        heads_kv: 2,
        seq_q: 128,
        seq_kv: 96,
        head_dim: 64,
        scale: None,
    };
    let mask = BlockMask::causal(128, 96, (32, 32)).unwrap();
    let mut c = case::<T>(spec, mask, 2025);
    let d = spec.head_dim;
    let q_at = |b: usize, h: usize, i: usize, e: usize| ((b * 4 + h) * 128 + i) * d + e;
    let k_at = |b: usize, hk: usize, j: usize, e: usize| ((b * 2 + hk) * 96 + j) * d + e;
    c.k[k_at(0, 1, 40, 5)] = f32::NAN;
    c.q[q_at(1, 0, 100, 3)] = f32::NAN;
    c.k[k_at(1, 1, 10, 0)] = f32::INFINITY;
    for i in 0..128 {
        c.q[q_at(1, 2, i, 0)] = 0.5;
        c.q[q_at(1, 3, i, 0)] = -0.5;
    }
    let (o_ref, lse_ref) = reference(&c);
    let rows = lse_ref.len();
    // The reference itself: the NaN rows are exactly those the scenario names.
    let nan_row = |b: usize, h: usize, i: usize| {
        (b == 0 && (h == 2 || h == 3) && i >= 72)
            || (b == 1 && h == 0 && i == 100)
            || (b == 1 && h == 2 && i >= 42)
    };
    for (r, l) in lse_ref.iter().enumerate() {
        let (b, h, i) = (r / 512, r / 128 % 4, r % 128);
        assert_eq!(l.is_nan(), nan_row(b, h, i), "reference row {r}");
        assert_eq!(*l == f64::NEG_INFINITY, i < 32, "reference row {r}");
    }
    let scale = o_ref
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));

    let conv = |x: &[f32]| x.iter().map(|&v| T::from_f32(v)).collect::<Vec<T>>();
    let (q, k, v) = (conv(&c.q), conv(&c.k), conv(&c.v));
    let (q_len, _, lse_len) = spec.lens().unwrap();
    let mut plan = backend.plan_attention(&spec, &c.mask).unwrap();
    let mut o = vec![T::from_f32(0.0); q_len];
    let mut lse = vec![0.0f32; lse_len];
    backend
        .attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
        .unwrap();
    let upload = |x: &[T]| {
        let mut buf = backend.alloc::<T>(x.len()).unwrap();
        backend.upload(x, &mut buf).unwrap();
        buf
    };
    let (qd, kd, vd) = (upload(&q), upload(&k), upload(&v));
    let mut od = backend.alloc::<T>(q_len).unwrap();
    let mut ld = backend.alloc::<f32>(lse_len).unwrap();
    backend
        .attention(&mut plan, &qd, &kd, &vd, &mut od, Some(&mut ld))
        .unwrap();
    let mut o_dev = vec![T::from_f32(0.0); q_len];
    let mut lse_dev = vec![0.0f32; lse_len];
    backend.download(&od, &mut o_dev).unwrap();
    backend.download(&ld, &mut lse_dev).unwrap();

    for (path, o, lse) in [("host", &o, &lse), ("device", &o_dev, &lse_dev)] {
        let label = format!("{} {:?} {path}", T::DTYPE, backend.kind());
        for r in 0..rows {
            let out: Vec<f64> = o[r * d..(r + 1) * d]
                .iter()
                .map(|x| f64::from(x.to_f32()))
                .collect();
            let want = &o_ref[r * d..(r + 1) * d];
            let (l, l_ref) = (lse[r], lse_ref[r]);
            if l_ref.is_nan() {
                assert!(
                    l.is_nan() && out.iter().all(|x| x.is_nan()),
                    "{label}: row {r} meets a NaN or +inf score: O and LSE must be NaN \
                     (LSE {l}, O[0] {})",
                    out[0]
                );
            } else if l_ref == f64::NEG_INFINITY {
                assert!(
                    l == f32::NEG_INFINITY && out.iter().all(|&x| x == 0.0),
                    "{label}: row {r} keeps no key: O = 0, LSE = -inf (LSE {l})"
                );
            } else {
                assert!(
                    (f64::from(l) - l_ref).abs() <= lse_tol,
                    "{label}: row {r} LSE {l} vs {l_ref}"
                );
                for (e, (x, y)) in out.iter().zip(want).enumerate() {
                    assert!(
                        (x - y).abs() <= o_tol * scale,
                        "{label}: row {r} O[{e}] {x} vs {y}"
                    );
                }
            }
        }
    }
}
