//! wgpu interop: megabatch on a device the application created (`Wgpu::from_device`), the
//! application's buffers adopted without a copy, a user WGSL kernel and megabatch's reduction
//! chained on the one queue with one read-back, and every new entry point's bad inputs as
//! errors that the application's uncaptured-error handler never sees.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common;

use megabatch::backends::wgpu::{Wgpu, WgpuBindingKind};
use megabatch::{Backend, Error, ReduceOp, ReduceSpec, Reducer};

const DOUBLE: &str = "
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn double(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&x)) { x[id.x] = 2.0 * x[id.x]; }
}";

/// The application's own device on the adapter megabatch would pick, with an
/// uncaptured-error handler that counts what reaches it.
fn app_device(gpu: &Wgpu) -> (wgpu::Device, wgpu::Queue, Arc<AtomicUsize>) {
    let adapter = crate::common::same_adapter(gpu);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("application"),
        required_features: adapter.features() & wgpu::Features::SHADER_F64,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("device");
    let errors = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    device.on_uncaptured_error(Arc::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    (device, queue, errors)
}

fn storage(device: &wgpu::Device, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("application buffer"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    })
}

const ALL: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

#[test]
fn an_application_kernel_and_a_reduction_share_an_adopted_buffer_with_one_read_back() {
    // `Wgpu::host_reads` counts the whole process: other wgpu tests of this binary, on
    // parallel threads, would add their read-backs (seen in CI as 3 for 1).
    if common::child::ran_alone() {
        return;
    }
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let (device, queue, errors) = app_device(&gpu);
    let mb = Wgpu::from_device(device.clone(), queue.clone()).unwrap();
    let n = 1000usize;
    let data: Vec<f32> = (0..n).map(|i| (i % 17) as f32 - 3.0).collect();
    let raw = storage(&device, 4 * n as u64, ALL);
    queue.write_buffer(&raw, 0, bytemuck::cast_slice(&data));
    let x = mb.adopt_buffer::<f32>(raw.clone(), n).unwrap();
    // The same wgpu buffer, not a copy.
    assert_eq!(x.raw(), &raw);

    let kernel = mb
        .compile_kernel(DOUBLE, "double", &[WgpuBindingKind::ReadWrite])
        .unwrap();
    let bound = mb.bind_kernel(&kernel, &[(&x).into()]).unwrap();
    let mut plan = mb
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: n,
        })
        .unwrap();
    let mut out = mb.alloc::<f32>(1).unwrap();
    let queue_handle = mb.queue_handle();
    let reads = Wgpu::host_reads();
    mb.dispatch(&[(&bound, (n.div_ceil(64) as u32, 1, 1))])
        .unwrap();
    mb.reduce_on(&queue_handle, &mut plan, &x, None, &mut out)
        .unwrap();
    let sum = mb.read_scalar(&out).unwrap();
    assert_eq!(Wgpu::host_reads() - reads, 1, "one read-back for the chain");
    let expected: f64 = data.iter().map(|&v| 2.0 * f64::from(v)).sum();
    assert_eq!(f64::from(sum), expected, "integers sum exactly in f32");

    // The application reads its own buffer: the kernel's doubling is there.
    let mut back = vec![0.0f32; n];
    mb.download(&x, &mut back).unwrap();
    assert!(back.iter().zip(&data).all(|(b, d)| *b == 2.0 * d));
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}

#[test]
fn bad_inputs_at_the_wgpu_interop_entry_points_are_errors_not_the_applications() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    let (device, queue, errors) = app_device(&gpu);
    let mb = Wgpu::from_device(device.clone(), queue).unwrap();

    // WGSL that does not parse: wgpu's message comes back in the error.
    let bad = mb.compile_kernel("fn oops( {", "oops", &[]).unwrap_err();
    assert!(matches!(bad, Error::Device { .. }), "{bad:?}");
    // No such entry point.
    let missing = mb
        .compile_kernel(DOUBLE, "triple", &[WgpuBindingKind::ReadWrite])
        .unwrap_err();
    assert!(matches!(missing, Error::Device { .. }), "{missing:?}");
    // A layout that does not fit the shader (read-only binding for a written array).
    let layout = mb
        .compile_kernel(DOUBLE, "double", &[WgpuBindingKind::ReadOnly])
        .unwrap_err();
    assert!(matches!(layout, Error::Device { .. }), "{layout:?}");

    let kernel = mb
        .compile_kernel(DOUBLE, "double", &[WgpuBindingKind::ReadWrite])
        .unwrap();
    let x = mb.alloc::<f32>(16).unwrap();
    let y = mb.alloc::<f32>(16).unwrap();
    let count = mb.bind_kernel(&kernel, &[(&x).into(), (&y).into()]);
    assert!(
        matches!(count, Err(Error::KernelArguments { .. })),
        "{count:?}"
    );

    // Adopting: usage without STORAGE, a buffer smaller than the length asked for.
    let copy_only = storage(&device, 64, wgpu::BufferUsages::COPY_DST);
    assert!(matches!(
        mb.adopt_buffer::<f32>(copy_only, 16),
        Err(Error::InvalidArgument(_))
    ));
    let small = storage(&device, 64, ALL);
    assert!(matches!(
        mb.adopt_buffer::<f32>(small, 17),
        Err(Error::Shape { .. })
    ));

    // A buffer of another device binds to nothing here.
    let (other_device, _other_queue, other_errors) = app_device(&gpu);
    let foreign = storage(&other_device, 64, ALL);
    let mixed = mb.bind_kernel(&kernel, &[(&foreign).into()]);
    assert!(matches!(mixed, Err(Error::Device { .. })), "{mixed:?}");

    // A queue of another device does not run this device's plans.
    let mut plan = mb
        .plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::Sum,
            len: 16,
        })
        .unwrap();
    let mut out = mb.alloc::<f32>(1).unwrap();
    let wrong = mb.reduce_on(&gpu.queue_handle(), &mut plan, &x, None, &mut out);
    assert!(matches!(wrong, Err(Error::PlanMismatch(_))), "{wrong:?}");

    // Every failure came back as a value: the applications' handlers saw none.
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert_eq!(other_errors.load(Ordering::SeqCst), 0);
}
