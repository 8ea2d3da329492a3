//! Every CUDA kernel compiles through NVRTC for Ampere (sm_80) and Hopper (sm_90), and the
//! cubin exports every entry point the backend looks up. Needs only libnvrtc (the
//! `nvidia-cuda-nvrtc` wheel in CI), no GPU.
#![cfg(feature = "cuda")]

use crate::common;
use megabatch::backends::cuda::{
    compile_kernels, compile_source, eigh_layout_checks, eigh_layout_program,
    kernel_params_layout_checks, nvrtc_available, nvrtc_version, AttentionKernel, EighClass,
    EighKernel, KERNEL_SOURCES,
};

/// This process's kernel cache folder: fresh, so every test here really runs NVRTC once.
fn cache_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("megabatch-kernels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::env::set_var(megabatch::backends::cuda::KERNEL_CACHE_ENV, &dir);
        dir
    })
    .clone()
}

fn nvrtc_or_skip() -> bool {
    // The kernel cache setting is process-wide: this module runs alone in a child process,
    // and in the test binary's own process a test is done once it passed there.
    if common::child::ran_alone() {
        return false;
    }
    cache_dir();
    if nvrtc_available() {
        return true;
    }
    let required = std::env::var("MEGABATCH_REQUIRE_NVRTC").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok();
    assert!(
        !required,
        "libnvrtc not found, but MEGABATCH_REQUIRE_NVRTC=1 or CI is set"
    );
    eprintln!("skipping: libnvrtc not found (set LD_LIBRARY_PATH to the nvidia-cuda-nvrtc wheel's lib folder)");
    false
}

/// Every `extern "C" __global__` name the Rust side composes at plan time.
fn expected_entry_points() -> Vec<String> {
    let mut names = vec!["eigh_jacobi_f32".to_owned(), "eigh_jacobi_f64".to_owned()];
    for t in ["f32", "f64", "f16", "bf16"] {
        for op in ["sum", "dot", "min", "max", "maxabs", "maxabsdiff", "maxrel"] {
            names.push(format!("reduce_full_{op}_{t}"));
        }
        for op in ["sum", "wsum", "max"] {
            names.push(format!("reduce_rows_{op}_{t}"));
        }
        for op in ["sum", "dot", "min", "max"] {
            names.push(format!("reduce_segments_{op}_{t}"));
        }
    }
    for a in ["f32", "f64"] {
        for op in ["sum", "dot", "min", "max", "maxabs", "maxabsdiff", "maxrel"] {
            names.push(format!("reduce_full_final_{op}_{a}"));
        }
        for op in ["sum", "wsum", "max"] {
            names.push(format!("reduce_rows_final_{op}_{a}"));
        }
    }
    names
}

#[test]
fn kernels_compile_for_sm80_and_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    eprintln!("NVRTC {:?}", nvrtc_version().unwrap());
    for arch in ["sm_80", "sm_90"] {
        let start = std::time::Instant::now();
        let cubin = compile_kernels(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        eprintln!(
            "{arch}: {} bytes of cubin in {:.2?}",
            cubin.len(),
            start.elapsed()
        );
        assert_eq!(&cubin[..4], b"\x7fELF", "{arch}: not an ELF cubin");
        // Entry-point names sit in the ELF string table as NUL-terminated strings.
        for name in expected_entry_points() {
            let needle = format!("\0{name}\0");
            assert!(
                cubin.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{arch}: entry point {name} missing from the cubin"
            );
        }
    }
}

#[test]
fn compile_errors_carry_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    // An architecture NVRTC does not know fails with its message, not a panic.
    let err = compile_kernels("sm_1").unwrap_err().to_string();
    assert!(err.contains("NVRTC") || err.contains("nvrtc"), "{err}");
}

/// FNV-1a, 64 bits (Fowler, Noll and Vo; the parameters of the published reference code),
/// written out here so the cache format is checked against the algorithm, not the crate.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[test]
fn compiled_kernels_are_cached_on_disk_with_a_checksum() {
    if !nvrtc_or_skip() {
        return;
    }
    let cubin = compile_kernels("sm_90").unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // Partial files (`.tmp<pid>-<n>`) of concurrent writes are not cache entries.
            name.starts_with("sm_90-") && name.ends_with(".cubin")
        })
        .collect();
    // Other tests of this process cache other sources in the same folder, and a source that
    // differs from the kernels' only by comments or static_asserts (the parameter-layout
    // check) compiles to the same bytes: at least one entry holds this cubin.
    let holding: Vec<_> = entries
        .iter()
        .filter_map(|f| {
            let bytes = std::fs::read(f).ok()?;
            (bytes.get(8..) == Some(&cubin[..])).then_some(bytes)
        })
        .collect();
    assert!(
        !holding.is_empty(),
        "no cache entry holds the cubin: {entries:?}"
    );
    for bytes in holding {
        assert_eq!(
            bytes[..8],
            fnv1a64(&cubin).to_le_bytes(),
            "an entry is the cubin's FNV-1a checksum (little-endian) and the cubin"
        );
    }
}

/// Compiles every (variant, architecture) job on all cores; each cubin must export the
/// variant's entry point. Returns the wall time.
fn compile_all<K: std::fmt::Debug + Sync>(
    jobs: &[(K, &str)],
    compile: impl Fn(&K, &str) -> megabatch::Result<std::sync::Arc<Vec<u8>>> + Sync,
    entries: impl Fn(&K) -> Vec<String> + Sync,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((kernel, arch)) = jobs.get(i) else {
                    break;
                };
                let cubin =
                    compile(kernel, arch).unwrap_or_else(|e| panic!("{kernel:?} for {arch}: {e}"));
                for entry in entries(kernel) {
                    let needle = format!("\0{entry}\0");
                    assert!(
                        cubin.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{kernel:?}: entry point {entry} missing"
                    );
                }
            });
        }
    });
    start.elapsed()
}

/// Every attention variant (dtype x head dim x tile shape) compiles for Hopper, and the
/// tensor-core kernel also for Ampere; each cubin exports its entry point. Compiled on all
/// cores.
#[test]
fn every_attention_variant_compiles() {
    if !nvrtc_or_skip() {
        return;
    }
    let all = AttentionKernel::all();
    let mut jobs: Vec<(AttentionKernel, &str)> = all.iter().map(|k| (*k, "sm_90")).collect();
    // Ampere: the tensor-core kernel once per 16-bit type (the same PTX instructions).
    jobs.extend(["f16", "bf16"].map(|t| (AttentionKernel::for_shape(t, 64, 128, 128), "sm_80")));
    let took = compile_all(
        &jobs,
        |k, arch| k.compile(arch),
        |k| vec![k.entry().to_owned()],
    );
    eprintln!("{} attention variants compiled in {took:.2?}", jobs.len());
}

/// Every eigh size-class variant (class x dtype x values/vectors) compiles for Hopper, one warp,
/// one block and the divide-and-conquer class also for Ampere, and each cubin exports its entry
/// points.
#[test]
fn every_eigh_class_variant_compiles() {
    if !nvrtc_or_skip() {
        return;
    }
    let mut jobs: Vec<(EighKernel, &str)> = EighKernel::all()
        .into_iter()
        .map(|k| (k, "sm_90"))
        .collect();
    for class in [
        EighClass::Warp { lanes: 16, row: 12 },
        EighClass::Block { chunks: 4 },
        EighClass::DivideConquer,
    ] {
        jobs.push((
            EighKernel {
                class,
                dtype: "f64",
                vectors: true,
            },
            "sm_80",
        ));
    }
    let took = compile_all(&jobs, |k, arch| k.compile(arch), |k| k.entries());
    eprintln!("{} eigh variants compiled in {took:.2?}", jobs.len());
}

/// Every kernel parameter struct (`MbEighArgs`, `MbReduceArgs`, `MbAttParams`) has the size,
/// alignment and field offsets of its Rust mirror: the kernels take the struct by value, so a
/// field added on one side only would shift every field after it. Each check compiles after
/// the source that defines its struct.
#[test]
fn kernel_parameter_structs_match_their_rust_mirrors() {
    if !nvrtc_or_skip() {
        return;
    }
    let shared: String = KERNEL_SOURCES.iter().map(|(_, text)| *text).collect();
    let attention = AttentionKernel::all()[0].source();
    let checks = kernel_params_layout_checks();
    assert_eq!(checks.len(), 3, "one check per kernel parameter struct");
    for (c_name, asserts) in checks {
        let defining = if c_name == "MbAttParams" {
            &attention
        } else {
            &shared
        };
        assert!(
            defining.contains(&format!("struct {c_name} {{")),
            "{c_name} is not defined where the check expects it"
        );
        let source = format!("{defining}\n{asserts}");
        compile_source("sm_90", &source).unwrap_or_else(|e| panic!("{c_name}: {e}"));
    }
}

/// Every eigh size class's launch shapes and shared-memory sizes, as the Rust descriptors plan
/// them, agree with the kernel sources' own constants and `constexpr` layout functions (which
/// the kernels use for their shared-memory offsets and launch bounds): the `static_assert`s of
/// `eigh_layout_checks` compile after the sources. A value off by one fails to compile.
#[test]
fn eigh_class_launch_shapes_match_their_kernels() {
    if !nvrtc_or_skip() {
        return;
    }
    let checks = eigh_layout_checks();
    let mut classes: Vec<EighClass> = checks.iter().map(|(k, _)| k.class).collect();
    classes.dedup();
    for class in [
        EighClass::Warp { lanes: 16, row: 12 },
        EighClass::Chains { lanes: 32, row: 32 },
        EighClass::Block { chunks: 8 },
        EighClass::Split { chunks: 4 },
        EighClass::DivideConquer,
        EighClass::Jacobi,
    ] {
        assert!(classes.contains(&class), "{class:?} has no layout checks");
    }
    let mut lines: Vec<&str> = Vec::new();
    for (kernel, asserts) in &checks {
        assert!(asserts.contains("static_assert"), "{kernel:?}: no checks");
        for line in asserts.lines() {
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    let all = lines.join("\n");
    compile_source("sm_90", &eigh_layout_program(&all)).unwrap_or_else(|e| panic!("{e}"));
    // The checks can fail: the block classes' shared memory one byte larger than the kernel's.
    let line = lines
        .iter()
        .find(|l| l.contains("mb_block_shared_bytes<double>(65)"))
        .expect("a block layout check");
    let value = line.split("== ").nth(1).unwrap().split(',').next().unwrap();
    let wrong = line.replace(
        &format!("== {value},"),
        &format!("== {},", value.parse::<usize>().unwrap() + 1),
    );
    let err = compile_source("sm_90", &eigh_layout_program(&wrong)).unwrap_err();
    assert!(
        err.to_string().contains("differs from the Rust launch"),
        "{err}"
    );
}
