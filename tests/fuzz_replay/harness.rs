//! What each fuzz target does with its bytes. Shared by the libFuzzer targets
//! (`fuzz/fuzz_targets/*.rs`) and the stable-Rust regression replay
//! (`tests/fuzz_replay/main.rs`).
//!
//! Every target turns arbitrary bytes into specs, masks, buffers or files, calls the public
//! API, and checks that the outcome is either a result with the documented properties or one
//! of the documented typed errors; anything else (a panic, an unexpected error variant, an
//! out-of-bounds access caught by the sanitizer) is a finding.

#![allow(dead_code)]

use std::sync::OnceLock;

use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionSpec, BatchedEigh, BlockMask, BlockMaskParts, EighSpec, Error, MaskPredicate, Real,
    ReduceOp, ReduceSpec, Reducer, RowReduceOp, SegmentReduceOp, SparseAttention,
};

#[path = "../../src/bin/megabatch/npy.rs"]
mod npy;

fn cpu() -> &'static Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    CPU.get_or_init(|| Cpu::with_threads(2).expect("two threads"))
}

/// Consumes the input from the front; exhausted input reads as zeros.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | (u16::from(self.u8()) << 8)
    }
    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        let got = self.take(8);
        bytes[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(bytes)
    }
    fn i32(&mut self) -> i32 {
        (self.u64() as u32) as i32
    }
    fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// Values that break numerical code, picked by byte.
const SPECIALS: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    f64::MAX,
    -f64::MAX,
    1e154,
    1e-154,
    0.5,
];

/// `len` values of `T` from `bytes`: raw bit patterns (every NaN payload, subnormal and
/// infinity reachable) or, when `specials`, entries of [`SPECIALS`]. Cycles through the bytes;
/// zeros when there are none.
fn values<T: Real>(bytes: &[u8], len: usize, specials: bool) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    if specials {
        return (0..len)
            .map(|i| {
                T::of(
                    SPECIALS[bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0) as usize
                        % SPECIALS.len()],
                )
            })
            .collect();
    }
    if bytes.len() < size {
        return vec![T::zero(); len];
    }
    let count = bytes.len() / size;
    (0..len)
        .map(|i| {
            let at = (i % count) * size;
            bytemuck::pod_read_unaligned::<T>(&bytes[at..at + size])
        })
        .collect()
}

// ---------------------------------------------------------------- eigh

/// Eigh spec validation and CPU execution on arbitrary matrices.
pub fn eigh(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    if mode & 1 == 0 {
        eigh_typed::<f64>(mode, &mut b);
    } else {
        eigh_typed::<f32>(mode, &mut b);
    }
}

/// A size of at least 2^32 from the input.
fn huge(b: &mut Bytes) -> usize {
    (b.u64() | 1 << 32) as usize
}

fn eigh_typed<T: Real>(mode: u8, b: &mut Bytes) {
    let vectors = mode & 2 != 0;
    let hostile = mode & 4 != 0;
    let spec = match (hostile, mode & 8 != 0) {
        (false, false) => EighSpec::uniform(usize::from(b.u8() % 33), usize::from(b.u8() % 9)),
        (false, true) => {
            let count = b.u8() % 7;
            EighSpec::ragged(
                (0..count)
                    .map(|_| usize::from(b.u8() % 20))
                    .collect::<Vec<_>>(),
            )
        }
        // Hostile orders and batches start at 2^32, beyond any machine's memory, so planning
        // them must fail at once: a plan of a merely large order (say 5,120) is valid and
        // warms faer up with one full decomposition per thread, minutes under ASan.
        (true, false) => {
            let n = if mode & 32 == 0 {
                usize::from(b.u8() % 8)
            } else {
                huge(b)
            };
            EighSpec::uniform(n, huge(b))
        }
        (true, true) => {
            let count = b.u8() % 4;
            EighSpec::ragged((0..count).map(|_| huge(b)).collect::<Vec<_>>())
        }
    }
    .with_vectors(vectors);
    let mut plan = match cpu().plan_eigh(&spec) {
        Ok(plan) => plan,
        Err(Error::TooLarge(_)) => return,
        Err(e) => panic!("plan_eigh({spec:?}): unexpected {e:?}"),
    };
    let offsets = spec
        .offsets(std::mem::size_of::<T>())
        .expect("planned spec");
    if offsets.a_len() > 1 << 16 {
        return; // A plan for a big hostile spec is fine; running it is not this target's job.
    }
    let specials = mode & 16 != 0;
    let skew = match mode >> 5 {
        0 => 0isize,
        1 => 1,
        2 => -1,
        _ => 0,
    };
    let a_len = offsets.a_len().saturating_add_signed(skew);
    // What was applied: -1 on an empty batch leaves the length right.
    let skew = a_len as isize - offsets.a_len() as isize;
    let a = values::<T>(b.rest(), a_len, specials);
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut v = vec![T::zero(); if vectors { offsets.a_len() } else { 0 }];
    let result = cpu().eigh_host(&mut plan, &a, &mut w, vectors.then_some(&mut v[..]));
    let lower_finite = |i: usize| {
        let slot = offsets.slot(i);
        (0..slot.n).all(|r| (0..=r).all(|c| a[slot.a_start + r * slot.n + c].is_finite()))
    };
    match result {
        Ok(()) => {
            assert_eq!(skew, 0, "a wrong-length input was accepted");
            for i in 0..spec.batch() {
                let slot = offsets.slot(i);
                let wi = &w[slot.w_start..slot.w_start + slot.n];
                // |eigenvalue| <= n max|a_ij|: finite whenever that bound is representable;
                // beyond it an eigenvalue may overflow to +-inf, but never become NaN.
                let max_entry = (0..slot.n)
                    .flat_map(|r| (0..=r).map(move |c| (r, c)))
                    .map(|(r, c)| a[slot.a_start + r * slot.n + c].abs())
                    .fold(T::zero(), T::max);
                let representable = max_entry * T::of(slot.n as f64) <= T::max_value() / T::of(4.0);
                assert!(
                    wi.iter().all(|x| if representable {
                        x.is_finite()
                    } else {
                        !x.is_nan()
                    }),
                    "eigenvalue out of range, matrix {i} of order {}: w = {wi:?}, a = {:?}",
                    slot.n,
                    &a[slot.a_start..slot.a_start + slot.n * slot.n]
                );
                assert!(
                    wi.windows(2).all(|p| p[0] <= p[1]),
                    "eigenvalues not ascending"
                );
                if vectors && slot.n > 0 {
                    let vi = &v[slot.a_start..slot.a_start + slot.n * slot.n];
                    // ||V^T V - I||_max / (n eps), LAPACK's orthogonality ratio (its tests
                    // accept < 30), computed in f64.
                    let n = slot.n;
                    let mut worst = 0.0f64;
                    for i in 0..n {
                        for j in 0..n {
                            let dot: f64 = (0..n)
                                .map(|k| {
                                    vi[k * n + i].to_f64_lossless()
                                        * vi[k * n + j].to_f64_lossless()
                                })
                                .sum();
                            worst = worst.max((dot - f64::from(u8::from(i == j))).abs());
                        }
                    }
                    let ratio = worst / (n as f64 * T::epsilon().to_f64_lossless());
                    assert!(
                        ratio < 30.0,
                        "eigenvectors not orthonormal (ratio {ratio}), matrix {i} of order {n}: w = {wi:?}, v = {vi:?}, a = {:?}",
                        &a[slot.a_start..slot.a_start + n * n]
                    );
                }
            }
        }
        Err(Error::Shape { .. }) => assert_ne!(skew, 0, "Shape error for correct lengths"),
        Err(Error::NonFinite { matrix }) => {
            assert_eq!(skew, 0);
            assert!(
                !lower_finite(matrix),
                "NonFinite for a finite matrix {matrix}"
            );
            assert!(
                (0..matrix).all(lower_finite),
                "NonFinite names a later matrix"
            );
        }
        Err(Error::NoConvergence { .. }) => {}
        Err(e) => panic!("eigh: unexpected {e:?}"),
    }
}

// ---------------------------------------------------------------- block masks

const BLOCKS: [usize; 5] = [16, 32, 64, 128, 48];

/// Block-mask validation with tensors of any shape and content, then attention over every
/// mask that validates (small sizes), checking the rows' outputs.
pub fn block_mask(data: &[u8]) {
    let mut b = Bytes(data);
    let seq_q = usize::from(b.u16() % 400);
    let seq_kv = usize::from(b.u16() % 400);
    let block = (
        BLOCKS[usize::from(b.u8()) % BLOCKS.len()],
        BLOCKS[usize::from(b.u8()) % BLOCKS.len()],
    );
    let (batch, heads) = (usize::from(b.u8() % 3), usize::from(b.u8() % 3));
    let (qb, kb) = (seq_q.div_ceil(block.0), seq_kv.div_ceil(block.1));
    let shape = b.u8();
    let rows = batch * heads * qb;
    let num_len = if shape & 1 == 0 {
        rows
    } else {
        usize::from(b.u8())
    };
    let idx_len = if shape & 2 == 0 {
        rows * kb
    } else {
        usize::from(b.u8())
    };
    // Small counts and indices mostly, raw i32 sometimes.
    let small = |raw: bool, b: &mut Bytes| -> i32 {
        if raw {
            b.i32()
        } else {
            i32::from(b.u8() % (kb as u8).saturating_add(2)) - 1
        }
    };
    let raw = shape & 4 != 0;
    let kv_num_blocks: Vec<i32> = (0..num_len).map(|_| small(raw, &mut b)).collect();
    let kv_indices: Vec<i32> = (0..idx_len).map(|_| small(raw, &mut b)).collect();
    let full = (shape & 8 != 0).then(|| {
        let n: Vec<i32> = (0..num_len).map(|_| small(raw, &mut b)).collect();
        let i: Vec<i32> = (0..idx_len).map(|_| small(raw, &mut b)).collect();
        (n, i)
    });
    let predicate = match shape >> 4 & 3 {
        0 => MaskPredicate::None,
        1 => MaskPredicate::Causal,
        2 => MaskPredicate::SlidingWindow {
            window: usize::from(b.u8()),
        },
        _ => MaskPredicate::Documents {
            ids: (0..seq_q).map(|_| u32::from(b.u8() % 4)).collect(),
            causal: shape & 64 != 0,
        },
    };
    let parts = BlockMaskParts {
        seq_q,
        seq_kv,
        block,
        batch,
        heads,
        kv_num_blocks,
        kv_indices,
        full,
        predicate,
    };
    let mask = match BlockMask::from_parts(parts) {
        Ok(mask) => mask,
        Err(Error::Mask { .. } | Error::TooLarge(_)) => return,
        Err(e) => panic!("from_parts: unexpected {e:?}"),
    };
    let (mb, mh) = mask.broadcast_dims();
    for bi in 0..mb {
        for hi in 0..mh {
            for q in 0..qb {
                let mut seen = vec![false; kb];
                for (k, _) in mask.row(bi, hi, q) {
                    assert!(k < kb, "validated mask lists block {k} of {kb}");
                    assert!(!seen[k], "validated mask lists block {k} twice");
                    seen[k] = true;
                }
            }
        }
    }
    attend(&mask, mb, mh, seq_q, seq_kv, b.rest());
}

fn attend(mask: &BlockMask, batch: usize, heads: usize, seq_q: usize, seq_kv: usize, bytes: &[u8]) {
    let spec = AttentionSpec {
        batch,
        heads_q: heads,
        heads_kv: heads,
        seq_q,
        seq_kv,
        head_dim: 32,
        scale: None,
    };
    let mut plan = match cpu().plan_attention(&spec, mask) {
        Ok(plan) => plan,
        Err(e) => panic!("a validated mask that fits its spec was refused: {e:?}"),
    };
    let (q_len, kv_len, lse_len) = spec.lens().expect("small spec");
    let finite: Vec<f32> = values::<f32>(bytes, q_len.max(kv_len), false)
        .into_iter()
        .map(|x| {
            if x.is_finite() {
                x.clamp(-8.0, 8.0)
            } else {
                0.5
            }
        })
        .collect();
    let (q, k, v) = (&finite[..q_len], &finite[..kv_len], &finite[..kv_len]);
    let (mut o, mut lse) = (vec![f32::NAN; q_len], vec![f32::NAN; lse_len]);
    cpu()
        .attention_host(&mut plan, q, k, v, &mut o, Some(&mut lse))
        .expect("attention on a validated plan");
    for (row, l) in lse.iter().enumerate() {
        let out = &o[row * 32..(row + 1) * 32];
        if *l == f32::NEG_INFINITY {
            assert!(
                out.iter().all(|x| *x == 0.0),
                "a row without keys must give O = 0"
            );
        } else {
            assert!(l.is_finite(), "LSE {l}");
            assert!(
                out.iter().all(|x| x.is_finite() && x.abs() <= 8.0 + 1e-3),
                "O beyond V's range"
            );
        }
    }
}

// ---------------------------------------------------------------- reductions

/// Reduction specs and segment offsets (non-monotonic, overflowing, empty), then execution of
/// every spec that validates (small sizes), with correct and wrong operand lengths.
pub fn reduce(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    let hostile = mode & 4 != 0;
    // Hostile sizes start at 2^40: beyond any machine's memory for a plan's per-column
    // partials (so `TooLarge`), and their products overflow `usize`.
    let size = |b: &mut Bytes| -> usize {
        if hostile {
            (b.u64() | 1 << 40) as usize
        } else {
            usize::from(b.u16() % 2000)
        }
    };
    let spec = match mode & 3 {
        0 => ReduceSpec::Full {
            op: ReduceOp::ALL[usize::from(b.u8()) % ReduceOp::ALL.len()],
            len: size(&mut b),
        },
        1 => ReduceSpec::Rows {
            op: [
                RowReduceOp::Sum,
                RowReduceOp::Mean,
                RowReduceOp::WeightedMean,
                RowReduceOp::Max,
            ][usize::from(b.u8() % 4)],
            rows: size(&mut b),
            cols: size(&mut b),
        },
        _ => {
            let count = usize::from(b.u8() % 12);
            ReduceSpec::Segments {
                op: [
                    SegmentReduceOp::Sum,
                    SegmentReduceOp::Mean,
                    SegmentReduceOp::Max,
                    SegmentReduceOp::Min,
                    SegmentReduceOp::Dot,
                ][usize::from(b.u8() % 5)],
                offsets: (0..count).map(|_| size(&mut b)).collect(),
            }
        }
    };
    let shape = match spec.shape() {
        Ok(shape) => shape,
        Err(Error::BadOffsets { index }) => {
            let ReduceSpec::Segments { offsets, .. } = &spec else {
                panic!("BadOffsets for {spec:?}")
            };
            assert!(offsets[index] < offsets[index - 1], "BadOffsets at a rise");
            return;
        }
        Err(Error::TooLarge(_) | Error::InvalidArgument(_)) => return,
        Err(e) => panic!("shape({spec:?}): unexpected {e:?}"),
    };
    let mut plan = match cpu().plan_reduce(&spec) {
        Ok(plan) => plan,
        Err(Error::TooLarge(_)) => return,
        Err(e) => panic!("plan_reduce({spec:?}): unexpected {e:?}"),
    };
    if shape.x_len > 1 << 16 || shape.out_len > 1 << 16 {
        return;
    }
    let bytes = b.rest();
    let specials = mode & 8 != 0;
    let x = values::<f64>(bytes, shape.x_len, specials);
    let y = shape.y_len.map(|len| values::<f64>(bytes, len, !specials));
    let mut out = vec![0.0; shape.out_len];
    cpu()
        .reduce_host(&mut plan, &x, y.as_deref(), &mut out)
        .expect("correct lengths");
    if matches!(spec, ReduceSpec::Full { .. }) && x.iter().any(|v| v.is_nan()) {
        assert!(
            out[0].is_nan(),
            "a NaN in x must make a whole-array result NaN"
        );
    }
    let longer = values::<f64>(bytes, shape.x_len + 1, specials);
    assert!(matches!(
        cpu().reduce_host(&mut plan, &longer, y.as_deref(), &mut out),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------- .npy readers

/// The command-line tool's `.npy` and `.npz` readers on arbitrary bytes.
pub fn npy(data: &[u8]) {
    match npy::float_from_bytes(data, "input") {
        Ok(array) => {
            let (shape, len) = match &array {
                npy::FloatArray::F16(a) => (&a.shape, a.data.len()),
                npy::FloatArray::F32(a) => (&a.shape, a.data.len()),
                npy::FloatArray::F64(a) => (&a.shape, a.data.len()),
            };
            assert_eq!(
                npy::element_count(shape),
                Some(len),
                "shape and data disagree"
            );
        }
        Err(npy::NpyError::Io { .. } | npy::NpyError::Format { .. }) => {}
    }
    if let Ok(Some(array)) = npy::npz_ints_from_bytes(data, "input", "kv_indices") {
        assert_eq!(npy::element_count(&array.shape), Some(array.data.len()));
    }
}
