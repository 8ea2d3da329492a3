//! `megabatch attention`: block-sparse attention on `.npy` tensors, with a FlexAttention
//! block mask from a `.npz` archive.

use std::path::{Path, PathBuf};

use megabatch::{AttentionElement, AttentionSpec, BlockMask, MaskPredicate, SparseAttention};
use npyz::AutoSerialize;

use crate::mask_npz::{self, MaskFit};
use crate::npy::{self, Array, FloatArray};
use crate::outputs::{Output, Outputs};
use crate::timing::auto_for;
use crate::values::positive_finite;
use crate::{BackendArg, CliError, CliResult};

/// Element rule inside partial blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PredicateArg {
    /// Listed blocks are kept entirely.
    None,
    /// Key j kept for query i iff j <= i + Skv - Sq (bottom-right aligned).
    Causal,
}

/// Arguments of `megabatch attention`.
#[derive(clap::Args)]
pub struct AttentionArgs {
    /// Queries, float16 or float32, shape [B, Hq, Sq, D].
    #[arg(long)]
    q: PathBuf,
    /// Keys, shape [B, Hkv, Skv, D] (Hkv divides Hq: grouped-query attention).
    #[arg(long)]
    k: PathBuf,
    /// Values, shape [B, Hkv, Skv, D].
    #[arg(long)]
    v: PathBuf,
    /// FlexAttention block mask as `.npz`: kv_num_blocks [B, H, Q_BLOCKS] and kv_indices
    /// [B, H, Q_BLOCKS, KV_BLOCKS] (int32 or int64; B and H may be 1 to broadcast), optionally
    /// full_kv_num_blocks and full_kv_indices of the same shapes, block_size [BQ, BK], and
    /// partial_block_bits, any mask_mod as the element mask of every partial block in
    /// kv_indices order: uint8 [NNZ, BQ, ceil(BK/8)] from numpy.packbits(m, axis=-1,
    /// bitorder="little") of the (NNZ, BQ, BK) booleans, or uint32 [NNZ, BQ, ceil(BK/32)]
    /// (then --predicate must be none). Default: every block kept.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Output O, shape [B, Hq, Sq, D], the dtype of Q.
    #[arg(long)]
    out: PathBuf,
    /// Also write the log-sum-exp of each row, float32 [B, Hq, Sq].
    #[arg(long)]
    lse: Option<PathBuf>,
    /// Element rule inside partial blocks (and for the default mask).
    #[arg(long, value_enum, default_value_t = PredicateArg::None)]
    predicate: PredicateArg,
    /// Block size (BQ = BK) of the default mask, or when the archive has no block_size.
    #[arg(long, default_value_t = 128)]
    block: usize,
    /// Score scale, finite and > 0 (default 1 / sqrt(D)).
    #[arg(long, value_parser = positive_finite::<f32>, allow_negative_numbers = true)]
    scale: Option<f32>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
}

/// Runs `megabatch attention`.
pub fn run(args: &AttentionArgs) -> CliResult {
    let mut outputs = Outputs::new();
    for (flag, path) in [("--q", &args.q), ("--k", &args.k), ("--v", &args.v)] {
        outputs.input(flag, path);
    }
    if let Some(mask) = &args.mask {
        outputs.input("--mask", mask);
    }
    let out = outputs.add("--out", &args.out)?;
    let lse = args
        .lse
        .as_deref()
        .map(|p| outputs.add("--lse", p))
        .transpose()?;
    let targets = Targets { out, lse };
    let (q, k, v) = (
        npy::read_float(&args.q)?,
        npy::read_float(&args.k)?,
        npy::read_float(&args.v)?,
    );
    match (q, k, v) {
        (FloatArray::F32(q), FloatArray::F32(k), FloatArray::F32(v)) => {
            attend(args, &outputs, targets, q, k, v)?
        }
        (FloatArray::F16(q), FloatArray::F16(k), FloatArray::F16(v)) => {
            attend(args, &outputs, targets, q, k, v)?
        }
        (q, k, v) => {
            return Err(CliError::Usage(format!(
                "{}, {} and {} must all be float16 or all float32 (got {}, {}, {})",
                args.q.display(),
                args.k.display(),
                args.v.display(),
                q.dtype(),
                k.dtype(),
                v.dtype()
            )))
        }
    }
    outputs.commit()
}

/// The registered outputs of a run.
struct Targets {
    out: Output,
    lse: Option<Output>,
}

fn dims4(path: &Path, shape: &[usize]) -> CliResult<[usize; 4]> {
    <[usize; 4]>::try_from(shape).map_err(|_| {
        CliError::Usage(format!(
            "{}: expected rank 4 [B, H, S, D], got shape {shape:?}",
            path.display()
        ))
    })
}

/// Q, K and V's shapes against each other: the attention call's spec.
fn spec_of(
    args: &AttentionArgs,
    q: &[usize],
    k: &[usize],
    v: &[usize],
) -> CliResult<AttentionSpec> {
    let [b, hq, sq, d] = dims4(&args.q, q)?;
    let [bk, hkv, skv, dk] = dims4(&args.k, k)?;
    dims4(&args.v, v)?;
    let refuse = |reason: String| Err(CliError::Usage(reason));
    if v != k {
        return refuse(format!(
            "{}: shape {v:?} differs from {}'s {k:?}",
            args.v.display(),
            args.k.display()
        ));
    }
    if bk != b || dk != d {
        return refuse(format!(
            "{}: shape {k:?} differs from {}'s {q:?} in B or D",
            args.k.display(),
            args.q.display()
        ));
    }
    if hkv == 0 || hq % hkv != 0 {
        return refuse(format!(
            "{}: Hkv = {hkv} does not divide {}'s Hq = {hq}",
            args.k.display(),
            args.q.display()
        ));
    }
    Ok(AttentionSpec {
        batch: b,
        heads_q: hq,
        heads_kv: hkv,
        seq_q: sq,
        seq_kv: skv,
        head_dim: d,
        scale: args.scale,
    })
}

fn attend<T: AttentionElement + AutoSerialize>(
    args: &AttentionArgs,
    outputs: &Outputs,
    targets: Targets,
    q: Array<T>,
    k: Array<T>,
    v: Array<T>,
) -> CliResult {
    let spec = spec_of(args, &q.shape, &k.shape, &v.shape)?;
    let (b, hq, sq) = (spec.batch, spec.heads_q, spec.seq_q);
    let predicate = match args.predicate {
        PredicateArg::None => MaskPredicate::None,
        PredicateArg::Causal => MaskPredicate::Causal,
    };
    let block = (args.block, args.block);
    let mask = match &args.mask {
        Some(path) => mask_npz::read(
            path,
            &MaskFit {
                batch: b,
                heads: hq,
                seq_q: sq,
                seq_kv: spec.seq_kv,
                block,
                predicate,
            },
        )?,
        None => BlockMask::from_predicate(sq, spec.seq_kv, block, predicate)
            .map_err(|e| CliError::Usage(format!("--block {}: {e}", args.block)))?,
    };
    let mut o = Vec::new();
    let mut lse = Vec::new();
    // No query rows: empty results, as NumPy gives, with nothing to plan (the other
    // dimensions may be anything).
    if npy::element_count(&[b, hq, sq]) != Some(0) {
        let auto = auto_for(&megabatch::Auto::new()?, args.backend)?;
        let mut plan = auto.plan_attention(&spec, &mask)?;
        o = vec![T::from_f32(0.0); q.data.len()];
        lse = vec![
            0f32;
            if targets.lse.is_some() {
                b * hq * sq
            } else {
                0
            }
        ];
        let lse_out = targets.lse.is_some().then_some(&mut lse[..]);
        auto.attention_host(&mut plan, &q.data, &k.data, &v.data, &mut o, lse_out)?;
    }
    npy::write(outputs.temp(targets.out), &q.shape, &o)?;
    if let Some(out) = targets.lse {
        npy::write(outputs.temp(out), &[b, hq, sq], &lse)?;
    }
    Ok(())
}
