//! Attention on `Multi` (CPU backends of one thread each as stand-in devices): the (batch,
//! key/value head) groups split across devices must give one device's O and LSE bit for bit,
//! host and device calls, for masks broadcast over heads, per (batch, head) lists and
//! per-head element bits from a `mask_mod`, with GQA; and the f64 reference agrees.

use crate::common;

use common::attention_check::{case, check_against, reference, reference_with, spec, Case};
use common::element_mask_check::random_mask_mod;
use megabatch::attention::{BlockMask, BlockMaskParts, MaskPredicate};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::multi::Multi;
use megabatch::{Backend, Error, SparseAttention};
use rand::Rng;

fn simulated(devices: usize) -> Multi<Cpu> {
    Multi::new(
        (0..devices)
            .map(|_| Cpu::with_threads(1).unwrap())
            .collect(),
    )
    .unwrap()
}

/// Random kept blocks per (batch, head, query block), partial blocks under the causal rule.
fn per_head_mask(batch: usize, heads: usize, seq: usize, block: usize, seed: u64) -> BlockMask {
    let mut r = common::rng(seed);
    let nb = seq.div_ceil(block);
    let (mut counts, mut indices) = (Vec::new(), Vec::new());
    for _ in 0..batch * heads * nb {
        let row: Vec<i32> = (0..nb as i32).filter(|_| r.random::<f64>() < 0.5).collect();
        counts.push(row.len() as i32);
        indices.extend(row.iter().copied());
        indices.extend(std::iter::repeat_n(0, nb - row.len()));
    }
    BlockMask::from_parts(BlockMaskParts {
        seq_q: seq,
        seq_kv: seq,
        block: (block, block),
        batch,
        heads,
        kv_num_blocks: counts,
        kv_indices: indices,
        full: None,
        predicate: MaskPredicate::None,
    })
    .unwrap()
}

/// O and LSE of `c` on `backend`, host call.
fn host(backend: &impl SparseAttention<f32>, c: &Case) -> (Vec<f32>, Vec<f32>) {
    let mut plan = backend.plan_attention(&c.spec, &c.mask).unwrap();
    let mut o = vec![0.0f32; c.q.len()];
    let mut lse = vec![0.0f32; c.spec.batch * c.spec.heads_q * c.spec.seq_q];
    backend
        .attention_host(&mut plan, &c.q, &c.k, &c.v, &mut o, Some(&mut lse))
        .unwrap();
    (o, lse)
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn every_split_equals_one_device_bit_for_bit() {
    let one = Cpu::with_threads(1).unwrap();
    let (batch, heads_kv, group, seq) = (2, 3, 2, 96);
    let (name, mask_mod) = random_mask_mod(9, seq, seq);
    // The mask_mod's own values are the truth for its element bits (not the bits).
    let truth = mask_mod.clone();
    let masks = [
        ("causal", BlockMask::causal(seq, seq, (32, 32)).unwrap()),
        (
            "per-head lists",
            per_head_mask(batch, heads_kv * group, seq, 32, 3),
        ),
        (
            name,
            BlockMask::from_mask_mod_bh(
                batch,
                heads_kv * group,
                seq,
                seq,
                (16, 32),
                |b, h, i, j| mask_mod(b, h, i, j),
            )
            .unwrap(),
        ),
    ];
    for (label, mask) in masks {
        let c = case::<f32>(spec(batch, heads_kv, group, seq, seq, 32), mask, 17);
        let (o1, l1) = host(&one, &c);
        for devices in [2, 4, 7] {
            let multi = simulated(devices);
            let (o, l) = host(&multi, &c);
            assert_eq!(bits(&o), bits(&o1), "{label}, {devices} devices: O");
            assert_eq!(bits(&l), bits(&l1), "{label}, {devices} devices: LSE");

            // Device buffers split as the plan splits the call.
            let mut plan = multi.plan_attention(&c.spec, &c.mask).unwrap();
            let parts = plan.parts().to_vec();
            let alloc = |f: &dyn Fn(
                &megabatch::backends::multi::AttentionPart,
            ) -> std::ops::Range<usize>| {
                multi
                    .alloc_parts::<f32>(parts.iter().map(f).collect::<Vec<_>>())
                    .unwrap()
            };
            let (mut q, mut k, mut v) = (
                alloc(&|p| p.q.clone()),
                alloc(&|p| p.kv.clone()),
                alloc(&|p| p.kv.clone()),
            );
            let mut o_d = alloc(&|p| p.q.clone());
            let mut l_d = alloc(&|p| p.lse.clone());
            multi.upload(&c.q, &mut q).unwrap();
            multi.upload(&c.k, &mut k).unwrap();
            multi.upload(&c.v, &mut v).unwrap();
            multi
                .attention(&mut plan, &q, &k, &v, &mut o_d, Some(&mut l_d))
                .unwrap();
            let (mut o, mut l) = (vec![0.0f32; o1.len()], vec![0.0f32; l1.len()]);
            multi.download(&o_d, &mut o).unwrap();
            multi.download(&l_d, &mut l).unwrap();
            assert_eq!(bits(&o), bits(&o1), "{label}, {devices} devices: device O");
            assert_eq!(
                bits(&l),
                bits(&l1),
                "{label}, {devices} devices: device LSE"
            );

            // Evenly split buffers are not this plan's split: refused.
            let mut even = multi.alloc::<f32>(o1.len()).unwrap();
            if even
                .parts()
                .iter()
                .map(|(r, _)| r.clone())
                .ne(parts.iter().map(|p| p.q.clone()))
            {
                let err = multi
                    .attention(&mut plan, &q, &k, &v, &mut even, None)
                    .unwrap_err();
                assert!(matches!(err, Error::PlanMismatch(_)), "{err:?}");
            }
        }
        // And the f64 reference.
        let want = if label == name {
            reference_with(&c, &|b, h, i, j| truth(b, h, i, j))
        } else {
            reference(&c)
        };
        check_against::<f32, _>(&simulated(3), &c, f64::from(f32::EPSILON), want)
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));
    }
}
