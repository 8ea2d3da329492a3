//! Run-time compilation of `kernels/*.cu` with NVRTC to a cubin for one GPU architecture,
//! cached per process (and per architecture) and on disk, so a new process skips the
//! seconds NVRTC takes.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::nvrtc::result as rtc;
use cudarc::nvrtc::sys;

use super::error::cuda_error;
use crate::stable_hash::stable_hash;
use crate::{DeviceErrorKind, Error, Result};

/// The sources of the shared translation unit (reductions and the Jacobi eigh), in the order
/// they are concatenated (NVRTC has no toolkit headers to include, so shared definitions come
/// first). The eigh size classes ([`super::EighKernel`]) and the attention variants compile as
/// programs of their own, starting with the headers listed here.
pub const KERNEL_SOURCES: [(&str, &str); 4] = [
    ("common.cuh", include_str!("../../kernels/common.cuh")),
    (
        "eigh/common.cuh",
        include_str!("../../kernels/eigh/common.cuh"),
    ),
    (
        "eigh/jacobi.cu",
        include_str!("../../kernels/eigh/jacobi.cu"),
    ),
    ("reduce.cu", include_str!("../../kernels/reduce.cu")),
];

/// Whether libnvrtc can be loaded (from the system or `LD_LIBRARY_PATH`).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library; no NVRTC call is made.
    unsafe { sys::is_culib_present() }
}

/// The NVRTC version, `(major, minor)`.
///
/// # Errors
/// [`Error::Device`] when libnvrtc cannot be loaded.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    if !nvrtc_available() {
        return Err(no_nvrtc());
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are valid for writes.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcVersion", e))?;
    Ok((major, minor))
}

fn no_nvrtc() -> Error {
    cuda_error(
        DeviceErrorKind::Other,
        "libnvrtc not found (install the CUDA toolkit or the nvidia-cuda-nvrtc wheel \
         and put its lib folder on LD_LIBRARY_PATH)",
    )
}

fn nvrtc_error(call: &str, e: rtc::NvrtcError) -> Error {
    cuda_error(DeviceErrorKind::Other, format!("{call}: {e}"))
}

/// Compiles every kernel for `arch` (e.g. `"sm_90"`) and returns the cubin. Results are cached
/// for the life of the process.
///
/// # Errors
/// [`Error::Device`] when libnvrtc is missing, or with the compiler log when a kernel fails to
/// compile.
pub fn compile_kernels(arch: &str) -> Result<Arc<Vec<u8>>> {
    compile_source(arch, &joined_source())
}

/// Compiles one translation unit `source` for `arch` and returns the cubin, cached for the
/// life of the process (by architecture and source) and on disk (see [`KERNEL_CACHE_ENV`]).
/// The attention kernels and the eigh size classes go through here once per variant.
///
/// # Errors
/// As [`compile_kernels`].
pub fn compile_source(arch: &str, source: &str) -> Result<Arc<Vec<u8>>> {
    /// Cubins by (architecture, hash of the source).
    type Cache = Mutex<HashMap<(String, u64), Arc<Vec<u8>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (arch.to_owned(), stable_hash(source.as_bytes()));
    // Held across the compile: threads that start together wait for one compilation instead
    // of each running NVRTC.
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = map.get(&key) {
        return Ok(hit.clone());
    }
    let cubin = Arc::new(compile_cached_on_disk(arch, source)?);
    map.insert(key, cubin.clone());
    Ok(cubin)
}

/// Environment variable: a folder for compiled kernels instead of
/// `<cache dir>/megabatch/kernels`, or `off` to compile in every process.
pub const KERNEL_CACHE_ENV: &str = "MEGABATCH_KERNEL_CACHE";

fn options(arch: &str) -> [String; 3] {
    [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_owned(),
        // Lambdas in kernels are unannotated functions; NVRTC 13.0 (unlike 13.5) rejects them
        // as host code unless this makes device the default.
        "--device-as-default-execution-space".to_owned(),
    ]
}

fn joined_source() -> String {
    let mut source = String::new();
    for (name, text) in KERNEL_SOURCES {
        source.push_str(&format!("// ---- {name}\n{text}\n"));
    }
    source
}

/// The cache file for `arch`: named by a hash of the source, the options and the NVRTC
/// version, so any change compiles afresh. `None` when caching is off or has no folder.
fn cache_file(arch: &str, source: &str) -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os(KERNEL_CACHE_ENV) {
        Some(v) if v == "off" => return None,
        Some(v) => std::path::PathBuf::from(v),
        None => dirs::cache_dir()?.join("megabatch").join("kernels"),
    };
    let (major, minor) = nvrtc_version().ok()?;
    let key = format!("{source}|{:?}|nvrtc{major}.{minor}", options(arch));
    Some(dir.join(format!("{arch}-{:016x}.cubin", stable_hash(key.as_bytes()))))
}

/// A cached cubin is stored after an 8-byte FNV-1a checksum of itself; a truncated or
/// damaged file fails the check and is recompiled (and rewritten).
fn read_cached(path: &std::path::Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let (sum, cubin) = bytes.split_at_checked(8)?;
    (sum == stable_hash(cubin).to_le_bytes() && !cubin.is_empty()).then(|| cubin.to_vec())
}

fn write_cached(path: &std::path::Path, cubin: &[u8]) {
    // Best effort: a read-only or full disk only costs the next process a compile. The
    // partial file is private to this write: threads compiling the same kernels at once (the
    // attention variants compile on every core) would otherwise truncate each other's file,
    // and one could rename the other's half-written bytes into place.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = path.with_extension(format!("tmp{}-{write}", std::process::id()));
    let mut bytes = stable_hash(cubin).to_le_bytes().to_vec();
    bytes.extend_from_slice(cubin);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&partial, &bytes))
        .and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
}

fn compile_cached_on_disk(arch: &str, source: &str) -> Result<Vec<u8>> {
    let file = cache_file(arch, source);
    if let Some(cubin) = file.as_deref().and_then(read_cached) {
        return Ok(cubin);
    }
    let cubin = compile_uncached(arch, source)?;
    if let Some(path) = &file {
        write_cached(path, &cubin);
    }
    Ok(cubin)
}

fn compile_uncached(arch: &str, source: &str) -> Result<Vec<u8>> {
    if !nvrtc_available() {
        return Err(no_nvrtc());
    }
    let source =
        CString::new(source).map_err(|_| Error::InvalidArgument("NUL in kernel source"))?;
    let prog = rtc::create_program(&source, Some(c"megabatch.cu"))
        .map_err(|e| nvrtc_error("nvrtcCreateProgram", e))?;
    let options = options(arch);
    // SAFETY: `prog` is a live program; it is destroyed exactly once below.
    let compiled = unsafe { rtc::compile_program(prog, &options) };
    let outcome = match compiled {
        Ok(()) => cubin_of(prog),
        Err(e) => Err(cuda_error(
            DeviceErrorKind::Other,
            format!(
                "NVRTC failed to compile the kernels for {arch}: {e}\n{}",
                log_of(prog)
            ),
        )),
    };
    // SAFETY: `prog` is live and not used after this.
    let _ = unsafe { rtc::destroy_program(prog) };
    outcome
}

fn log_of(prog: sys::nvrtcProgram) -> String {
    // SAFETY: `prog` is a live, compiled program.
    match unsafe { rtc::get_program_log(prog) } {
        // SAFETY: NVRTC returns a NUL-terminated log.
        Ok(raw) => unsafe { CStr::from_ptr(raw.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
        Err(e) => format!("(no log: {e})"),
    }
}

fn cubin_of(prog: sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    // SAFETY: `prog` compiled successfully; `size` is valid for writes.
    unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcGetCUBINSize", e))?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` has the `size` bytes NVRTC asked for.
    unsafe { sys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcGetCUBIN", e))?;
    if cubin.is_empty() {
        return Err(cuda_error(
            DeviceErrorKind::Other,
            "NVRTC produced no cubin (a virtual compute_XX architecture?)",
        ));
    }
    Ok(cubin)
}
