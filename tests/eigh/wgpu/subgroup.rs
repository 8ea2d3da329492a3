//! The subgroup layout (`shaders/eigh/subgroup.wgsl`, issue 26 step 4): which bucket takes it
//! (a pure function of the spec and the adapter's limits, so pinned here for adapters with and
//! without subgroups), and on the test adapter, when it has `Features::SUBGROUP`, its accuracy
//! against the LAPACK ratios at the layout's boundaries, f32 and f64, NaN per matrix, and the
//! same batch with subgroups turned off (`MEGABATCH_WGPU_SUBGROUPS=0`, in a child process)
//! running the workgroup layouts. Without subgroups on the adapter the device tests print
//! `SKIPPED` and return.

use crate::common;

use common::eigh_check::{check_device_info, check_eigh_accuracy_planned, plan_matches_cpu};
use common::{wgpu_or_skip, MatrixType, ALL_TYPES};
use megabatch::backends::wgpu::{
    eigh_dispatch_shaders, eigh_dispatch_shaders_with, SubgroupSizes, Wgpu,
    WgpuEighAlgorithm as Alg, WgslFloat, SUBGROUP_ENV, SUBGROUP_MAX_ORDER, SUBGROUP_ORDERS,
};
use megabatch::{BatchedEigh, EighPlan, EighSpec, Real};

const THRESHOLD: f64 = 30.0;

const NVIDIA: SubgroupSizes = SubgroupSizes { min: 32, max: 32 };
const LAVAPIPE: SubgroupSizes = SubgroupSizes { min: 8, max: 8 };
const WARP: SubgroupSizes = SubgroupSizes { min: 4, max: 4 };

/// The shader keys of a plan of `spec` on a 48 KiB, 1024-invocation adapter with `sizes`.
fn shaders(spec: &EighSpec, d: WgslFloat, alg: Alg, sizes: Option<SubgroupSizes>) -> Vec<String> {
    eigh_dispatch_shaders_with(spec, d, alg, 48 * 1024, 1024, sizes)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

#[test]
fn size_classes_take_the_subgroup_layout_from_5_to_64_when_subgroups_exist() {
    assert_eq!(SUBGROUP_ORDERS, 5..=64);
    for d in [WgslFloat::F32, WgslFloat::F64] {
        for vectors in [false, true] {
            for n in 1..=80usize {
                let spec = EighSpec::uniform(n, 3).with_vectors(vectors);
                let with = shaders(&spec, d, Alg::SizeClasses, Some(NVIDIA));
                let without = shaders(&spec, d, Alg::SizeClasses, None);
                // Written out, not taken from SUBGROUP_ORDERS: Jacobi below 5, the workgroup
                // layouts from 65.
                if (5..=64).contains(&n) {
                    let rows = n.div_ceil(32);
                    let want = format!(
                        "eigh_subgroup/{}/n{n}/r{rows}/w64/v{}",
                        d.name(),
                        u8::from(vectors)
                    );
                    assert_eq!(with, [want], "{d:?} n {n}");
                    assert!(!without[0].starts_with("eigh_subgroup"), "{without:?}");
                } else {
                    assert_eq!(with, without, "{d:?} n {n}");
                }
                // The function without a subgroup argument is the adapter without subgroups.
                let plain =
                    eigh_dispatch_shaders(&spec, d, Alg::SizeClasses, 48 * 1024, 1024).unwrap();
                assert_eq!(
                    plain.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
                    without
                );
            }
        }
    }
}

#[test]
fn subgroup_shapes_follow_the_adapters_subgroup_sizes() {
    let d = WgslFloat::F32;
    let one = |n: usize, alg: Alg, sizes: Option<SubgroupSizes>| {
        shaders(&EighSpec::uniform(n, 1).with_vectors(true), d, alg, sizes).remove(0)
    };
    // lavapipe's 8-wide subgroups: 8 rows a lane at order 64, 64 invocations, 8 matrices.
    assert_eq!(
        one(64, Alg::SizeClasses, Some(LAVAPIPE)),
        "eigh_subgroup/f32/n64/r8/w64/v1"
    );
    assert_eq!(
        one(33, Alg::SizeClasses, Some(LAVAPIPE)),
        "eigh_subgroup/f32/n33/r5/w64/v1"
    );
    // 4-wide subgroups hold at most 8 rows a lane, order 32: above, the rows layout.
    assert_eq!(
        one(32, Alg::SizeClasses, Some(WARP)),
        "eigh_subgroup/f32/n32/r8/w64/v1"
    );
    assert!(one(33, Alg::SizeClasses, Some(WARP)).starts_with("eigh_tridiag_rows/f32/n33/"));
    // 128-wide subgroups widen the workgroup.
    let wide = Some(SubgroupSizes { min: 32, max: 128 });
    assert_eq!(
        one(40, Alg::SizeClasses, wide),
        "eigh_subgroup/f32/n40/r2/w128/v1"
    );
    // Forced: every order to 64 (Jacobi's below 5 too), the size classes above and without.
    assert_eq!(
        one(3, Alg::TridiagSubgroup, Some(NVIDIA)),
        "eigh_subgroup/f32/n3/r1/w64/v1"
    );
    assert_eq!(
        one(1, Alg::TridiagSubgroup, Some(NVIDIA)),
        "eigh_subgroup/f32/n2/r1/w64/v1"
    );
    assert!(one(65, Alg::TridiagSubgroup, Some(NVIDIA)).starts_with("eigh_tridiag/f32/n65/"));
    assert!(one(3, Alg::TridiagSubgroup, None).starts_with("eigh_jacobi/"));
    assert!(one(40, Alg::TridiagSubgroup, None).starts_with("eigh_tridiag_rows/f32/n40/"));
    // The other forced layouts never take subgroups.
    for alg in [Alg::Jacobi, Alg::TridiagWorkgroup, Alg::TridiagRows] {
        assert!(
            !one(40, alg, Some(NVIDIA)).starts_with("eigh_subgroup"),
            "{alg:?}"
        );
    }
    // A ragged bucket of orders 61-64 pads to 64; one of 65-70 keeps the workgroup layout.
    let ragged = |sizes: Vec<usize>| {
        shaders(
            &EighSpec::ragged(sizes).with_vectors(true),
            d,
            Alg::SizeClasses,
            Some(NVIDIA),
        )
    };
    assert!(ragged(vec![61, 62])
        .iter()
        .all(|s| s.starts_with("eigh_subgroup/f32/n64/")));
    assert!(ragged(vec![66, 70])
        .iter()
        .all(|s| s.starts_with("eigh_tridiag/")));
}

/// The test adapter, when it has subgroups; else `None` after a SKIPPED line.
fn subgroup_adapter(test: &str) -> Option<Wgpu> {
    let gpu = wgpu_or_skip()?;
    let ad = gpu.adapter();
    eprintln!(
        "{test}: adapter {} subgroups {} sizes {:?}",
        ad.name, ad.subgroups, ad.subgroup_sizes
    );
    if ad.subgroup_range().is_none() {
        eprintln!(
            "SKIPPED {test}: adapter {} lacks Features::SUBGROUP",
            ad.name
        );
        return None;
    }
    Some(gpu)
}

/// Orders at the layout's edges on this adapter: its own (1 to 6; 63, 64 and 65, which the
/// forced algorithm's fallback takes) and where the rows per lane step (the smallest
/// subgroup and its double and half of 64, plus and minus one).
fn boundary_orders(min: usize) -> Vec<usize> {
    let mut orders = vec![1, 2, 3, 4, 5, 6, 63, 64, 65];
    for k in [min, 2 * min, SUBGROUP_MAX_ORDER / 2] {
        orders.extend([k - 1, k, k + 1]);
    }
    orders.sort_unstable();
    orders.dedup();
    orders
}

fn accuracy<T: Real>(gpu: &Wgpu, orders: &[usize], seed: u64)
where
    Wgpu: BatchedEigh<T, EighPlan = megabatch::backends::wgpu::WgpuEighPlan<T>>,
{
    check_eigh_accuracy_planned::<T, Wgpu>(gpu, orders, &ALL_TYPES, seed, THRESHOLD, &|spec| {
        let plan = gpu.plan_eigh_with::<T>(spec, Alg::TridiagSubgroup).unwrap();
        // Every bucket up to 64 on the subgroup shader.
        let up_to_64 = spec.max_order() <= SUBGROUP_MAX_ORDER;
        assert!(
            !up_to_64
                || plan
                    .shaders()
                    .iter()
                    .all(|s| s.starts_with("eigh_subgroup/")),
            "{:?}",
            plan.shaders()
        );
        plan
    });
}

#[test]
fn lapack_types_at_the_subgroup_layouts_boundaries() {
    let Some(gpu) = subgroup_adapter("lapack_types_at_the_subgroup_layouts_boundaries") else {
        return;
    };
    let min = gpu.adapter().subgroup_range().unwrap().min;
    let orders = boundary_orders(min);
    // One ragged batch up to 64 (its buckets all on the subgroup shader), and 65 (the
    // fallback past the layout) alone.
    let (inside, past): (Vec<usize>, Vec<usize>) =
        orders.into_iter().partition(|&n| n <= SUBGROUP_MAX_ORDER);
    for (k, set) in [inside, past].iter().enumerate() {
        accuracy::<f32>(&gpu, set, 400 + k as u64);
        if gpu.adapter().f64 {
            accuracy::<f64>(&gpu, set, 500 + k as u64);
        }
    }
    // A ragged batch mixing orders in several buckets, and uniform batches, against the CPU.
    accuracy::<f32>(&gpu, &[0, 7, 1, 33, 16, 64, 2, 48], 77);
    for (n, batch) in [(5, 300), (17, 100), (64, 40)] {
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let plan = gpu.plan_eigh_with::<f32>(&spec, Alg::SizeClasses).unwrap();
        assert!(
            plan.shaders()[0].starts_with("eigh_subgroup/"),
            "{:?}",
            plan.shaders()
        );
        plan_matches_cpu(&gpu, plan, n, batch, 90 + n as u64);
    }
}

/// NaN and -inf matrices among good ones in one ragged batch on the subgroup shader: exactly
/// those are marked `NonFinite` (info array), get NaN outputs, and the rest pass the ratios.
#[test]
fn non_finite_matrices_are_marked_alone() {
    let Some(gpu) = subgroup_adapter("non_finite_matrices_are_marked_alone") else {
        return;
    };
    let sizes = [2, 3, 5, 8, 12, 20, 33, 40, 64, 63, 1, 0, 16, 9];
    let bad: Vec<usize> = (0..sizes.len())
        .filter(|i| i % 3 == 1 && sizes[*i] > 0)
        .collect();
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    let plan = gpu
        .plan_eigh_with::<f32>(&spec, Alg::TridiagSubgroup)
        .unwrap();
    assert!(
        plan.shaders()
            .iter()
            .all(|s| s.starts_with("eigh_subgroup/")),
        "{:?}",
        plan.shaders()
    );
    check_device_info::<f32, _>(&gpu, plan, &sizes, &bad, 71, THRESHOLD);
    if gpu.adapter().f64 {
        let plan = gpu
            .plan_eigh_with::<f64>(&spec, Alg::TridiagSubgroup)
            .unwrap();
        check_device_info::<f64, _>(&gpu, plan, &sizes, &bad, 72, THRESHOLD);
    }
}

/// With `MEGABATCH_WGPU_SUBGROUPS=0` the device is made without subgroups: the adapter reads
/// as lacking them, the size classes keep the workgroup layouts, and they are still accurate.
/// Runs in a child process (the variable is read when the device opens).
#[test]
fn subgroups_turned_off_keep_the_workgroup_layouts() {
    if std::env::var_os(SUBGROUP_ENV).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .arg("wgpu::subgroup::subgroups_turned_off_keep_the_workgroup_layouts")
            .arg("--exact")
            .arg("--nocapture")
            .env(SUBGROUP_ENV, "0")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
        eprint!("{text}");
        return;
    }
    let Some(gpu) = wgpu_or_skip() else { return };
    assert!(!gpu.adapter().subgroups && gpu.adapter().subgroup_range().is_none());
    for n in [5, 12, 40, 64] {
        let spec = EighSpec::uniform(n, 4).with_vectors(true);
        let plan: EighPlan<Wgpu, f32> = gpu.plan_eigh(&spec).unwrap();
        assert!(
            !plan.shaders()[0].starts_with("eigh_subgroup"),
            "{:?}",
            plan.shaders()
        );
        // Forcing the subgroup layout without subgroups falls back too.
        let forced = gpu
            .plan_eigh_with::<f32>(&spec, Alg::TridiagSubgroup)
            .unwrap();
        assert_eq!(forced.shaders(), plan.shaders());
    }
    let types = [MatrixType::RandomDense, MatrixType::Clustered];
    check_eigh_accuracy_planned::<f32, Wgpu>(&gpu, &[5, 40, 64], &types, 81, THRESHOLD, &|spec| {
        gpu.plan_eigh(spec).unwrap()
    });
}
