//! The global-memory layout (`shaders/eigh/global.wgsl`, issue 26 step 4): which bucket takes
//! it (a pure function of the spec and the adapter's limits, pinned here against thresholds
//! written out from the layout's workgroup memory, 6 n + workgroup + 3 reals and 10 words), and
//! on the test adapter, forced from order 5 (lavapipe stops at 96), its LAPACK ratios at the
//! orders where its workgroup size, QL row ownership and bucketing change, f32 and f64, vectors
//! and values only; a ragged batch across every class with waves of dispatches; NaN per matrix.

use crate::common;

use common::eigh_check::{check_device_info, check_eigh_accuracy_planned, plan_matches_cpu};
use common::{wgpu_or_skip, MatrixType, ALL_TYPES};
use megabatch::backends::wgpu::{
    eigh_dispatch_shaders, Wgpu, WgpuEighAlgorithm as Alg, WgpuEighPlan, WgslFloat,
    LAVAPIPE_EIGH_MAX_ORDER,
};
use megabatch::{BatchedEigh, EighSpec, Real};

const THRESHOLD: f64 = 30.0;

/// The shader keys of a plan of `spec` on an adapter with `bytes` of workgroup memory and
/// `invocations` per workgroup, without subgroups.
fn keys(spec: &EighSpec, d: WgslFloat, alg: Alg, bytes: usize, invocations: usize) -> Vec<String> {
    eigh_dispatch_shaders(spec, d, alg, bytes, invocations)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

fn one(n: usize, d: WgslFloat, alg: Alg, bytes: usize, invocations: usize) -> String {
    let spec = EighSpec::uniform(n, 3).with_vectors(true);
    keys(&spec, d, alg, bytes, invocations).remove(0)
}

#[test]
fn size_classes_take_the_global_layout_where_no_workgroup_layout_fits() {
    let (f32, f64) = (WgslFloat::F32, WgslFloat::F64);
    let sc = Alg::SizeClasses;
    // 48 KiB: the workgroup layout holds f32 to 105 and f64 to 72; the global one f64 to
    // (49152 - 40 - 8 (256 + 3)) / 48 = 980; 1024 invocations, capped at 256.
    let nv = |n, d| one(n, d, sc, 48 * 1024, 1024);
    assert!(nv(105, f32).starts_with("eigh_tridiag/f32/n105/"));
    assert_eq!(nv(106, f32), "eigh_global/f32/n106/w128/v1");
    assert_eq!(nv(1024, f32), "eigh_global/f32/n1024/w256/v1");
    assert!(nv(72, f64).starts_with("eigh_tridiag/f64/n72/"));
    assert_eq!(nv(73, f64), "eigh_global/f64/n73/w128/v1");
    assert_eq!(nv(256, f64), "eigh_global/f64/n256/w256/v1");
    assert_eq!(nv(257, f64), "eigh_global/f64/n257/w256/v1");
    assert_eq!(nv(980, f64), "eigh_global/f64/n980/w256/v1");
    assert!(nv(981, f64).starts_with("eigh_jacobi/f64/n982/"));
    // WebGPU's minimum, 16 KiB and 256 invocations: f64 to (16384 - 40 - 8 (256 + 3)) / 48
    // = 297, f32 to (16384 - 40 - 4 (256 + 3)) / 24 = 637.
    let small = |n, d| one(n, d, sc, 16 * 1024, 256);
    assert_eq!(small(297, f64), "eigh_global/f64/n297/w256/v1");
    assert!(small(298, f64).starts_with("eigh_jacobi/"));
    assert_eq!(small(637, f32), "eigh_global/f32/n637/w256/v1");
    assert!(small(638, f32).starts_with("eigh_jacobi/"));
    // 64 invocations a workgroup: the workgroup stays at 64.
    assert_eq!(
        one(300, f32, sc, 48 * 1024, 64),
        "eigh_global/f32/n300/w64/v1"
    );
    // Values only: the same orders.
    let values = EighSpec::uniform(106, 1);
    assert_eq!(
        keys(&values, f32, sc, 48 * 1024, 1024),
        ["eigh_global/f32/n106/w128/v0"]
    );

    // Forced: from order 5 (Jacobi below), workgroups of 32 up to order 32, then the order's
    // power of two; the size classes where it does not fit.
    let forced = |n, d| one(n, d, Alg::TridiagGlobal, 48 * 1024, 1024);
    assert!(forced(4, f32).starts_with("eigh_jacobi/"));
    assert_eq!(forced(5, f32), "eigh_global/f32/n5/w32/v1");
    assert_eq!(forced(32, f32), "eigh_global/f32/n32/w32/v1");
    assert_eq!(forced(33, f64), "eigh_global/f64/n33/w64/v1");
    assert_eq!(forced(65, f64), "eigh_global/f64/n65/w128/v1");
    assert!(forced(981, f64).starts_with("eigh_jacobi/"));
    // The forced workgroup layouts keep Jacobi where they do not fit, as before.
    assert!(one(106, f32, Alg::TridiagWorkgroup, 48 * 1024, 1024).starts_with("eigh_jacobi/"));
    assert!(one(200, f32, Alg::Jacobi, 48 * 1024, 1024).starts_with("eigh_jacobi/"));

    // Ragged buckets: 961-980 pad to 992, past the layout in f64, and take their own largest
    // order; 70 and 73 pad to 80, which the global layout takes (72 alone would be the
    // workgroup layout's).
    let ragged = |sizes: Vec<usize>| {
        let spec = EighSpec::ragged(sizes).with_vectors(true);
        keys(&spec, f64, sc, 48 * 1024, 1024)
    };
    assert_eq!(ragged(vec![970, 980]), ["eigh_global/f64/n980/w256/v1"]);
    assert!(ragged(vec![970, 981])[0].starts_with("eigh_jacobi/f64/n992/"));
    assert_eq!(ragged(vec![70, 73]), ["eigh_global/f64/n80/w128/v1"]);
    assert!(ragged(vec![70, 72])[0].starts_with("eigh_tridiag/f64/n72/"));
}

/// A plan forcing the global layout: every bucket on it, but Jacobi's for orders 1-4 (keys
/// `eigh_jacobi/<dtype>/n2/` and `n4/`).
fn forced<T: Real>(gpu: &Wgpu, spec: &EighSpec) -> WgpuEighPlan<T>
where
    Wgpu: BatchedEigh<T, EighPlan = WgpuEighPlan<T>>,
{
    let plan = gpu.plan_eigh_with::<T>(spec, Alg::TridiagGlobal).unwrap();
    let small =
        |s: &str| s.starts_with("eigh_jacobi/") && (s.contains("/n2/") || s.contains("/n4/"));
    assert!(
        plan.shaders()
            .iter()
            .all(|s| s.starts_with("eigh_global/") || small(s)),
        "{:?}",
        plan.shaders()
    );
    plan
}

/// Orders where the layout changes: its smallest (5), the workgroup size steps (32 | 33, 64 |
/// 65, each with the QL's rows wrapping around the 31 or 63 row owners at 32 and 64), the
/// bucket steps (16 | 17 | 18 ... kept by the ragged batch), and lavapipe's largest order;
/// on other adapters the next steps too (128 | 129, 256 | 257: several columns an invocation).
fn boundary_orders(gpu: &Wgpu) -> Vec<usize> {
    let mut orders = vec![5, 6, 31, 32, 33, 63, 64, 65, 95, 96];
    if !gpu.adapter().is_llvmpipe() {
        orders.extend([127, 128, 129, 255, 256, 257, 300]);
    }
    orders
}

#[test]
fn lapack_types_at_the_global_layouts_boundaries() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let orders = boundary_orders(&gpu);
    let plan32 = |spec: &EighSpec| forced::<f32>(&gpu, spec);
    check_eigh_accuracy_planned::<f32, Wgpu>(&gpu, &orders, &ALL_TYPES, 600, THRESHOLD, &plan32);
    if gpu.adapter().f64 {
        let plan64 = |spec: &EighSpec| forced::<f64>(&gpu, spec);
        check_eigh_accuracy_planned::<f64, Wgpu>(
            &gpu, &orders, &ALL_TYPES, 601, THRESHOLD, &plan64,
        );
    }
}

/// The test adapter opened again with at most `invocations` invocations per workgroup (an
/// application's device, `Wgpu::from_device`), so that small orders give each invocation
/// several columns, as orders above 256 do on a GPU.
fn narrow_device(gpu: &Wgpu, invocations: u32) -> Wgpu {
    let adapter = crate::common::same_adapter(gpu);
    let limits = wgpu::Limits {
        max_compute_invocations_per_workgroup: invocations,
        max_compute_workgroup_size_x: invocations,
        ..adapter.limits()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("narrow workgroups"),
        required_features: adapter.features() & wgpu::Features::SHADER_F64,
        required_limits: limits,
        ..Default::default()
    }))
    .expect("device");
    Wgpu::from_device(device, queue).unwrap()
}

/// Workgroups of 32 invocations on orders to 64: two columns of the trailing block and up to
/// three rows of Q an invocation (the path orders above 256 take on a GPU, which lavapipe
/// cannot run), f32 and f64.
#[test]
fn several_columns_an_invocation() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let narrow = narrow_device(&gpu, 32);
    assert_eq!(narrow.adapter().max_invocations, 32);
    let orders = [33, 47, 63, 64];
    let types = [
        MatrixType::RandomDense,
        MatrixType::Clustered,
        MatrixType::Geometric,
        MatrixType::WilkinsonPlus,
    ];
    let plan32 = |spec: &EighSpec| {
        let plan = forced::<f32>(&narrow, spec);
        assert!(plan.shaders().iter().all(|s| s.contains("/w32/")));
        plan
    };
    check_eigh_accuracy_planned::<f32, Wgpu>(&narrow, &orders, &types, 630, THRESHOLD, &plan32);
    if narrow.adapter().f64 {
        let plan64 = |spec: &EighSpec| forced::<f64>(&narrow, spec);
        check_eigh_accuracy_planned::<f64, Wgpu>(&narrow, &orders, &types, 631, THRESHOLD, &plan64);
    }
}

/// The size classes on a ragged batch over every class this adapter has (Jacobi, the
/// subgroup or rows layout, the workgroup layout, the global one), with empty and 1 x 1
/// matrices, in one plan, under a workspace budget of three matrices so that the global
/// buckets run in waves; and a uniform batch in waves against the CPU backend.
#[test]
fn ragged_batch_across_classes_in_waves() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let top = if gpu.adapter().is_llvmpipe() {
        LAVAPIPE_EIGH_MAX_ORDER
    } else {
        200
    };
    let orders = [0, 1, 3, 4, 5, 12, 40, 64, 70, 84, 85, 90, top - 1, top];
    let budget =
        |gpu: &Wgpu, n: usize, elem: usize| gpu.set_eigh_workspace_budget(3 * n * n * elem);
    budget(&gpu, top, 4);
    let sizes: Vec<usize> = orders.iter().flat_map(|&n| [n, n]).collect();
    let spec = EighSpec::ragged(sizes).with_vectors(true);
    let plan: WgpuEighPlan<f32> = gpu.plan_eigh(&spec).unwrap();
    eprintln!(
        "{} dispatches for {:?}",
        plan.dispatch_count(),
        plan.shaders()
    );
    let shaders = plan.shaders();
    let global = shaders.iter().filter(|s| s.starts_with("eigh_global/"));
    assert!(global.count() >= 1, "{shaders:?}");
    assert!(shaders.iter().any(|s| s.starts_with("eigh_jacobi/")));
    // The global buckets (4-6 matrices each) in waves of 3 or more.
    assert!(plan.dispatch_count() > shaders.len(), "{shaders:?}");
    let sized = |spec: &EighSpec| BatchedEigh::<f32>::plan_eigh(&gpu, spec).unwrap();
    check_eigh_accuracy_planned::<f32, Wgpu>(
        &gpu,
        &orders,
        &[
            MatrixType::RandomDense,
            MatrixType::Clustered,
            MatrixType::NearUnderflow,
        ],
        610,
        THRESHOLD,
        &sized,
    );
    if gpu.adapter().f64 {
        budget(&gpu, top, 8);
        let sized = |spec: &EighSpec| BatchedEigh::<f64>::plan_eigh(&gpu, spec).unwrap();
        check_eigh_accuracy_planned::<f64, Wgpu>(
            &gpu,
            &orders,
            &[
                MatrixType::Geometric,
                MatrixType::WilkinsonPlus,
                MatrixType::NearOverflow,
            ],
            611,
            THRESHOLD,
            &sized,
        );
    }
    // A uniform batch of 20 in waves of 3 (its list of matrices made for the waves).
    let (n, batch) = (40, 20);
    budget(&gpu, n, 4);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let plan = forced::<f32>(&gpu, &spec);
    assert_eq!(plan.dispatch_count(), 7);
    plan_matches_cpu(&gpu, plan, n, batch, 612);
}

/// NaN and -inf matrices among good ones in one ragged batch on the global layout, in waves:
/// exactly those are marked `NonFinite` (info array), get NaN outputs, and the rest pass the
/// ratios.
#[test]
fn non_finite_matrices_are_marked_alone() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let sizes = [5, 8, 31, 32, 33, 40, 64, 65, 70, 96, 1, 0, 2, 6, 33];
    let bad: Vec<usize> = (0..sizes.len())
        .filter(|i| i % 3 == 1 && sizes[*i] > 0)
        .collect();
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(true);
    gpu.set_eigh_workspace_budget(2 * 40 * 40 * 8);
    check_device_info::<f32, _>(
        &gpu,
        forced::<f32>(&gpu, &spec),
        &sizes,
        &bad,
        620,
        THRESHOLD,
    );
    if gpu.adapter().f64 {
        let plan = forced::<f64>(&gpu, &spec);
        check_device_info::<f64, _>(&gpu, plan, &sizes, &bad, 621, THRESHOLD);
    }
}
