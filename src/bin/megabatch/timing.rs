//! Timing loops shared by `bench`, `plot` and the regret sweep. Every backend is timed
//! through an [`Auto`] (forced to that backend, or free to choose), so all of them run the same
//! call path, data placement included.

use std::time::Instant;

use megabatch::{
    AttentionElement, AttentionSpec, Auto, Backend, BackendKind, BatchedEigh, BlockMask, EighSpec,
    Error, Real, ReduceSpec, Reducer, Reducible, Residency, SparseAttention,
};
use rand::{Rng, SeedableRng};

use crate::{BackendArg, CliResult};

/// Median seconds per call: one warm-up call (it pays one-time costs of drivers and caches,
/// and is never reported), then calls until `min_s` has passed: at least three, at
/// most 1,000, or a single one when the warm-up alone took longer than `min_s`.
pub fn median_seconds(
    min_s: f64,
    mut call: impl FnMut() -> Result<(), Error>,
) -> Result<f64, Error> {
    let start = Instant::now();
    call()?;
    let at_least = if start.elapsed().as_secs_f64() >= min_s {
        1
    } else {
        3
    };
    let mut times = Vec::new();
    let begin = Instant::now();
    while times.len() < at_least || (begin.elapsed().as_secs_f64() < min_s && times.len() < 1000) {
        let start = Instant::now();
        call()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `len` values uniform in [-1, 1) from a fixed seed, as f64 (callers convert).
pub fn uniform(len: usize, seed: u64) -> impl Iterator<Item = f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(move |_| rng.random_range(-1.0..1.0))
}

/// A view of `base` that runs everything on `arg`'s backend, or chooses (for
/// `BackendArg::Auto`). Views share `base`'s threads and devices, so timings of different
/// backends differ only by the backend.
pub fn auto_for(base: &Auto, arg: BackendArg) -> CliResult<Auto> {
    Ok(match kind_of(arg) {
        Some(kind) => base.clone().force(kind)?,
        None => base.clone(),
    })
}

/// The backend kind a `--backend` value names (`None` for auto).
pub fn kind_of(arg: BackendArg) -> Option<BackendKind> {
    match arg {
        BackendArg::Auto => None,
        BackendArg::Cpu => Some(BackendKind::Cpu),
        BackendArg::Cuda => Some(BackendKind::Cuda),
        BackendArg::Wgpu => Some(BackendKind::Wgpu),
    }
}

/// A `--backend` value's name.
pub fn arg_name(arg: BackendArg) -> &'static str {
    kind_of(arg).map_or("auto", BackendKind::name)
}

/// The `--backend` values to run: those asked for, or every present backend, then auto.
pub fn backends_to_run(base: &Auto, asked: &[BackendArg]) -> CliResult<Vec<BackendArg>> {
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    let mut all: Vec<BackendArg> = base
        .backends()
        .into_iter()
        .filter_map(|k| match k {
            BackendKind::Cpu => Some(BackendArg::Cpu),
            BackendKind::Cuda => Some(BackendArg::Cuda),
            BackendKind::Wgpu => Some(BackendArg::Wgpu),
            _ => None,
        })
        .collect();
    all.push(BackendArg::Auto);
    Ok(all)
}

/// Where buffers live for a run: host memory, or the device `Device(kind)` names.
fn home(residency: Residency) -> BackendKind {
    match residency {
        Residency::Host => BackendKind::Cpu,
        Residency::Device(kind) => kind,
    }
}

fn filled<T: megabatch::Element>(
    auto: &Auto,
    residency: Residency,
    values: Vec<T>,
) -> CliResult<megabatch::AutoBuffer<T>> {
    let mut buffer = auto.alloc_on::<T>(home(residency), values.len())?;
    auto.upload(&values, &mut buffer)?;
    Ok(buffer)
}

/// Median seconds of an eigh call on `auto` with its buffers on `residency`, and the backend
/// that ran it. Matrices have entries uniform in [-1, 1].
pub fn time_eigh<T: Real>(
    auto: &Auto,
    spec: &EighSpec,
    residency: Residency,
    min_s: f64,
) -> CliResult<(f64, BackendKind)> {
    let mut plan = auto.plan_eigh_for::<T>(spec, residency)?;
    let ran_on = plan.backend();
    let offsets = spec.offsets(std::mem::size_of::<T>())?;
    let (a_len, w_len) = (offsets.a_len(), offsets.w_len());
    let a = filled(auto, residency, uniform(a_len, 7).map(T::of).collect())?;
    let mut w = auto.alloc_on::<T>(home(residency), w_len)?;
    let mut v = match spec.vectors() {
        true => Some(auto.alloc_on::<T>(home(residency), a_len)?),
        false => None,
    };
    let seconds = median_seconds(min_s, || {
        auto.eigh(&mut plan, &a, &mut w, v.as_mut())?;
        auto.synchronize()
    })?;
    Ok((seconds, ran_on))
}

/// Median seconds of a reduction plus the readback of its first output element.
pub fn time_reduce<T: Reducible>(
    auto: &Auto,
    spec: &ReduceSpec,
    residency: Residency,
    min_s: f64,
) -> CliResult<(f64, BackendKind)> {
    let shape = spec.shape()?;
    let mut plan = auto.plan_reduce_for::<T>(spec, residency)?;
    let ran_on = plan.backend();
    // Reductions read every element whatever its value: zeros time the same as data.
    let x = filled(auto, residency, vec![T::zeroed(); shape.x_len])?;
    let y = match shape.y_len {
        Some(len) => Some(filled(auto, residency, vec![T::zeroed(); len])?),
        None => None,
    };
    let mut out = auto.alloc_on::<T::Acc>(home(residency), shape.out_len.max(1))?;
    let seconds = median_seconds(min_s, || {
        auto.reduce(&mut plan, &x, y.as_ref(), &mut out)?;
        auto.read_scalar(&out).map(drop)
    })?;
    Ok((seconds, ran_on))
}

/// Median seconds of an attention call on host tensors, and the backend that ran it.
pub fn time_attention<T: AttentionElement>(
    auto: &Auto,
    spec: &AttentionSpec,
    mask: &BlockMask,
    min_s: f64,
) -> CliResult<(f64, BackendKind)> {
    let mut plan = auto.plan_attention(spec, mask)?;
    let ran_on = plan.backend();
    let (q_len, kv_len, _) = spec.lens()?;
    let values =
        |len, seed| -> Vec<T> { uniform(len, seed).map(|x| T::from_f32(x as f32)).collect() };
    let (q, k, v) = (values(q_len, 1), values(kv_len, 2), values(kv_len, 3));
    let mut o = q.clone();
    let seconds = median_seconds(min_s, || {
        auto.attention_host(&mut plan, &q, &k, &v, &mut o, None)
    })?;
    Ok((seconds, ran_on))
}
