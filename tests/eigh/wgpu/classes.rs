//! Which wgpu eigh shader takes which matrices, for every order to 300, f32 and f64, values and
//! vectors, every `WgpuEighAlgorithm` and three adapters' limits: pinned against the thresholds
//! written out here from the README and docs/benchmarks/eigh-wgpu-h200.md, the largest orders
//! whose matrix fits each workgroup layout's memory and whose vectors fit the global layout's,
//! not taken from the crate. Needs no adapter (the selection is a pure function of the spec and
//! the adapter's limits).

use megabatch::backends::wgpu::{eigh_dispatch_shaders, WgpuEighAlgorithm as Alg, WgslFloat};
use megabatch::EighSpec;

// TridiagSubgroup on these adapters without subgroups is the size classes (the `_` arm below);
// tests/eigh/wgpu/subgroup.rs pins the selection with subgroups.
const ALGORITHMS: [Alg; 6] = [
    Alg::SizeClasses,
    Alg::Jacobi,
    Alg::TridiagWorkgroup,
    Alg::TridiagRows,
    Alg::TridiagSubgroup,
    Alg::TridiagGlobal,
];

/// Workgroup memory, invocations per workgroup, and for f64 then f32 the largest order whose
/// matrix fits the workgroup layout (A and Q in workgroup memory) and the rows layout (with
/// vectors; one team of `n.next_power_of_two()` invocations), and the largest order whose
/// vectors fit the global layout (6 n + workgroup + 3 reals and 10 words, workgroups of up to
/// 256): NVIDIA's Vulkan driver and lavapipe (48 KiB), and two smaller adapters.
struct Limits {
    bytes: usize,
    invocations: usize,
    f64: (usize, usize),
    f32: (usize, usize),
    global: (usize, usize),
}

const ADAPTERS: [Limits; 3] = [
    Limits {
        bytes: 48 * 1024,
        invocations: 256,
        f64: (72, 256),
        f32: (105, 256),
        global: (980, 1024),
    },
    Limits {
        bytes: 32 * 1024,
        invocations: 1024,
        f64: (58, 421),
        f32: (84, 795),
        global: (638, 1024),
    },
    Limits {
        bytes: 16 * 1024,
        invocations: 1024,
        f64: (39, 210),
        f32: (58, 397),
        global: (297, 637),
    },
];

/// The shader's cache-key prefix for matrices of largest order `n`.
fn expected(n: usize, d: WgslFloat, alg: Alg, lim: &Limits) -> String {
    let ((workgroup_max, rows_max), global_max) = if d == WgslFloat::F64 {
        (lim.f64, lim.global.0)
    } else {
        (lim.f32, lim.global.1)
    };
    let name = d.name();
    let nmax = n.max(2);
    let jacobi = format!("eigh_jacobi/{name}/n{}/", nmax.div_ceil(2) * 2);
    let rows = || (nmax <= rows_max).then(|| format!("eigh_tridiag_rows/{name}/n{nmax}/"));
    let workgroup = || (nmax <= workgroup_max).then(|| format!("eigh_tridiag/{name}/n{nmax}/"));
    // One workgroup per matrix: the order's power of two, 32 to 256.
    let wg = nmax.next_power_of_two().clamp(32, 256.min(lim.invocations));
    let global =
        || (n >= 5 && nmax <= global_max).then(|| format!("eigh_global/{name}/n{nmax}/w{wg}/"));
    // Jacobi below 5, rows in private arrays for 12-64, A in workgroup memory otherwise
    // (eigh-wgpu-h200.md); where the chosen layout does not fit, the global layout, then Jacobi.
    let sized = || {
        match n {
            0..=4 => None,
            12..=64 => rows(),
            _ => workgroup(),
        }
        .or_else(global)
    };
    let fast = match alg {
        Alg::Jacobi => None,
        Alg::TridiagWorkgroup => workgroup(),
        Alg::TridiagRows => rows(),
        Alg::TridiagGlobal => global().or_else(sized),
        _ => sized(),
    };
    fast.unwrap_or(jacobi)
}

#[test]
fn uniform_batches_take_the_documented_shader() {
    for lim in &ADAPTERS {
        for d in [WgslFloat::F64, WgslFloat::F32] {
            for vectors in [true, false] {
                for alg in ALGORITHMS {
                    for n in 1..=300 {
                        let spec = EighSpec::uniform(n, 3).with_vectors(vectors);
                        let got = eigh_dispatch_shaders(&spec, d, alg, lim.bytes, lim.invocations)
                            .unwrap();
                        let want = expected(n, d, alg, lim);
                        assert_eq!(got.len(), 1, "n {n}");
                        assert!(
                            got[0].0.starts_with(&want) && got[0].1 == 3,
                            "n {n} {d:?} vectors {vectors} {alg:?} {} bytes: {got:?}, want {want}",
                            lim.bytes
                        );
                    }
                }
            }
        }
    }
}

/// Ragged buckets: even orders to 16, multiples of 4 to 32, of 8 to 64, of 16 to 128, of 32
/// above.
fn padded(n: usize) -> usize {
    let step = [(16, 2), (32, 4), (64, 8), (128, 16)]
        .iter()
        .find(|(top, _)| n <= *top)
        .map_or(32, |(_, step)| *step);
    n.max(2).div_ceil(step) * step
}

/// A ragged batch is one dispatch per padded order, whose shader is the one for that order.
#[test]
fn ragged_batches_take_the_shader_of_their_padded_order() {
    let sizes: Vec<usize> = (0..=300).chain([3, 11, 70, 70, 150]).collect();
    for lim in &ADAPTERS {
        for d in [WgslFloat::F64, WgslFloat::F32] {
            for alg in ALGORITHMS {
                let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
                let got = eigh_dispatch_shaders(&spec, d, alg, lim.bytes, lim.invocations).unwrap();
                let mut buckets: Vec<(usize, usize)> = Vec::new();
                for &n in sizes.iter().filter(|&&n| n > 0) {
                    match buckets.iter_mut().find(|(p, _)| *p == padded(n)) {
                        Some((_, count)) => *count += 1,
                        None => buckets.push((padded(n), 1)),
                    }
                }
                buckets.sort();
                assert_eq!(got.len(), buckets.len(), "{d:?} {alg:?}: {got:?}");
                for ((key, count), (p, want_count)) in got.iter().zip(&buckets) {
                    let want = expected(*p, d, alg, lim);
                    assert!(
                        key.starts_with(&want) && count == want_count,
                        "padded {p} {d:?} {alg:?} {} bytes: {key} x {count}, want {want} x \
                         {want_count}",
                        lim.bytes
                    );
                }
            }
        }
    }
}

/// Where a bucket's padded order does not fit the fast shader its matrices' own orders fit,
/// the bucket runs that shader shaped for its largest order rather than Jacobi.
#[test]
fn ragged_buckets_whose_padded_order_does_not_fit_take_their_largest_order() {
    let lim = &ADAPTERS[0];
    for (sizes, d, want, forced) in [
        // f64 fits the workgroup layout to 72 at 48 KiB; 70 and 72 pad to 80.
        (vec![70], WgslFloat::F64, "eigh_tridiag/f64/n70/", None),
        (
            vec![66, 72, 70],
            WgslFloat::F64,
            "eigh_tridiag/f64/n72/",
            None,
        ),
        // 73 does not fit: the global layout for the whole bucket, shaped for 80; forcing the
        // workgroup layout gives Jacobi there, as before.
        (
            vec![70, 73],
            WgslFloat::F64,
            "eigh_global/f64/n80/",
            Some("eigh_jacobi/f64/n80/"),
        ),
        // f32 fits to 105; 100 pads to 112.
        (vec![100], WgslFloat::F32, "eigh_tridiag/f32/n100/", None),
    ] {
        let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
        for alg in [Alg::SizeClasses, Alg::TridiagWorkgroup] {
            let want = match alg {
                Alg::TridiagWorkgroup => forced.unwrap_or(want),
                _ => want,
            };
            let got = eigh_dispatch_shaders(&spec, d, alg, lim.bytes, lim.invocations).unwrap();
            assert_eq!(got.len(), 1, "{sizes:?}: {got:?}");
            assert!(
                got[0].0.starts_with(want),
                "{sizes:?} {alg:?}: {got:?}, want {want}"
            );
        }
        // Jacobi stays Jacobi, shaped for the padded order.
        let got = eigh_dispatch_shaders(&spec, d, Alg::Jacobi, lim.bytes, lim.invocations).unwrap();
        assert!(got[0].0.starts_with("eigh_jacobi/"), "{got:?}");
    }
}
