//! `megabatch info`: what this machine and this build have.

use megabatch::cost::{default_calibration_path, ModelSource};
use megabatch::Auto;

use crate::CliResult;

pub fn run() -> CliResult {
    let auto = Auto::new()?;
    println!("megabatch {}", env!("CARGO_PKG_VERSION"));
    println!(
        "cpu: {} worker threads ({} hardware threads)",
        auto.cpu().threads(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "backends built: cpu{}{}",
        if cfg!(feature = "cuda") { ", cuda" } else { "" },
        if cfg!(feature = "wgpu") { ", wgpu" } else { "" }
    );
    cuda_devices()?;
    wgpu_adapters(&auto);
    let names: Vec<&str> = auto.backends().iter().map(|k| k.name()).collect();
    println!("backends usable: {}", names.join(", "));
    if let Some(kind) = auto.forced() {
        println!("forced by MEGABATCH_BACKEND: {}", kind.name());
    }
    let key = auto.machine_key();
    println!("machine key: {key}");
    let path = default_calibration_path(&key);
    match (auto.model().source, path) {
        (ModelSource::Calibrated, Some(p)) => println!("calibration: {}", p.display()),
        (_, Some(p)) => println!(
            "calibration: none (defaults; `megabatch calibrate` writes {})",
            p.display()
        ),
        (_, None) => println!("calibration: none (no cache directory)"),
    }
    for note in auto.notes() {
        println!("note: {note}");
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda_devices() -> CliResult {
    use megabatch::backends::cuda::{nvrtc_version, Cuda};
    let count = Cuda::device_count()?;
    println!("cuda devices: {count}");
    if let Ok((major, minor)) = nvrtc_version() {
        println!("  nvrtc {major}.{minor}");
    }
    for ordinal in 0..count {
        match Cuda::with_device(ordinal) {
            Ok(cuda) => {
                let i = cuda.info();
                println!(
                    "  {ordinal}: {} (sm_{}{}, {} SMs, {:.1} GiB, driver CUDA {}.{})",
                    i.name,
                    i.compute_capability.0,
                    i.compute_capability.1,
                    i.multiprocessors,
                    i.total_memory as f64 / (1u64 << 30) as f64,
                    i.driver_version / 1000,
                    i.driver_version % 1000 / 10
                );
            }
            Err(e) => println!("  {ordinal}: unusable: {e}"),
        }
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices() -> CliResult {
    println!("cuda devices: not built (feature `cuda`)");
    Ok(())
}

#[cfg(feature = "wgpu")]
fn wgpu_adapters(auto: &Auto) {
    use megabatch::backends::wgpu::Wgpu;
    let adapters = Wgpu::adapters();
    println!("wgpu adapters: {}", adapters.len());
    let used = auto.wgpu().map(|w| w.adapter().name.clone());
    for a in adapters {
        let mark = if used.as_deref() == Some(a.name.as_str()) {
            " [used by auto]"
        } else {
            ""
        };
        println!(
            "  {} ({}, {}; f64 {}, f16 {}; {} KiB workgroup memory){mark}",
            a.name,
            a.backend,
            a.device_type,
            if a.f64 { "yes" } else { "no" },
            if a.f16 { "yes" } else { "no" },
            a.max_workgroup_storage / 1024
        );
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_adapters(_: &Auto) {
    println!("wgpu adapters: not built (feature `wgpu`)");
}
