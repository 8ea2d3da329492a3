//! `megabatch attention`: block-sparse attention on `.npy` tensors, with a FlexAttention
//! block mask from a `.npz` archive.

use std::path::{Path, PathBuf};

use megabatch::attention::{
    AttentionElement, AttentionSpec, BlockMask, BlockMaskParts, MaskPredicate, SparseAttention,
};
use npyz::AutoSerialize;

use crate::npy::{self, Array, FloatArray};
use crate::timing::auto_for;
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
    /// FlexAttention block mask as `.npz`: kv_num_blocks [Bm, Hm, QB] and kv_indices
    /// [Bm, Hm, QB, KB] (int32 or int64), optionally full_kv_num_blocks, full_kv_indices and
    /// block_size [BQ, BK]. Default: every block kept.
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
    /// Score scale (default 1 / sqrt(D)).
    #[arg(long)]
    scale: Option<f32>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
}

pub fn run(args: &AttentionArgs) -> CliResult {
    let (q, k, v) = (
        npy::read_float(&args.q)?,
        npy::read_float(&args.k)?,
        npy::read_float(&args.v)?,
    );
    match (q, k, v) {
        (FloatArray::F32(q), FloatArray::F32(k), FloatArray::F32(v)) => attend(args, q, k, v),
        (FloatArray::F16(q), FloatArray::F16(k), FloatArray::F16(v)) => attend(args, q, k, v),
        (q, k, v) => Err(CliError::Usage(format!(
            "q, k and v must all be float16 or all float32 (got {}, {}, {})",
            q.dtype(),
            k.dtype(),
            v.dtype()
        ))),
    }
}

fn dims4(path: &Path, shape: &[usize]) -> CliResult<[usize; 4]> {
    <[usize; 4]>::try_from(shape).map_err(|_| {
        CliError::Usage(format!(
            "{}: shape {shape:?} is not [B, H, S, D]",
            path.display()
        ))
    })
}

fn attend<T: AttentionElement + AutoSerialize>(
    args: &AttentionArgs,
    q: Array<T>,
    k: Array<T>,
    v: Array<T>,
) -> CliResult {
    let [b, hq, sq, d] = dims4(&args.q, &q.shape)?;
    let [bk, hkv, skv, dk] = dims4(&args.k, &k.shape)?;
    if k.shape != v.shape || bk != b || dk != d {
        return Err(CliError::Usage(format!(
            "k {:?} and v {:?} must match each other and q {:?} in B and D",
            k.shape, v.shape, q.shape
        )));
    }
    let spec = AttentionSpec {
        batch: b,
        heads_q: hq,
        heads_kv: hkv,
        seq_q: sq,
        seq_kv: skv,
        head_dim: d,
        scale: args.scale,
    };
    let mask = match &args.mask {
        Some(path) => read_mask(path, args, sq, skv)?,
        None => match args.predicate {
            PredicateArg::None => BlockMask::dense(sq, skv, (args.block, args.block))?,
            PredicateArg::Causal => BlockMask::causal(sq, skv, (args.block, args.block))?,
        },
    };
    let auto = auto_for(&megabatch::Auto::new()?, args.backend)?;
    let mut o = vec![T::from_f32(0.0); q.data.len()];
    let mut lse = vec![0f32; if args.lse.is_some() { b * hq * sq } else { 0 }];
    let mut plan = SparseAttention::<T>::plan_attention(&auto, &spec, &mask)?;
    let lse_out = args.lse.is_some().then_some(&mut lse[..]);
    auto.attention_host(&mut plan, &q.data, &k.data, &v.data, &mut o, lse_out)?;
    npy::write(&args.out, &q.shape, &o)?;
    if let Some(path) = &args.lse {
        npy::write(path, &[b, hq, sq], &lse)?;
    }
    Ok(())
}

/// Converts a mask tensor to the `i32` the mask stores, refusing values out of range.
fn to_i32(path: &Path, name: &str, data: Vec<i64>) -> CliResult<Vec<i32>> {
    data.into_iter()
        .map(i32::try_from)
        .collect::<Result<_, _>>()
        .map_err(|_| {
            CliError::Usage(format!(
                "{}: {name} has values beyond int32",
                path.display()
            ))
        })
}

fn read_mask(path: &Path, args: &AttentionArgs, sq: usize, skv: usize) -> CliResult<BlockMask> {
    let required = |name: &str| -> CliResult<Array<i64>> {
        npy::read_npz_ints(path, name)?
            .ok_or_else(|| CliError::Usage(format!("{}: no array `{name}`", path.display())))
    };
    let num = required("kv_num_blocks")?;
    let idx = required("kv_indices")?;
    let [bm, hm] = match num.shape.as_slice() {
        [bm, hm, _] => [*bm, *hm],
        other => {
            return Err(CliError::Usage(format!(
                "{}: kv_num_blocks has shape {other:?}, expected [B, H, QB]",
                path.display()
            )))
        }
    };
    let block = match npy::read_npz_ints(path, "block_size")? {
        Some(Array { data, .. }) if data.len() == 2 => {
            let size = |x: i64| usize::try_from(x).unwrap_or(0);
            (size(data[0]), size(data[1]))
        }
        Some(_) => {
            return Err(CliError::Usage(format!(
                "{}: block_size must hold two numbers [BQ, BK]",
                path.display()
            )))
        }
        None => (args.block, args.block),
    };
    let full = match (
        npy::read_npz_ints(path, "full_kv_num_blocks")?,
        npy::read_npz_ints(path, "full_kv_indices")?,
    ) {
        (Some(n), Some(i)) => Some((
            to_i32(path, "full_kv_num_blocks", n.data)?,
            to_i32(path, "full_kv_indices", i.data)?,
        )),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(format!(
                "{}: full_kv_num_blocks and full_kv_indices come together",
                path.display()
            )))
        }
    };
    let predicate = match args.predicate {
        PredicateArg::None => MaskPredicate::None,
        PredicateArg::Causal => MaskPredicate::Causal,
    };
    Ok(BlockMask::from_parts(BlockMaskParts {
        seq_q: sq,
        seq_kv: skv,
        block,
        batch: bm,
        heads: hm,
        kv_num_blocks: to_i32(path, "kv_num_blocks", num.data)?,
        kv_indices: to_i32(path, "kv_indices", idx.data)?,
        full,
        predicate,
    })?)
}
