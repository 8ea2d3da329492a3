//! megabatch's CUDA block-sparse attention: TFLOP/s over the shapes and mask densities,
//! the CTA schedules compared, and queries/s of many small requests from 8 threads. Writes
//! every mask's four FlexAttention tensors to `--masks DIR` (raw little-endian int32, shapes in
//! `DIR/cases.jsonl`) so `benches/attention_peers.py` runs FlexAttention on the identical
//! masks; prints one JSON object per line (`benches/attention_table.py` joins both).
//!
//! Usage: `cargo bench --features cuda --bench attention_cuda -- [--masks DIR] [--qps SECONDS]
//! [--quick]`. Timing: device-resident Q/K/V/O/LSE, one warm-up call, then calls repeated until
//! 0.3 s have passed, synchronised every 8 calls and at the end (`benches/common`); the figure
//! is the mean per call. FLOPs are counted on kept blocks: 4 BQ BK D per kept block per
//! (batch, head).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::time_loop;
use megabatch::backends::cuda::{
    AttentionKernel, AttentionOptions, AttentionSchedule, Cuda, CudaBuffer,
};
use megabatch::{
    AttentionElement, AttentionSpec, Backend, BlockMask, BlockMaskParts, MaskPredicate,
    SparseAttention,
};

const BLOCK: usize = 128;

/// A mask's FlexAttention tensors for one (batch, head) (broadcast over both).
struct MaskTensors {
    kv_num_blocks: Vec<i32>,
    kv_indices: Vec<i32>,
    full_num: Vec<i32>,
    full_indices: Vec<i32>,
    predicate: MaskPredicate,
}

/// `density` 1.0: every block full; 0.5: causal (diagonal blocks partial under the causal
/// predicate, the rest of the lower triangle full); otherwise the diagonal plus random blocks
/// with probability `density`, all full. `exact_kept` instead keeps exactly that many blocks
/// (the diagonal first, then random ones).
fn mask_tensors(s: usize, density: f64, exact_kept: Option<usize>, seed: u64) -> MaskTensors {
    let nb = s.div_ceil(BLOCK);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keep = vec![false; nb * nb];
    let causal = exact_kept.is_none() && density == 0.5;
    match exact_kept {
        Some(n) => {
            for i in 0..nb {
                keep[i * nb + i] = true;
            }
            let mut left = n.saturating_sub(nb);
            while left > 0 {
                let c = rng.random_range(0..nb * nb);
                if !keep[c] {
                    keep[c] = true;
                    left -= 1;
                }
            }
        }
        None => {
            for q in 0..nb {
                for k in 0..nb {
                    keep[q * nb + k] = if density >= 1.0 {
                        true
                    } else if causal {
                        k <= q
                    } else {
                        k == q || rng.random::<f64>() < density
                    };
                }
            }
        }
    }
    let mut t = MaskTensors {
        kv_num_blocks: vec![0; nb],
        kv_indices: vec![0; nb * nb],
        full_num: vec![0; nb],
        full_indices: vec![0; nb * nb],
        predicate: if causal {
            MaskPredicate::Causal
        } else {
            MaskPredicate::None
        },
    };
    for q in 0..nb {
        for k in 0..nb {
            if !keep[q * nb + k] {
                continue;
            }
            if causal && k == q {
                t.kv_indices[q * nb + t.kv_num_blocks[q] as usize] = k as i32;
                t.kv_num_blocks[q] += 1;
            } else {
                t.full_indices[q * nb + t.full_num[q] as usize] = k as i32;
                t.full_num[q] += 1;
            }
        }
    }
    t
}

fn block_mask(s: usize, t: &MaskTensors) -> BlockMask {
    BlockMask::from_parts(BlockMaskParts {
        seq_q: s,
        seq_kv: s,
        block: (BLOCK, BLOCK),
        batch: 1,
        heads: 1,
        kv_num_blocks: t.kv_num_blocks.clone(),
        kv_indices: t.kv_indices.clone(),
        full: Some((t.full_num.clone(), t.full_indices.clone())),
        predicate: t.predicate.clone(),
    })
    .expect("bench masks are valid")
}

fn write_i32(path: &std::path::Path, data: &[i32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write mask tensor");
}

fn random_buffer<T: AttentionElement>(cuda: &Cuda, len: usize, seed: u64) -> CudaBuffer<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let host: Vec<T> = (0..len)
        .map(|_| T::from_f32(rng.random::<f32>() * 2.0 - 1.0))
        .collect();
    let mut b = cuda.alloc::<T>(len).expect("alloc");
    cuda.upload(&host, &mut b).expect("upload");
    b
}

struct Operands<T> {
    q: CudaBuffer<T>,
    k: CudaBuffer<T>,
    v: CudaBuffer<T>,
    o: CudaBuffer<T>,
    lse: CudaBuffer<f32>,
}

fn operands<T: AttentionElement>(cuda: &Cuda, spec: &AttentionSpec, seed: u64) -> Operands<T> {
    let (ql, kvl, ll) = spec.lens().expect("spec");
    Operands {
        q: random_buffer(cuda, ql, seed),
        k: random_buffer(cuda, kvl, seed + 1),
        v: random_buffer(cuda, kvl, seed + 2),
        o: cuda.alloc(ql).expect("alloc"),
        lse: cuda.alloc(ll).expect("alloc"),
    }
}

/// Mean seconds per call of `plan` on `x`.
fn time_attention<T: AttentionElement>(
    cuda: &Cuda,
    spec: &AttentionSpec,
    mask: &BlockMask,
    options: AttentionOptions,
    x: &mut Operands<T>,
    budget: Duration,
) -> f64 {
    let mut plan = cuda
        .plan_attention_device::<T>(spec, mask, options)
        .expect("plan");
    time_loop(
        budget,
        || {
            cuda.attention(&mut plan, &x.q, &x.k, &x.v, &mut x.o, Some(&mut x.lse))
                .expect("attention");
        },
        || cuda.synchronize().expect("sync"),
    )
}

struct Shape {
    b: usize,
    h: usize,
    s: usize,
    d: usize,
}

#[allow(clippy::too_many_arguments)]
fn run_case<T: AttentionElement>(
    cuda: &Cuda,
    shape: &Shape,
    density: f64,
    mask: &BlockMask,
    case: &str,
    budget: Duration,
    schedules: &[AttentionSchedule],
) {
    let spec = AttentionSpec {
        batch: shape.b,
        heads_q: shape.h,
        heads_kv: shape.h,
        seq_q: shape.s,
        seq_kv: shape.s,
        head_dim: shape.d,
        scale: None,
    };
    let kept = mask.kept_blocks(shape.b, shape.h);
    let flops = 4.0 * (BLOCK * BLOCK * shape.d) as f64 * kept as f64;
    let mut x = operands::<T>(cuda, &spec, 11);
    for &schedule in schedules {
        let options = AttentionOptions {
            schedule,
            ..AttentionOptions::default()
        };
        let secs = time_attention(cuda, &spec, mask, options, &mut x, budget);
        println!(
            "{{\"lib\":\"megabatch\",\"case\":\"{case}\",\"dtype\":\"{}\",\"B\":{},\"H\":{},\
             \"S\":{},\"D\":{},\"density\":{density},\"kept_blocks\":{kept},\
             \"schedule\":\"{schedule:?}\",\"seconds\":{secs:.6e},\"tflops\":{:.2}}}",
            T::DTYPE,
            shape.b,
            shape.h,
            shape.s,
            shape.d,
            flops / secs / 1e12
        );
    }
}

/// 8 threads, one plan and one set of device buffers each, each query B1 H1 S4096 D64 f16
/// with 800 kept 128 x 128 blocks, each call synchronised on its own stream.
fn queries_per_second(cuda: &Cuda, seconds: f64) {
    let s = 4096;
    let t = mask_tensors(s, 0.0, Some(800), 99);
    let mask = block_mask(s, &t);
    let spec = AttentionSpec {
        batch: 1,
        heads_q: 1,
        heads_kv: 1,
        seq_q: s,
        seq_kv: s,
        head_dim: 64,
        scale: None,
    };
    let threads = 8;
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (cuda, mask, spec) = (cuda.clone(), &mask, &spec);
                scope.spawn(move || {
                    let mut plan = cuda
                        .plan_attention_device::<f16>(spec, mask, AttentionOptions::default())
                        .expect("plan");
                    let mut x = operands::<f16>(&cuda, spec, 100 + i as u64);
                    let mut n = 0u64;
                    while Instant::now() < stop {
                        cuda.attention(&mut plan, &x.q, &x.k, &x.v, &mut x.o, Some(&mut x.lse))
                            .expect("attention");
                        cuda.synchronize_plan(&plan).expect("sync");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let total: u64 = counts.iter().sum();
    let kept = mask.kept_blocks(1, 1);
    let gflop = 4.0 * (BLOCK * BLOCK * 64) as f64 * kept as f64 / 1e9;
    println!(
        "{{\"lib\":\"megabatch\",\"case\":\"qps\",\"threads\":{threads},\"seconds\":{seconds},\
         \"queries\":{total},\"qps\":{:.0},\"gflop_per_query\":{gflop:.3},\"tflops\":{:.2},\
         \"per_thread\":{counts:?}}}",
        total as f64 / seconds,
        total as f64 * gflop / seconds / 1e3
    );
}

/// Tile shapes against each other (f16, B4 H16 S4096, dense and density 0.05).
fn tune(cuda: &Cuda, budget: Duration) {
    let tiles: &[(usize, usize, usize)] = &[
        (4, 2, 64),
        (4, 2, 32),
        (4, 1, 64),
        (4, 1, 128),
        (8, 1, 64),
        (8, 1, 128),
        (8, 1, 32),
        (4, 2, 128),
    ];
    for d in [64, 128, 256] {
        let spec = AttentionSpec {
            batch: 4,
            heads_q: 16,
            heads_kv: 16,
            seq_q: 4096,
            seq_kv: 4096,
            head_dim: d,
            scale: None,
        };
        let mut x = operands::<f16>(cuda, &spec, 5);
        for density in [1.0, 0.05] {
            let mask = block_mask(4096, &mask_tensors(4096, density, None, 4096));
            let flops = 4.0 * (BLOCK * BLOCK * d) as f64 * mask.kept_blocks(4, 16) as f64;
            for &(warps, m_tiles, kv_tile) in tiles {
                let kernel = AttentionKernel {
                    dtype: "f16",
                    head_dim: d,
                    warps,
                    m_tiles,
                    kv_tile,
                };
                let options = AttentionOptions {
                    kernel: Some(kernel),
                    ..AttentionOptions::default()
                };
                if cuda
                    .plan_attention_device::<f16>(&spec, &mask, options)
                    .is_err()
                {
                    continue;
                }
                let secs = time_attention(cuda, &spec, &mask, options, &mut x, budget);
                println!(
                    "{{\"lib\":\"megabatch\",\"case\":\"tune\",\"D\":{d},\"density\":{density},\
                     \"warps\":{warps},\"m_tiles\":{m_tiles},\"kv_tile\":{kv_tile},\
                     \"tflops\":{:.1}}}",
                    flops / secs / 1e12
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let quick = args.iter().any(|a| a == "--quick");
    let masks_dir = std::path::PathBuf::from(
        value("--masks").unwrap_or_else(|| "target/attention-masks".into()),
    );
    let qps_seconds: f64 = value("--qps").map_or(30.0, |v| v.parse().expect("--qps SECONDS"));
    let budget = Duration::from_secs_f64(if quick { 0.1 } else { 0.3 });
    let cuda = Cuda::new().expect("a CUDA device");
    eprintln!("device: {:?}", cuda.info());
    if args.iter().any(|a| a == "--tune") {
        tune(&cuda, budget);
        return;
    }
    std::fs::create_dir_all(&masks_dir).expect("masks dir");
    let mut cases = std::fs::File::create(masks_dir.join("cases.jsonl")).expect("cases.jsonl");
    let shapes = [
        Shape {
            b: 1,
            h: 8,
            s: 4096,
            d: 64,
        },
        Shape {
            b: 4,
            h: 16,
            s: 4096,
            d: 64,
        },
        Shape {
            b: 1,
            h: 8,
            s: 16384,
            d: 64,
        },
        Shape {
            b: 4,
            h: 16,
            s: 4096,
            d: 128,
        },
    ];
    let both = [AttentionSchedule::LongestFirst, AttentionSchedule::Natural];
    let mut jobs: Vec<(Shape, f64)> = Vec::new();
    for shape in shapes {
        for density in [1.0, 0.5, 0.2, 0.05] {
            jobs.push((Shape { ..shape }, density));
        }
    }
    for density in [1.0, 0.5] {
        let small = Shape {
            b: 32,
            h: 8,
            s: 128,
            d: 64,
        };
        jobs.push((small, density));
    }
    for (shape, density) in &jobs {
        let case = format!(
            "B{}_H{}_S{}_D{}_p{density}",
            shape.b, shape.h, shape.s, shape.d
        );
        let t = mask_tensors(shape.s, *density, None, shape.s as u64);
        for (name, data) in [
            ("kv_num_blocks", &t.kv_num_blocks),
            ("kv_indices", &t.kv_indices),
            ("full_kv_num_blocks", &t.full_num),
            ("full_kv_indices", &t.full_indices),
        ] {
            write_i32(&masks_dir.join(format!("{case}.{name}.i32")), data);
        }
        let mask = block_mask(shape.s, &t);
        writeln!(
            cases,
            "{{\"case\":\"{case}\",\"B\":{},\"H\":{},\"S\":{},\"D\":{},\"density\":{density},\
             \"block\":{BLOCK},\"causal\":{},\"kept_blocks\":{}}}",
            shape.b,
            shape.h,
            shape.s,
            shape.d,
            t.predicate == MaskPredicate::Causal,
            mask.kept_blocks(shape.b, shape.h)
        )
        .expect("cases.jsonl");
        // Both schedules where rows are unbalanced enough for the order to matter.
        let schedules: &[AttentionSchedule] = if *density < 1.0 && shape.s > BLOCK {
            &both
        } else {
            &both[..1]
        };
        run_case::<f16>(&cuda, shape, *density, &mask, &case, budget, schedules);
        run_case::<bf16>(&cuda, shape, *density, &mask, &case, budget, &both[..1]);
    }
    cases.flush().expect("cases.jsonl");
    queries_per_second(&cuda, if quick { 3.0 } else { qps_seconds });
}
