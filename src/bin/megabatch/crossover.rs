//! Where each GPU backend starts beating the CPU, read off the cost model.

use megabatch::{AttentionSpec, Auto, BackendKind, BlockMask, EighSpec, Residency};
use serde_json::json;

use crate::table::Table;

/// Sequence lengths at which the attention crossover is reported (dense masks of 64 x 64
/// blocks, batch 1, 8 heads).
const ATTENTION_SEQS: [usize; 8] = [64, 128, 256, 512, 1024, 2048, 4096, 8192];

/// The model's decision for a dense attention call of `dtype` on host tensors.
fn attention_decision(
    auto: &Auto,
    dtype: &str,
    head_dim: usize,
    seq: usize,
) -> megabatch::Result<megabatch::cost::Decision> {
    let spec = AttentionSpec::self_attention(8, seq, head_dim);
    let mask = BlockMask::dense(seq, seq, (64, 64))?;
    match dtype {
        "f32" => auto.explain_attention::<f32>(&spec, &mask, Residency::Host),
        "f16" => auto.explain_attention::<half::f16>(&spec, &mask, Residency::Host),
        _ => auto.explain_attention::<half::bf16>(&spec, &mask, Residency::Host),
    }
}

/// Batches at which the eigh crossover order is reported.
pub const EIGH_BATCHES: [usize; 6] = [1, 16, 256, 4096, 65_536, 1_048_576];
const MAX_ORDER: usize = 512;

/// `xs` where `wins` holds, as maximal runs "a-b" (or "a" alone), comma-separated.
fn runs(xs: &[usize], wins: impl Fn(usize) -> bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for &x in xs {
        match (wins(x), start) {
            (true, None) => start = Some((x, x)),
            (true, Some((a, _))) => start = Some((a, x)),
            (false, Some((a, b))) => {
                out.push(if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                });
                start = None;
            }
            (false, None) => {}
        }
    }
    if let Some((a, b)) = start {
        let last = *xs.last().unwrap_or(&b);
        out.push(match (a == b, b == last) {
            (true, false) => a.to_string(),
            (_, true) => format!(">={a}"),
            (false, false) => format!("{a}-{b}"),
        });
    }
    if out.is_empty() {
        "never".into()
    } else {
        out.join(", ")
    }
}

fn wins(decision: &megabatch::cost::Decision, gpu: BackendKind) -> bool {
    let seconds = |kind| {
        decision
            .predictions
            .iter()
            .find(|p| p.backend == kind)
            .and_then(|p| p.seconds)
    };
    match (seconds(gpu), seconds(BackendKind::Cpu)) {
        (Some(g), Some(c)) => g < c,
        _ => false,
    }
}

/// The crossover table: for every GPU backend, operation, dtype and data placement, the sizes
/// at which the model predicts the GPU faster than the CPU.
pub fn table(auto: &Auto) -> Table {
    let mut table = Table::new(vec![
        "op",
        "dtype",
        "data",
        "batch",
        "backend",
        "gpu_faster_for",
    ]);
    let gpus: Vec<BackendKind> = auto
        .backends()
        .into_iter()
        .filter(|&k| k != BackendKind::Cpu)
        .collect();
    let orders: Vec<usize> = (1..=MAX_ORDER).collect();
    let lens: Vec<usize> = (6..=31).map(|p| 1usize << p).collect();
    for &gpu in &gpus {
        for residency in [Residency::Host, Residency::Device(gpu)] {
            let data = match residency {
                Residency::Host => "host",
                Residency::Device(_) => "device",
            };
            for dtype in ["f32", "f64"] {
                for batch in EIGH_BATCHES {
                    let sizes = runs(&orders, |n| {
                        let spec = EighSpec::uniform(n, batch).with_vectors(true);
                        let d = match dtype {
                            "f32" => auto.explain_eigh::<f32>(&spec, residency),
                            _ => auto.explain_eigh::<f64>(&spec, residency),
                        };
                        wins(&d, gpu)
                    });
                    table.push(vec![
                        json!("eigh"),
                        json!(dtype),
                        json!(data),
                        json!(batch),
                        json!(gpu.name()),
                        json!(format!("n {sizes}")),
                    ]);
                }
            }
            for dtype in ["f32", "f64", "f16", "bf16"] {
                let sizes = runs(&lens, |len| {
                    let spec = megabatch::ReduceSpec::Full {
                        op: megabatch::ReduceOp::Sum,
                        len,
                    };
                    let d = match dtype {
                        "f32" => auto.explain_reduce::<f32>(&spec, residency),
                        "f64" => auto.explain_reduce::<f64>(&spec, residency),
                        "f16" => auto.explain_reduce::<half::f16>(&spec, residency),
                        _ => auto.explain_reduce::<half::bf16>(&spec, residency),
                    };
                    d.is_ok_and(|d| wins(&d, gpu))
                });
                table.push(vec![
                    json!("reduce"),
                    json!(dtype),
                    json!(data),
                    json!(1),
                    json!(gpu.name()),
                    json!(format!("len {sizes}")),
                ]);
            }
        }
        for dtype in ["f32", "f16", "bf16"] {
            for head_dim in [64, 128] {
                let sizes = runs(&ATTENTION_SEQS, |seq| {
                    let d = attention_decision(auto, dtype, head_dim, seq);
                    d.is_ok_and(|d| wins(&d, gpu))
                });
                table.push(vec![
                    json!("attention"),
                    json!(dtype),
                    json!("host"),
                    json!(1),
                    json!(gpu.name()),
                    json!(format!("D{head_dim} dense, 8 heads, seq {sizes}")),
                ]);
            }
        }
    }
    table
}
