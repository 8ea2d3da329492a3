//! Measuring a backend's profile on this machine: a few timed calls per operation and dtype,
//! sized so the whole calibration stays well under two seconds.

use std::collections::BTreeMap;
use std::time::Instant;

use super::model::{AttentionProfile, BackendProfile, EighMaxOrders, EighProfile, ReduceProfile};
use crate::attention::{AttentionElement, AttentionSpec, BlockMask, SparseAttention};
use crate::{
    BackendKind, BatchedEigh, EighSpec, Error, Real, ReduceOp, ReduceSpec, Reducer, Reducible,
    Result,
};

/// How much to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CalibrationOptions {
    /// Fewer orders (4, 8, 16, 32, 64) and one timed repetition per point instead of the best
    /// of two: about a third of the time, noisier.
    pub quick: bool,
}

impl CalibrationOptions {
    pub(crate) fn eigh_orders(&self) -> &'static [usize] {
        if self.quick {
            &[4, 8, 16, 32, 64]
        } else {
            &[4, 8, 12, 16, 24, 32, 48, 64, 128]
        }
    }

    fn reps(&self) -> usize {
        if self.quick {
            1
        } else {
            2
        }
    }
}

/// After a warm-up call slower than this, one timed call is enough.
const SLOW_CALL_S: f64 = 0.02;

/// Best time of `reps` calls after one warm-up call (which pays one-time costs of the driver
/// and caches); one timed call when the warm-up was slow.
fn best_of(reps: usize, call: impl FnMut() -> Result<()>) -> Result<f64> {
    timed(reps, false, call)
}

/// Like [`best_of`], but a slow warm-up is itself the measurement: for calls with nothing to
/// set up on first use (device-resident data), where a second slow call would only cost time.
fn best_of_steady(reps: usize, call: impl FnMut() -> Result<()>) -> Result<f64> {
    timed(reps, true, call)
}

fn timed(
    reps: usize,
    slow_warmup_counts: bool,
    mut call: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let start = Instant::now();
    call()?;
    let warmup = start.elapsed().as_secs_f64();
    if slow_warmup_counts && warmup > SLOW_CALL_S {
        return Ok(warmup);
    }
    let reps = if warmup > SLOW_CALL_S { 1 } else { reps.max(1) };
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        call()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// SplitMix64: timing inputs need variety, not statistical quality, and the library carries no
/// random-number dependency.
fn uniform_values(len: usize, seed: u64) -> impl Iterator<Item = f64> {
    let mut state = seed;
    (0..len).map(move |_| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    })
}

/// Matrices with entries uniform in [-1, 1] (eigh reads the lower triangle only).
fn random_matrices<T: Real>(n: usize, batch: usize) -> Vec<T> {
    uniform_values(n * n * batch, 0x5EED + n as u64)
        .map(T::of)
        .collect()
}

/// Matrices per timed batch call: about 4 ms of CPU work; on a GPU, 16,384 small matrices
/// falling like `n^-3` to 256 from n = 80 on (enough to fill an H100's 132 SMs twice).
fn batch_for(kind: BackendKind, n: usize, single_s: f64, threads: usize) -> usize {
    match kind {
        BackendKind::Cpu => {
            let fill = (4e-3 * threads as f64 / single_s.max(1e-9)).ceil() as usize;
            fill.clamp(2 * threads, 16_384)
        }
        _ => ((1usize << 27) / n.max(1).pow(3)).clamp(256, 16_384),
    }
}

/// Bytes one matrix of order `n` moves between host and device: A in, W and V out.
fn eigh_bytes_per_matrix<T>(n: usize) -> f64 {
    ((2 * n * n + n) * std::mem::size_of::<T>()) as f64
}

/// Bytes per second of a GPU's host path for eigh (copy into staging, to the device, back,
/// out of staging): the host call's time minus the resident call's, at order 16 and batch
/// 16,384 of f32 (35 MB each way, the size where the copies dominate; f32 because not every
/// wgpu adapter has f64).
fn staging_rate<B: BatchedEigh<f32>>(backend: &B, options: &CalibrationOptions) -> Result<f64> {
    let (n, batch) = (16, 16_384);
    let host = time_eigh_host::<B, f32>(backend, n, batch, options.reps())?;
    let resident = time_eigh_resident::<B, f32>(backend, n, batch, options.reps())?;
    let bytes = batch as f64 * eigh_bytes_per_matrix::<f32>(n);
    Ok(bytes / (host - resident).max(1e-6))
}

/// Eigh profile of `backend` for `T` (values and vectors). `threads` is the CPU parallelism
/// (ignored for GPUs), `max_order` the largest order the backend runs, `staging_bytes_per_s`
/// a GPU's host-path rate (see [`staging_rate`]): a GPU's host-path time per matrix is its
/// resident time plus its bytes at that rate, which saves timing every order twice.
pub(crate) fn eigh_profile<B: BatchedEigh<T>, T: Real>(
    backend: &B,
    options: &CalibrationOptions,
    threads: usize,
    max_order: usize,
    staging_bytes_per_s: Option<f64>,
) -> Result<EighProfile> {
    let orders: Vec<usize> = options
        .eigh_orders()
        .iter()
        .copied()
        .filter(|&n| n <= max_order)
        .collect();
    let mut profile = EighProfile {
        orders: orders.clone(),
        single_s: Vec::new(),
        per_matrix_host_s: Vec::new(),
        per_matrix_resident_s: Vec::new(),
        max_order,
        batch_overhead_s: 0.0,
    };
    for &n in &orders {
        let single = time_eigh_host(backend, n, 1, options.reps())?;
        let batch = batch_for(backend.kind(), n, single, threads);
        let (host, resident) = match staging_bytes_per_s {
            None => {
                let host = time_eigh_host(backend, n, batch, options.reps())? / batch as f64;
                (host, host)
            }
            Some(rate) => {
                let resident =
                    time_eigh_resident(backend, n, batch, options.reps())? / batch as f64;
                (resident + eigh_bytes_per_matrix::<T>(n) / rate, resident)
            }
        };
        profile.single_s.push(single);
        profile.per_matrix_host_s.push(host);
        profile.per_matrix_resident_s.push(resident);
    }
    if backend.kind() == BackendKind::Cpu {
        // Four matrices per thread of the smallest order: mostly wake-up and join.
        if let (Some(&n), Some(&per)) = (orders.first(), profile.per_matrix_host_s.first()) {
            let batch = 4 * threads;
            let t = time_eigh_host(backend, n, batch, options.reps())?;
            profile.batch_overhead_s = (t - batch as f64 * per).max(0.0);
        }
    }
    Ok(profile)
}

fn time_eigh_host<B: BatchedEigh<T>, T: Real>(
    backend: &B,
    n: usize,
    batch: usize,
    reps: usize,
) -> Result<f64> {
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = backend.plan_eigh(&spec)?;
    let a = random_matrices::<T>(n, batch);
    let (mut w, mut v) = (vec![T::zero(); n * batch], vec![T::zero(); n * n * batch]);
    best_of(reps, || {
        backend.eigh_host(&mut plan, &a, &mut w, Some(&mut v))
    })
}

fn time_eigh_resident<B: BatchedEigh<T>, T: Real>(
    backend: &B,
    n: usize,
    batch: usize,
    reps: usize,
) -> Result<f64> {
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = backend.plan_eigh(&spec)?;
    let mut a = backend.alloc::<T>(n * n * batch)?;
    backend.upload(&random_matrices::<T>(n, batch), &mut a)?;
    let mut w = backend.alloc::<T>(n * batch)?;
    let mut v = backend.alloc::<T>(n * n * batch)?;
    best_of_steady(reps, || {
        backend.eigh(&mut plan, &a, &mut w, Some(&mut v))?;
        backend.synchronize()
    })
}

/// Elements of the large reductions: enough bytes that the fixed cost is a small part.
const REDUCE_HOST_LEN: usize = 1 << 22;
const REDUCE_RESIDENT_LEN: usize = 1 << 24;
const REDUCE_SMALL_LEN: usize = 1 << 10;

/// Reduction profile of `backend` for input dtype `T`, from whole-array sums.
pub(crate) fn reduce_profile<B: Reducer<T>, T: Reducible>(
    backend: &B,
    options: &CalibrationOptions,
) -> Result<ReduceProfile> {
    let reps = options.reps();
    let zeros = |len| vec![T::zeroed(); len];
    let host_sum = |len: usize| -> Result<f64> {
        let mut plan = backend.plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len,
        })?;
        let x = zeros(len);
        let mut out = [<T::Acc as num_traits::Zero>::zero()];
        best_of(reps, || backend.reduce_host(&mut plan, &x, None, &mut out))
    };
    let call_s = host_sum(REDUCE_SMALL_LEN)?;
    let elem = std::mem::size_of::<T>() as f64;
    let rate = |len: usize, seconds: f64| len as f64 * elem / (seconds - call_s).max(1e-7);
    let host_bytes_per_s = rate(REDUCE_HOST_LEN, host_sum(REDUCE_HOST_LEN)?);
    let resident_bytes_per_s = if backend.kind() == BackendKind::Cpu {
        host_bytes_per_s
    } else {
        let len = REDUCE_RESIDENT_LEN;
        let mut plan = backend.plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len,
        })?;
        let x = backend.alloc::<T>(len)?;
        let mut out = backend.alloc::<T::Acc>(1)?;
        let seconds = best_of(reps, || {
            backend.reduce(&mut plan, &x, None, &mut out)?;
            backend.read_scalar(&out).map(drop)
        })?;
        rate(len, seconds)
    };
    Ok(ReduceProfile {
        call_s,
        host_bytes_per_s,
        resident_bytes_per_s,
    })
}

/// (heads, sequence length) of the dense attention calls that measure a rate, smallest first:
/// the first that takes at least [`ATTENTION_MIN_S`] is used, so a CPU measures a few
/// milliseconds and a GPU enough work to hide its launch.
const ATTENTION_SIZES: [(usize, usize); 6] = [
    (1, 512),
    (4, 512),
    (16, 512),
    (16, 1024),
    (16, 2048),
    (64, 2048),
];
const ATTENTION_MIN_S: f64 = 2e-3;

/// Seconds of one dense attention call of `heads` heads of `seq` tokens and head dimension
/// `head_dim` on data in `backend`'s buffers (waiting for a GPU to finish), and its flops.
fn time_attention_resident<B: SparseAttention<T>, T: AttentionElement>(
    backend: &B,
    heads: usize,
    seq: usize,
    head_dim: usize,
    reps: usize,
) -> Result<(f64, f64)> {
    let spec = AttentionSpec::self_attention(heads, seq, head_dim);
    let block = seq.min(64);
    let mask = BlockMask::dense(seq, seq, (block, block))?;
    let mut plan = backend.plan_attention(&spec, &mask)?;
    let (q_len, kv_len, _) = spec.lens()?;
    let filled = |len, seed| -> Result<B::Buffer<T>> {
        let values: Vec<T> = uniform_values(len, seed)
            .map(|x| T::from_f32(x as f32))
            .collect();
        let mut buffer = backend.alloc::<T>(len)?;
        backend.upload(&values, &mut buffer)?;
        Ok(buffer)
    };
    let (q, k, v) = (filled(q_len, 1)?, filled(kv_len, 2)?, filled(kv_len, 3)?);
    let mut o = backend.alloc::<T>(q_len)?;
    let seconds = best_of_steady(reps, || {
        backend.attention(&mut plan, &q, &k, &v, &mut o, None)?;
        backend.synchronize()
    })?;
    let flops = 4.0 * (block * block * head_dim) as f64 * mask.kept_blocks(1, heads) as f64;
    Ok((seconds, flops))
}

/// Attention profile of `backend` for `T` on device-resident data: a one-block call for the
/// fixed cost, and per head dimension (64 and 128; 64 alone with `quick`) the rate of the
/// first dense call in [`ATTENTION_SIZES`] that takes [`ATTENTION_MIN_S`].
pub(crate) fn attention_profile<B: SparseAttention<T>, T: AttentionElement>(
    backend: &B,
    options: &CalibrationOptions,
) -> Result<AttentionProfile> {
    let reps = options.reps();
    let (call_s, _) = time_attention_resident(backend, 1, 64, 64, reps)?;
    let head_dims: &[usize] = if options.quick { &[64] } else { &[64, 128] };
    let mut flops_per_s = Vec::new();
    for &d in head_dims {
        let mut rate = 0.0;
        for (heads, seq) in ATTENTION_SIZES {
            let (seconds, flops) = time_attention_resident(backend, heads, seq, d, reps)?;
            rate = flops / (seconds - call_s).max(1e-7);
            if seconds >= ATTENTION_MIN_S {
                break;
            }
        }
        flops_per_s.push(rate);
    }
    Ok(AttentionProfile {
        call_s,
        head_dims: head_dims.to_vec(),
        flops_per_s,
    })
}

/// Host <-> device transfers of `backend` through `upload`/`download`: (bytes per second of
/// a 16 MiB upload plus download, seconds of one 4-byte copy).
pub(crate) fn transfer_rate<B: crate::Backend>(
    backend: &B,
    options: &CalibrationOptions,
) -> Result<(f64, f64)> {
    let round_trip = |len: usize| -> Result<f64> {
        let host = vec![0f32; len];
        let mut back = vec![0f32; len];
        let mut buffer = backend.alloc::<f32>(len)?;
        best_of(options.reps(), || {
            backend.upload(&host, &mut buffer)?;
            backend.download(&buffer, &mut back)
        })
    };
    const LEN: usize = 1 << 22;
    let latency = round_trip(1)? / 2.0;
    let rate = (2 * LEN * 4) as f64 / (round_trip(LEN)? - 2.0 * latency).max(1e-6);
    Ok((rate, latency))
}

/// `Ok(None)` for what the backend does not run (a dtype its adapter lacks), else `r`.
fn unless_unsupported<P>(r: Result<P>) -> Result<Option<P>> {
    match r {
        Ok(p) => Ok(Some(p)),
        Err(Error::Unsupported { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The profile of one backend: eigh for f32 and f64 up to `eigh_max_order`, reductions and
/// attention for every dtype it runs, and the transfer rate for GPUs. A dtype the backend
/// answers `Unsupported` for gets no entry, so the model never picks the backend for it.
pub(crate) fn backend_profile<B>(
    backend: &B,
    options: &CalibrationOptions,
    threads: usize,
    eigh_max_order: EighMaxOrders,
) -> Result<BackendProfile>
where
    B: BatchedEigh<f32>
        + BatchedEigh<f64>
        + Reducer<f32>
        + Reducer<f64>
        + Reducer<half::f16>
        + Reducer<half::bf16>
        + SparseAttention<f32>
        + SparseAttention<half::f16>
        + SparseAttention<half::bf16>,
{
    let kind = backend.kind();
    let staging = match kind {
        BackendKind::Cpu => None,
        _ => Some(staging_rate(backend, options)?),
    };
    let mut eigh = BTreeMap::new();
    let first_order = options.eigh_orders()[0];
    if eigh_max_order.f32 >= first_order {
        eigh.insert(
            "f32".into(),
            eigh_profile::<B, f32>(backend, options, threads, eigh_max_order.f32, staging)?,
        );
    }
    if eigh_max_order.f64 >= first_order {
        eigh.insert(
            "f64".into(),
            eigh_profile::<B, f64>(backend, options, threads, eigh_max_order.f64, staging)?,
        );
    }
    let mut reduce = BTreeMap::new();
    let mut attention = BTreeMap::new();
    for (dtype, profile) in [
        ("f32", reduce_profile::<B, f32>(backend, options)),
        ("f64", reduce_profile::<B, f64>(backend, options)),
        ("f16", reduce_profile::<B, half::f16>(backend, options)),
        ("bf16", reduce_profile::<B, half::bf16>(backend, options)),
    ] {
        if let Some(p) = unless_unsupported(profile)? {
            reduce.insert(dtype.to_string(), p);
        }
    }
    for (dtype, profile) in [
        ("f32", attention_profile::<B, f32>(backend, options)),
        ("f16", attention_profile::<B, half::f16>(backend, options)),
        ("bf16", attention_profile::<B, half::bf16>(backend, options)),
    ] {
        if let Some(p) = unless_unsupported(profile)? {
            attention.insert(dtype.to_string(), p);
        }
    }
    let (transfer_bytes_per_s, transfer_latency_s) = match kind {
        BackendKind::Cpu => (None, 0.0),
        _ => {
            let (rate, latency) = transfer_rate(backend, options)?;
            (Some(rate), latency)
        }
    };
    Ok(BackendProfile {
        backend: kind.name().into(),
        transfer_bytes_per_s,
        transfer_latency_s,
        eigh,
        reduce,
        attention,
    })
}
