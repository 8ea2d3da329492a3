//! `megabatch bench`: timings per backend, and the regret sweep of `Auto`'s decisions.

use half::{bf16, f16};
use megabatch::{
    AttentionSpec, Auto, BackendKind, BlockMask, EighSpec, ReduceOp, ReduceSpec, Residency,
};
use serde_json::json;

use crate::ops::{op_name, parse_op};
use crate::progress::Progress;
use crate::regret;
use crate::table::Table;
use crate::timing::{arg_name, auto_for, backends_to_run, time_attention, time_eigh, time_reduce};
use crate::values::positive_finite;
use crate::{BackendArg, CliError, CliResult, Format};

/// Options every bench takes.
#[derive(clap::Args, Clone)]
pub struct Common {
    /// Backends to time, comma-separated [default: every backend this machine has, then auto].
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<BackendArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Seconds of repeated calls per case (the median call is reported), finite and > 0.
    #[arg(long, default_value_t = 0.2, value_parser = positive_finite::<f64>, allow_negative_numbers = true)]
    min_time: f64,
    /// Keep the data in the backend's own memory between calls (GPU-resident) instead of
    /// passing host arrays each call.
    #[arg(long)]
    resident: bool,
}

/// Dtypes of eigh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RealArg {
    F32,
    F64,
}

/// Dtypes of reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReduceDtype {
    F32,
    F64,
    F16,
    Bf16,
}

/// Dtypes of attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttentionDtype {
    F32,
    F16,
    Bf16,
}

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Batched eigh, values and vectors: matrices per second.
    Eigh {
        #[command(flatten)]
        common: Common,
        /// Matrix orders.
        #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64")]
        n: Vec<usize>,
        /// Batch sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,1024,16384")]
        batch: Vec<usize>,
        /// Element types.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "f64")]
        dtype: Vec<RealArg>,
        /// Eigenvalues only.
        #[arg(long)]
        values_only: bool,
    },
    /// Whole-array reductions with the scalar read back: GB/s of input.
    Reduce {
        #[command(flatten)]
        common: Common,
        /// Array lengths.
        #[arg(long, value_delimiter = ',', default_value = "1000,1000000,100000000")]
        len: Vec<usize>,
        /// Input types.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "f32")]
        dtype: Vec<ReduceDtype>,
        /// Operation: sum, mean, min, max, max-abs, dot, max-abs-diff or max-rel-diff.
        #[arg(long, value_parser = parse_op, default_value = "sum")]
        op: ReduceOp,
    },
    /// Block-sparse attention, B = 1: TFLOP/s on kept blocks.
    Attention {
        #[command(flatten)]
        common: Common,
        /// Sequence lengths (Sq = Skv).
        #[arg(long, value_delimiter = ',', default_value = "256,1024")]
        seq: Vec<usize>,
        /// Query heads (= key/value heads).
        #[arg(long, default_value_t = 8)]
        heads: usize,
        /// Head dimension.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Causal mask instead of dense.
        #[arg(long)]
        causal: bool,
        /// Element types.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "f16")]
        dtype: Vec<AttentionDtype>,
    },
    /// Auto's time over the best backend's on a grid of sizes (run `megabatch calibrate`
    /// first: Auto uses the saved calibration).
    Regret(regret::RegretArgs),
}

/// Runs `megabatch bench`.
pub fn run(command: BenchCommand) -> CliResult {
    match command {
        BenchCommand::Eigh {
            common,
            n,
            batch,
            dtype,
            values_only,
        } => bench_eigh(&common, &n, &batch, &dtype, values_only),
        BenchCommand::Reduce {
            common,
            len,
            dtype,
            op,
        } => bench_reduce(&common, &len, &dtype, op),
        BenchCommand::Attention {
            common,
            seq,
            heads,
            dim,
            causal,
            dtype,
        } => bench_attention(&common, &seq, heads, dim, causal, &dtype),
        BenchCommand::Regret(args) => regret::run(&args),
    }
}

/// The backends with their `Auto`s, and where their data lives.
fn setups(common: &Common) -> CliResult<Vec<(BackendArg, Auto, Residency)>> {
    let base = Auto::new()?;
    backends_to_run(&base, &common.backend)?
        .into_iter()
        .map(|arg| {
            let auto = auto_for(&base, arg)?;
            let residency = match (common.resident, auto.forced()) {
                (false, _) => Residency::Host,
                (true, Some(kind)) if kind != BackendKind::Cpu => Residency::Device(kind),
                (true, Some(_)) => Residency::Host,
                // Auto with resident data: on its first GPU, if it has one.
                (true, None) => auto
                    .backends()
                    .into_iter()
                    .find(|&k| k != BackendKind::Cpu)
                    .map_or(Residency::Host, Residency::Device),
            };
            Ok((arg, auto, residency))
        })
        .collect()
}

fn data_name(residency: Residency) -> &'static str {
    match residency {
        Residency::Host => "host",
        Residency::Device(kind) => kind.name(),
    }
}

fn bench_eigh(
    common: &Common,
    orders: &[usize],
    batches: &[usize],
    dtypes: &[RealArg],
    values_only: bool,
) -> CliResult {
    let setups = setups(common)?;
    let mut table = Table::new(vec![
        "backend",
        "ran_on",
        "data",
        "dtype",
        "n",
        "batch",
        "seconds",
        "matrices_per_s",
    ]);
    let mut bar = Progress::new(
        "bench eigh",
        setups.len() * orders.len() * batches.len() * dtypes.len(),
    );
    for &dtype in dtypes {
        for &n in orders {
            for &batch in batches {
                for (arg, auto, residency) in &setups {
                    let spec = EighSpec::uniform(n, batch).with_vectors(!values_only);
                    bar.start(format!(
                        "{} {} n = {n} batch = {batch}",
                        arg_name(*arg),
                        format!("{dtype:?}").to_lowercase()
                    ));
                    let (seconds, ran_on) = match dtype {
                        RealArg::F32 => time_eigh::<f32>(auto, &spec, *residency, common.min_time),
                        RealArg::F64 => time_eigh::<f64>(auto, &spec, *residency, common.min_time),
                    }?;
                    table.push(vec![
                        json!(arg_name(*arg)),
                        json!(ran_on.name()),
                        json!(data_name(*residency)),
                        json!(format!("{dtype:?}").to_lowercase()),
                        json!(n),
                        json!(batch),
                        json!(seconds),
                        json!(batch as f64 / seconds),
                    ]);
                    bar.done();
                }
            }
        }
    }
    bar.finish();
    table.print(common.format)
}

fn bench_reduce(
    common: &Common,
    lens: &[usize],
    dtypes: &[ReduceDtype],
    op: ReduceOp,
) -> CliResult {
    let setups = setups(common)?;
    let mut table = Table::new(vec![
        "backend", "ran_on", "data", "dtype", "op", "len", "seconds", "gb_per_s",
    ]);
    let mut bar = Progress::new(
        format!("bench reduce {}", op_name(op)),
        setups.len() * lens.len() * dtypes.len(),
    );
    for &dtype in dtypes {
        for &len in lens {
            let spec = ReduceSpec::Full { op, len };
            for (arg, auto, residency) in &setups {
                bar.start(format!(
                    "{} {} len = {len}",
                    arg_name(*arg),
                    format!("{dtype:?}").to_lowercase()
                ));
                let (r, m) = (*residency, common.min_time);
                let (seconds, ran_on) = match dtype {
                    ReduceDtype::F32 => time_reduce::<f32>(auto, &spec, r, m),
                    ReduceDtype::F64 => time_reduce::<f64>(auto, &spec, r, m),
                    ReduceDtype::F16 => time_reduce::<f16>(auto, &spec, r, m),
                    ReduceDtype::Bf16 => time_reduce::<bf16>(auto, &spec, r, m),
                }?;
                let elem = match dtype {
                    ReduceDtype::F64 => 8,
                    ReduceDtype::F32 => 4,
                    _ => 2,
                };
                let operands = if op.takes_y() { 2 } else { 1 };
                table.push(vec![
                    json!(arg_name(*arg)),
                    json!(ran_on.name()),
                    json!(data_name(r)),
                    json!(format!("{dtype:?}").to_lowercase()),
                    json!(op_name(op)),
                    json!(len),
                    json!(seconds),
                    json!((operands * elem * len) as f64 / seconds / 1e9),
                ]);
                bar.done();
            }
        }
    }
    bar.finish();
    table.print(common.format)
}

fn bench_attention(
    common: &Common,
    seqs: &[usize],
    heads: usize,
    dim: usize,
    causal: bool,
    dtypes: &[AttentionDtype],
) -> CliResult {
    if common.resident {
        return Err(CliError::Usage(
            "attention takes host tensors only (no GPU attention kernel yet)".into(),
        ));
    }
    let setups = setups(common)?;
    let mut table = Table::new(vec![
        "backend",
        "ran_on",
        "dtype",
        "seq",
        "heads",
        "dim",
        "mask",
        "seconds",
        "tflop_per_s",
    ]);
    let mut bar = Progress::new("bench attention", setups.len() * seqs.len() * dtypes.len());
    for &dtype in dtypes {
        for &seq in seqs {
            let spec = AttentionSpec::self_attention(heads, seq, dim);
            let block = (64, 64);
            let mask = match causal {
                true => BlockMask::causal(seq, seq, block)?,
                false => BlockMask::dense(seq, seq, block)?,
            };
            let flops = 4.0 * (64 * 64 * dim) as f64 * mask.kept_blocks(1, heads) as f64;
            for (arg, auto, _) in &setups {
                bar.start(format!(
                    "{} {} seq = {seq}",
                    arg_name(*arg),
                    format!("{dtype:?}").to_lowercase()
                ));
                let m = common.min_time;
                let (seconds, ran_on) = match dtype {
                    AttentionDtype::F32 => time_attention::<f32>(auto, &spec, &mask, m),
                    AttentionDtype::F16 => time_attention::<f16>(auto, &spec, &mask, m),
                    AttentionDtype::Bf16 => time_attention::<bf16>(auto, &spec, &mask, m),
                }?;
                table.push(vec![
                    json!(arg_name(*arg)),
                    json!(ran_on.name()),
                    json!(format!("{dtype:?}").to_lowercase()),
                    json!(seq),
                    json!(heads),
                    json!(dim),
                    json!(if causal { "causal" } else { "dense" }),
                    json!(seconds),
                    json!(flops / seconds / 1e12),
                ]);
                bar.done();
            }
        }
    }
    bar.finish();
    table.print(common.format)
}
