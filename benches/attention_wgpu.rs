//! megabatch's block-sparse attention on wgpu against the CPU backend in the same run: seconds
//! per call host to host (the median of 5 after a warm-up). Prints one JSON object per line
//! (docs/benchmarks/wgpu-h100.md tabulates them).
//!
//! Usage: `cargo bench --features wgpu --bench attention_wgpu`.

mod common;

use common::median_of;
use megabatch::backends::cpu::Cpu;
use megabatch::backends::wgpu::Wgpu;
use megabatch::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seconds per attention call host to host (median of 5 after a warm-up).
fn attention_seconds<T: AttentionElement, B: SparseAttention<T>>(
    b: &B,
    spec: &AttentionSpec,
    mask: &BlockMask,
) -> f64 {
    let (ql, kvl, ll) = spec.lens().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut gen = |n: usize| -> Vec<T> {
        (0..n)
            .map(|_| T::from_f32(rng.random_range(-1.0..1.0)))
            .collect()
    };
    let (q, k, v) = (gen(ql), gen(kvl), gen(kvl));
    let mut o = vec![T::from_f32(0.0); ql];
    let mut lse = vec![0.0f32; ll];
    let mut plan = b.plan_attention(spec, mask).unwrap();
    median_of(5, || {
        b.attention_host(&mut plan, &q, &k, &v, &mut o, Some(&mut lse))
            .unwrap()
    })
}

fn attention_cases(gpu: &Wgpu, cpu: &Cpu) {
    let (b, h, s, d) = (1usize, 8usize, 2048usize, 64usize);
    let spec = AttentionSpec {
        batch: b,
        heads_q: h,
        heads_kv: h,
        seq_q: s,
        seq_kv: s,
        head_dim: d,
        scale: None,
    };
    for (name, mask) in [
        ("dense", BlockMask::dense(s, s, (64, 64)).unwrap()),
        ("causal", BlockMask::causal(s, s, (64, 64)).unwrap()),
    ] {
        // 4 BQ BK D flops per kept block per (b, h): Q K^T and P V.
        let flops = 4.0 * (64 * 64 * d) as f64 * mask.kept_blocks(b, h) as f64;
        let tg = attention_seconds::<f32, _>(gpu, &spec, &mask);
        let tc = attention_seconds::<f32, _>(cpu, &spec, &mask);
        let tg16 = if gpu.adapter().f16 {
            attention_seconds::<half::f16, _>(gpu, &spec, &mask)
        } else {
            f64::NAN
        };
        println!("{{\"bench\":\"attention\",\"mask\":\"{name}\",\"b\":{b},\"h\":{h},\"s\":{s},\"d\":{d},\"block\":64,\"kept_flops\":{flops:e},\"wgpu_f32_seconds\":{tg:e},\"wgpu_f16_seconds\":{tg16:e},\"cpu_f32_seconds\":{tc:e},\"wgpu_f32_tflops\":{:.4},\"wgpu_f16_tflops\":{:.4},\"cpu_f32_tflops\":{:.4}}}", flops / tg / 1e12, flops / tg16 / 1e12, flops / tc / 1e12);
    }
}

fn main() {
    let gpu = Wgpu::new().expect("a wgpu adapter");
    let cpu = Cpu::new().unwrap();
    eprintln!("{:?}, CPU threads {}", gpu.adapter(), cpu.threads());
    attention_cases(&gpu, &cpu);
}
