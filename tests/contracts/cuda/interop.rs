//! CUDA interop: streams and memory of other code used in place, user kernels chained with
//! megabatch's operations on one queue without host synchronisation, readers and writers on
//! different queues ordered by events, and bad inputs at every new entry point as errors.
//! Skips without a device unless `MEGABATCH_REQUIRE_CUDA=1`.

use crate::common;

use megabatch::backends::cuda::{Cuda, CudaKernel, CudaQueue, KernelArg, LaunchDims};
use megabatch::{Backend, BatchedEigh, EighSpec, Error, ReduceOp, ReduceSpec, Reducer};

/// `y[i] = s * x[i]` for `i < n`; `spin` cycles of busy waiting first (to make ordering
/// mistakes visible: a consumer that does not wait would read the old values).
const SCALE: &str = r#"
extern "C" __global__ void scale(const double* x, double* y, double s, unsigned n, long long spin) {
    long long t0 = clock64();
    while (clock64() - t0 < spin) {}
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = s * x[i];
}
"#;

pub(crate) fn scale_kernel(cuda: &Cuda) -> CudaKernel {
    cuda.compile_kernel(SCALE, "scale").unwrap()
}

/// Launches `scale` on `queue`: `y = s * x` after `spin` cycles.
pub(crate) fn scale(
    cuda: &Cuda,
    queue: &CudaQueue,
    kernel: &CudaKernel,
    x: &megabatch::backends::cuda::CudaBuffer<f64>,
    y: &mut megabatch::backends::cuda::CudaBuffer<f64>,
    s: f64,
    spin: i64,
) {
    let n = x.len();
    // SAFETY: the kernel reads x[..n] and writes y[..n]; both hold n elements.
    unsafe {
        cuda.launch_kernel(
            queue,
            kernel,
            LaunchDims::linear(n, 256).unwrap(),
            &[
                KernelArg::read(x),
                KernelArg::write(y),
                s.into(),
                (n as u32).into(),
                spin.into(),
            ],
        )
    }
    .unwrap();
}

pub(crate) fn sum_plan(cuda: &Cuda, len: usize) -> megabatch::backends::cuda::CudaReducePlan<f64> {
    cuda.plan_reduce(&ReduceSpec::Full {
        op: ReduceOp::Sum,
        len,
    })
    .unwrap()
}

#[test]
fn a_plan_runs_on_a_borrowed_stream() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    // A stream another library owns (here cudarc, by its raw handle as PyTorch would give it).
    let owner = cuda.new_queue().unwrap().to_cudarc();
    // SAFETY: `owner` keeps the stream alive past every use of `queue` below.
    let queue = unsafe { cuda.borrow_queue(owner.cu_stream()) }.unwrap();
    assert_eq!(queue.raw(), owner.cu_stream());
    let (n, batch) = (12, 64);
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut rng = common::rng(7);
    let a: Vec<f64> = (0..batch)
        .flat_map(|_| common::random_dense(n, &mut rng))
        .collect();
    let mut a_dev = cuda.alloc::<f64>(a.len()).unwrap();
    cuda.upload(&a, &mut a_dev).unwrap();
    let mut w_dev = cuda.alloc::<f64>(n * batch).unwrap();
    let mut v_dev = cuda.alloc::<f64>(a.len()).unwrap();
    let mut plan = cuda.plan_eigh(&spec).unwrap();
    cuda.eigh_on(&queue, &mut plan, &a_dev, &mut w_dev, Some(&mut v_dev))
        .unwrap();
    let (mut w, mut v) = (vec![0.0; n * batch], vec![0.0; a.len()]);
    cuda.download(&w_dev, &mut w).unwrap();
    cuda.download(&v_dev, &mut v).unwrap();
    // The same bits as the plan's own stream gives.
    let (mut w2, mut v2) = (vec![0.0; n * batch], vec![0.0; a.len()]);
    cuda.eigh_host(&mut plan, &a, &mut w2, Some(&mut v2))
        .unwrap();
    assert_eq!(w, w2);
    assert_eq!(v, v2);
    for m in 0..batch {
        let r = m * n * n..(m + 1) * n * n;
        let (res, orth) = common::ratios(&a[r.clone()], &w[m * n..(m + 1) * n], &v[r], n);
        assert!(res < 30.0 && orth < 30.0, "matrix {m}: {res} {orth}");
    }
    // A cudarc stream, and the queue back as one: the same stream.
    let again = cuda.queue_from_cudarc(queue.to_cudarc()).unwrap();
    assert_eq!(again.raw(), owner.cu_stream());
}

#[test]
fn cudarc_memory_is_used_in_place() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();
    let stream = queue.to_cudarc();
    let data: Vec<f64> = (0..1000).map(|i| i as f64 * 0.25).collect();
    let exact: f64 = data.iter().sum();
    let mut plan = sum_plan(&cuda, data.len());
    let mut out = cuda.alloc::<f64>(1).unwrap();

    // Taken over: cudarc's slice lives (and is freed) with the buffer.
    let slice = stream.clone_htod(&data).unwrap();
    let ptr = {
        use megabatch::backends::cuda::cudarc::driver::DevicePtr;
        slice.device_ptr(&stream).0
    };
    let adopted = cuda.adopt_cudarc(slice).unwrap();
    assert!(adopted.is_borrowed());
    assert_eq!(adopted.device_ptr(&queue).unwrap().ptr(), ptr, "no copy");
    cuda.reduce_on(&queue, &mut plan, &adopted, None, &mut out)
        .unwrap();
    assert_eq!(cuda.read_scalar(&out).unwrap(), exact);
    drop(adopted);

    // Borrowed by address: memory another library allocated (cuMemAlloc, as cudaMalloc and
    // PyTorch's allocator do) stays the owner's.
    use megabatch::backends::cuda::cudarc::driver::result as cu;
    let bytes = 8 * data.len();
    // SAFETY: a fresh allocation in the current context (the Cuda handle made it current),
    // freed below after the borrowing buffer is dropped.
    let raw = unsafe { cu::malloc_sync(bytes) }.unwrap();
    // SAFETY: `raw` outlives `borrowed` (dropped before the free below).
    let mut borrowed = unsafe { cuda.borrow_device_ptr::<f64>(raw, data.len(), &queue) }.unwrap();
    assert_eq!(borrowed.device_ptr(&queue).unwrap().ptr(), raw);
    // A write through megabatch lands in the owner's memory.
    let kernel = scale_kernel(&cuda);
    let copy = {
        let mut c = cuda.alloc::<f64>(data.len()).unwrap();
        cuda.upload(&data, &mut c).unwrap();
        c
    };
    scale(&cuda, &queue, &kernel, &copy, &mut borrowed, 3.0, 0);
    drop(borrowed); // waits for the kernel
    let mut back = vec![0.0f64; data.len()];
    // SAFETY: `raw` holds `bytes`; the kernel writing it has finished (the drop waited).
    unsafe { cu::memcpy_dtoh_sync(&mut back, raw) }.unwrap();
    // SAFETY: allocated above, no longer borrowed.
    unsafe { cu::free_sync(raw) }.unwrap();
    assert!(back.iter().zip(&data).all(|(b, d)| *b == 3.0 * d));
}

#[test]
fn foreign_code_orders_itself_through_pointer_guards() {
    use megabatch::backends::cuda::cudarc::driver::result as cu;
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let (q1, q2) = (cuda.new_queue().unwrap(), cuda.new_queue().unwrap());
    let kernel = scale_kernel(&cuda);
    let n = 1 << 16;
    let bytes = 8 * n;
    let ones = vec![1.0f64; n];
    let mut x = cuda.alloc::<f64>(n).unwrap();
    cuda.upload(&ones, &mut x).unwrap();
    let mut y = cuda.alloc::<f64>(n).unwrap();
    let mut z = cuda.alloc::<f64>(n).unwrap();
    let mut w = cuda.alloc::<f64>(n).unwrap();
    let mut plan = sum_plan(&cuda, n);
    let mut out = cuda.alloc::<f64>(1).unwrap();

    // Read after write: megabatch's slow writer on q1, foreign code copying y -> z on q2.
    scale(&cuda, &q1, &kernel, &x, &mut y, 5.0, 50_000_000);
    {
        let src = y.device_ptr(&q2).unwrap();
        let dst = z.device_ptr_mut(&q2).unwrap();
        // SAFETY: both guards' ranges hold `bytes`; q2 waited for y's writer.
        unsafe { cu::memcpy_dtod_async(dst.ptr(), src.ptr(), bytes, q2.raw()) }.unwrap();
    }
    cuda.reduce_on(&q2, &mut plan, &z, None, &mut out).unwrap();
    assert_eq!(
        cuda.read_scalar(&out).unwrap(),
        5.0 * n as f64,
        "the foreign copy on q2 did not wait for the writer on q1"
    );

    // Write after read: megabatch's slow reader of y on q2 (y -> w), then foreign code
    // clearing y on q1 must not overtake it.
    scale(&cuda, &q2, &kernel, &y, &mut w, 1.0, 50_000_000);
    {
        let dst = y.device_ptr_mut(&q1).unwrap();
        // SAFETY: the guard's range holds `bytes`; q1 waited for y's reader.
        unsafe { cu::memset_d8_async(dst.ptr(), 0, bytes, q1.raw()) }.unwrap();
    }
    cuda.reduce_on(&q1, &mut plan, &w, None, &mut out).unwrap();
    assert_eq!(
        cuda.read_scalar(&out).unwrap(),
        5.0 * n as f64,
        "the foreign writer on q1 overtook the reader on q2"
    );
    cuda.reduce_on(&q1, &mut plan, &y, None, &mut out).unwrap();
    assert_eq!(cuda.read_scalar(&out).unwrap(), 0.0);
}

/// Reader `me` (0 or 1) of `x`: raises its flag, then waits (at most `timeout` cycles) for the
/// other reader's; writes `x[0]` to `y[0]` if it saw it, else 0. The flags live at a raw
/// address passed as a scalar, outside megabatch's ordering on purpose: only `x` and `y`
/// order the two launches.
const RENDEZVOUS: &str = r#"
extern "C" __global__ void rendezvous(const double* x, double* y, unsigned long long flags,
                                      int me, long long timeout) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    volatile int* f = (volatile int*)flags;
    f[me] = 1;
    __threadfence_system();
    long long t0 = clock64();
    int seen = 0;
    while (clock64() - t0 < timeout) { if (f[1 - me]) { seen = 1; break; } }
    y[0] = seen ? x[0] : 0.0;
}
"#;

#[test]
fn two_queues_read_one_buffer_concurrently() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let (q1, q2) = (cuda.new_queue().unwrap(), cuda.new_queue().unwrap());
    let kernel = cuda.compile_kernel(RENDEZVOUS, "rendezvous").unwrap();
    let mut x = cuda.alloc::<f64>(1).unwrap();
    cuda.upload(&[7.0], &mut x).unwrap();
    let (mut a, mut b) = (cuda.alloc::<f64>(1).unwrap(), cuda.alloc::<f64>(1).unwrap());
    let mut flags = cuda.alloc::<i32>(2).unwrap();
    cuda.upload(&[0, 0], &mut flags).unwrap();
    let flags_at = flags.device_ptr(&q1).unwrap().ptr();
    // About a second at the H100's clock: long enough for the other launch to start.
    let timeout = 2_000_000_000i64;
    let dims = LaunchDims::linear(1, 32).unwrap();
    for (queue, y, me) in [(&q1, &mut a, 0i32), (&q2, &mut b, 1)] {
        // SAFETY: one thread reads x[0] and writes y[0] (both 1 element) and the two flags
        // of a 2-element buffer that stays alive until both queues are synchronised below.
        unsafe {
            cuda.launch_kernel(
                queue,
                &kernel,
                dims,
                &[
                    KernelArg::read(&x),
                    KernelArg::write(y),
                    flags_at.into(),
                    me.into(),
                    timeout.into(),
                ],
            )
        }
        .unwrap();
    }
    q1.synchronize().unwrap();
    q2.synchronize().unwrap();
    let (mut ra, mut rb) = ([0.0], [0.0]);
    cuda.download(&a, &mut ra).unwrap();
    cuda.download(&b, &mut rb).unwrap();
    assert_eq!(
        (ra[0], rb[0]),
        (7.0, 7.0),
        "two readers of one buffer on two queues did not run at the same time"
    );
    drop(flags);
}

#[test]
fn bad_inputs_at_the_cuda_interop_entry_points_are_errors() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let queue = cuda.new_queue().unwrap();

    // Source that does not compile: the NVRTC log comes back.
    let Err(Error::Device { message, .. }) =
        cuda.compile_kernel("extern \"C\" __global__ void k( {", "k")
    else {
        panic!("a compile error must be an Error::Device");
    };
    assert!(message.contains("error"), "{message}");
    assert!(matches!(
        cuda.compile_kernel("extern \"C\" __global__ void k() {}\0", "k"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        cuda.compile_kernel(SCALE, "no_such_kernel"),
        Err(Error::Device { .. })
    ));

    // Arguments that do not fit the parameters: their number, a size.
    let kernel = scale_kernel(&cuda);
    assert_eq!(kernel.param_sizes(), [8, 8, 8, 4, 8]);
    let x = cuda.alloc::<f64>(16).unwrap();
    let mut y = cuda.alloc::<f64>(16).unwrap();
    let dims = LaunchDims::linear(16, 32).unwrap();
    // SAFETY: refused before launching.
    let few = unsafe { cuda.launch_kernel(&queue, &kernel, dims, &[KernelArg::read(&x)]) };
    assert!(matches!(few, Err(Error::KernelArguments { .. })), "{few:?}");
    // SAFETY: refused before launching (the scalar is 4 bytes where 8 are expected).
    let size = unsafe {
        cuda.launch_kernel(
            &queue,
            &kernel,
            dims,
            &[
                KernelArg::read(&x),
                KernelArg::write(&mut y),
                1.0f32.into(),
                16u32.into(),
                0i64.into(),
            ],
        )
    };
    assert!(
        matches!(size, Err(Error::KernelArguments { .. })),
        "{size:?}"
    );

    // A launch the driver refuses (2048 threads per block): an error, the context usable.
    let too_big = LaunchDims {
        grid: (1, 1, 1),
        block: (2048, 1, 1),
        shared_bytes: 0,
    };
    // SAFETY: the arguments fit the kernel; the driver refuses the block size.
    let refused = unsafe {
        cuda.launch_kernel(
            &queue,
            &kernel,
            too_big,
            &[
                KernelArg::read(&x),
                KernelArg::write(&mut y),
                1.0f64.into(),
                16u32.into(),
                0i64.into(),
            ],
        )
    };
    assert!(matches!(refused, Err(Error::Device { .. })), "{refused:?}");
    assert!(!cuda.is_lost());
    scale(&cuda, &queue, &kernel, &x, &mut y, 1.0, 0);
    queue.synchronize().unwrap();

    // Borrowed memory: past the allocation's end, misaligned, null, not device memory.
    use megabatch::backends::cuda::cudarc::driver::result as cu;
    // SAFETY: a fresh allocation in the current context, freed at the end of this block.
    let raw = unsafe { cu::malloc_sync(800) }.unwrap();
    // SAFETY: the first four are refused before any use; `raw` outlives the last two.
    unsafe {
        assert!(matches!(
            cuda.borrow_device_ptr::<f64>(raw, 101, &queue),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            cuda.borrow_device_ptr::<f64>(raw + 4, 10, &queue),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            cuda.borrow_device_ptr::<f64>(0, 10, &queue),
            Err(Error::InvalidArgument(_))
        ));
        let host = [0.0f64; 10];
        assert!(cuda
            .borrow_device_ptr::<f64>(host.as_ptr() as u64, 10, &queue)
            .is_err());
        // The whole allocation, and a tail of it, are fine.
        drop(cuda.borrow_device_ptr::<f64>(raw, 100, &queue).unwrap());
        drop(
            cuda.borrow_device_ptr::<f64>(raw + 8 * 90, 10, &queue)
                .unwrap(),
        );
        cu::free_sync(raw).unwrap();
    }
    // Another device's memory or stream needs a second GPU.
    if Cuda::device_count().unwrap() > 1 {
        let other = Cuda::with_device(1).unwrap();
        let other_queue = other.new_queue().unwrap();
        assert!(matches!(
            cuda.queue_from_cudarc(other_queue.to_cudarc()),
            Err(Error::PlanMismatch(_))
        ));
        let foreign = other_queue.to_cudarc().alloc_zeros::<f64>(10).unwrap();
        let p = {
            use megabatch::backends::cuda::cudarc::driver::DevicePtr;
            foreign.device_ptr(&other_queue.to_cudarc()).0
        };
        // SAFETY: refused before any use.
        let r = unsafe { cuda.borrow_device_ptr::<f64>(p, 10, &queue) };
        assert!(matches!(r, Err(Error::PlanMismatch(_))), "{r:?}");
    } else {
        eprintln!("one CUDA device: the other-device cases of borrow_device_ptr skipped");
    }
}

/// `CudaBuffer::is_idle` polls without blocking: false while a slow kernel writing the buffer
/// runs (queued on a borrowed stream), true once the queue has finished, true for a buffer
/// nothing touched.
#[test]
fn is_idle_polls_the_recorded_work_without_waiting() {
    use megabatch::backends::cuda::cudarc::driver::result as cu;
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let owned = cuda.new_queue().unwrap();
    // SAFETY: `owned` outlives the borrowed queue (dropped at the end of the test, after it).
    let queue = unsafe { cuda.borrow_queue(owned.raw()) }.unwrap();
    let kernel = scale_kernel(&cuda);
    let n = 1024;
    let x = cuda.alloc::<f64>(n).unwrap();
    assert!(x.is_idle().unwrap(), "a buffer nothing used is idle");
    // SAFETY: a fresh allocation in the current context, freed after `y` is dropped.
    let raw = unsafe { cu::malloc_sync(8 * n) }.unwrap();
    // SAFETY: `raw` outlives `y`.
    let mut y = unsafe { cuda.borrow_device_ptr::<f64>(raw, n, &queue) }.unwrap();
    // About a second of spinning at 1-2 GHz: the polls below run while it does.
    scale(&cuda, &queue, &kernel, &x, &mut y, 2.0, 2_000_000_000);
    assert!(!y.is_idle().unwrap(), "the kernel is still spinning");
    assert!(!x.is_idle().unwrap(), "its read of x is recorded too");
    queue.synchronize().unwrap();
    assert!(y.is_idle().unwrap() && x.is_idle().unwrap());
    drop(y);
    // SAFETY: allocated above, no longer borrowed.
    unsafe { cu::free_sync(raw) }.unwrap();
}
