//! The regret sweep: on a grid of sizes, every backend and `Auto` are timed on the same call,
//! and Auto's time over the best backend's is reported (1.0 = Auto picked the fastest).

use half::f16;
use megabatch::{
    AttentionSpec, Auto, BackendKind, BlockMask, EighSpec, ReduceOp, ReduceSpec, Residency,
};
use serde_json::json;

use crate::progress::Progress;
use crate::table::Table;
use crate::timing::{auto_for, backends_to_run, time_attention, time_eigh, time_reduce};
use crate::values::positive_finite;
use crate::{BackendArg, CliResult, Format};

/// Arguments of `megabatch bench regret`.
#[derive(clap::Args)]
pub struct RegretArgs {
    /// A small grid (about a tenth of the cases).
    #[arg(long)]
    quick: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Seconds of repeated calls per case, backend and round, finite and > 0.
    #[arg(long, default_value_t = 0.05, value_parser = positive_finite::<f64>, allow_negative_numbers = true)]
    min_time: f64,
    /// Rounds per case: every backend and Auto are timed once per round, in turn, and each
    /// one's median over the rounds is reported, so drifts of a shared machine hit all alike.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// One point of the grid.
enum Case {
    Eigh {
        dtype: &'static str,
        n: usize,
        batch: usize,
    },
    Reduce {
        dtype: &'static str,
        len: usize,
        residency: Residency,
    },
    Attention {
        dtype: &'static str,
        seq: usize,
    },
}

/// Largest `n^3 * batch` in the eigh grid: keeps the slowest CPU case near a second.
const EIGH_WORK_CAP: f64 = 2.2e9;

fn grid(quick: bool, gpu: Option<BackendKind>) -> Vec<Case> {
    let (orders, batches, lens): (&[usize], &[usize], &[usize]) = if quick {
        (&[4, 16, 64], &[1, 1024, 16_384], &[1_000, 10_000_000])
    } else {
        (
            &[4, 8, 12, 16, 24, 32, 48, 64, 128],
            &[1, 64, 1024, 16_384, 131_072],
            &[1_000, 100_000, 1_000_000, 10_000_000, 100_000_000],
        )
    };
    let mut cases = Vec::new();
    for dtype in ["f32", "f64"] {
        for &n in orders {
            for &batch in batches {
                if (n as f64).powi(3) * batch as f64 <= EIGH_WORK_CAP {
                    cases.push(Case::Eigh { dtype, n, batch });
                }
            }
        }
    }
    let mut placements = vec![Residency::Host];
    placements.extend(gpu.map(Residency::Device));
    for dtype in ["f32", "f64"] {
        for &residency in &placements {
            for &len in lens {
                cases.push(Case::Reduce {
                    dtype,
                    len,
                    residency,
                });
            }
        }
    }
    let (attention_dtypes, seqs): (&[&str], &[usize]) = if quick {
        (&["f16"], &[256, 1024])
    } else {
        (&["f32", "f16"], &[128, 512, 2048])
    };
    for &dtype in attention_dtypes {
        for &seq in seqs {
            cases.push(Case::Attention { dtype, seq });
        }
    }
    cases
}

/// Median seconds of `case` on `auto`, and the backend that ran it.
fn time_case(auto: &Auto, case: &Case, min_s: f64) -> CliResult<(f64, BackendKind)> {
    match *case {
        Case::Eigh { dtype, n, batch } => {
            let spec = EighSpec::uniform(n, batch).with_vectors(true);
            match dtype {
                "f32" => time_eigh::<f32>(auto, &spec, Residency::Host, min_s),
                _ => time_eigh::<f64>(auto, &spec, Residency::Host, min_s),
            }
        }
        Case::Reduce {
            dtype,
            len,
            residency,
        } => {
            let spec = ReduceSpec::Full {
                op: ReduceOp::Sum,
                len,
            };
            match dtype {
                "f32" => time_reduce::<f32>(auto, &spec, residency, min_s),
                _ => time_reduce::<f64>(auto, &spec, residency, min_s),
            }
        }
        Case::Attention { dtype, seq } => {
            let spec = AttentionSpec::self_attention(8, seq, 64);
            let mask = BlockMask::dense(seq, seq, (64, 64))?;
            match dtype {
                "f32" => time_attention::<f32>(auto, &spec, &mask, min_s),
                _ => time_attention::<f16>(auto, &spec, &mask, min_s),
            }
        }
    }
}

fn describe(case: &Case) -> (&'static str, &'static str, String, String) {
    match case {
        Case::Eigh { dtype, n, batch } => (
            "eigh",
            *dtype,
            "host".into(),
            format!("n={n} batch={batch}"),
        ),
        Case::Reduce {
            dtype,
            len,
            residency,
        } => {
            let data = match residency {
                Residency::Host => "host".into(),
                Residency::Device(k) => k.name().to_string(),
            };
            ("reduce", *dtype, data, format!("len={len}"))
        }
        Case::Attention { dtype, seq } => (
            "attention",
            *dtype,
            "host".into(),
            format!("B1 H8 S{seq} D64 dense"),
        ),
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs `megabatch bench regret`.
pub fn run(args: &RegretArgs) -> CliResult {
    let auto = Auto::new()?;
    eprintln!(
        "cost model: {:?} for {}",
        auto.model().source,
        auto.machine_key()
    );
    let fixed: Vec<(BackendKind, Auto)> = backends_to_run(&auto, &[])?
        .into_iter()
        .filter(|&a| a != BackendArg::Auto)
        .map(|arg| {
            let a = auto_for(&auto, arg)?;
            Ok((a.forced().unwrap_or(BackendKind::Cpu), a))
        })
        .collect::<CliResult<_>>()?;
    let gpu = fixed
        .iter()
        .map(|(k, _)| *k)
        .find(|&k| k != BackendKind::Cpu);
    let cases = grid(args.quick, gpu);
    let mut columns = vec!["op", "dtype", "data", "size"];
    let names: Vec<&'static str> = fixed.iter().map(|(k, _)| k.name()).collect();
    columns.extend(names.iter().map(|n| match *n {
        "cpu" => "cpu_s",
        "cuda" => "cuda_s",
        _ => "wgpu_s",
    }));
    columns.extend(["auto_s", "auto_ran_on", "best", "regret"]);
    let mut table = Table::new(columns);
    let mut regrets: Vec<(&'static str, f64)> = Vec::new();
    let mut bar = Progress::new("bench regret", cases.len());
    for case in &cases {
        let (op, dtype, data, size) = describe(case);
        bar.start(format!("{op} {dtype} {data} {size}"));
        let mut row = vec![json!(op), json!(dtype), json!(data), json!(size)];
        // Index len(fixed) is Auto; None marks a backend that cannot run the case.
        let mut times: Vec<Option<Vec<f64>>> = vec![Some(Vec::new()); fixed.len() + 1];
        let mut ran_on = BackendKind::Cpu;
        for _ in 0..args.rounds.max(1) {
            for (i, slot) in times.iter_mut().enumerate() {
                let Some(samples) = slot else { continue };
                let runner = fixed.get(i).map_or(&auto, |(_, a)| a);
                match time_case(runner, case, args.min_time) {
                    Ok((t, on)) => {
                        samples.push(t);
                        if i == fixed.len() {
                            ran_on = on;
                        }
                    }
                    // A backend without this operation or size does not compete.
                    Err(crate::CliError::Megabatch(megabatch::Error::Unsupported { .. }))
                        if i < fixed.len() =>
                    {
                        *slot = None
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let medians: Vec<Option<f64>> = times
            .iter()
            .map(|t| {
                t.as_ref().map(|t| {
                    let mut t = t.clone();
                    t.sort_by(f64::total_cmp);
                    t[t.len() / 2]
                })
            })
            .collect();
        let mut best: Option<(f64, BackendKind)> = None;
        for ((kind, _), t) in fixed.iter().zip(&medians) {
            row.push(json!(t));
            if let Some(t) = *t {
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, *kind));
                }
            }
        }
        let t_auto = medians[fixed.len()].unwrap_or(f64::NAN);
        let (t_best, best_kind) = best.unwrap_or((t_auto, ran_on));
        let regret = t_auto / t_best;
        regrets.push((op, regret));
        row.extend([
            json!(t_auto),
            json!(ran_on.name()),
            json!(best_kind.name()),
            json!(regret),
        ]);
        table.push(row);
        bar.done();
    }
    bar.finish();
    table.print(args.format)?;
    let mut summary = Table::new(vec![
        "op",
        "cases",
        "median_regret",
        "p90_regret",
        "worst_regret",
    ]);
    for op in ["eigh", "reduce", "attention", "all"] {
        let mut r: Vec<f64> = regrets
            .iter()
            .filter(|(o, _)| op == "all" || *o == op)
            .map(|(_, r)| *r)
            .collect();
        if r.is_empty() {
            continue;
        }
        r.sort_by(f64::total_cmp);
        summary.push(vec![
            json!(op),
            json!(r.len()),
            json!(quantile(&r, 0.5)),
            json!(quantile(&r, 0.9)),
            json!(r[r.len() - 1]),
        ]);
    }
    if args.format == Format::Table {
        println!();
    }
    summary.print(args.format)
}
