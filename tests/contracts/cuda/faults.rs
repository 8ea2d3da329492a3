//! Injected GPU faults (feature `fault-injection`): an out-of-memory error at plan time and a
//! failed launch each come back as `Error::Device` from that call, and the handle keeps
//! working afterwards. The sticky, device-lost case is in `device_lost.rs` (it ends CUDA
//! for its whole process).
#![cfg(all(feature = "cuda", feature = "fault-injection"))]

use crate::common;

use megabatch::backends::cuda::Cuda;
use megabatch::faults::{inject, Fault};
use megabatch::{
    BackendKind, BatchedEigh, DeviceErrorKind, EighPlan, EighSpec, Error, ReduceOp, ReduceSpec,
    Reducer,
};

fn is_device_error(
    result: Result<impl std::fmt::Debug, Error>,
    expected: DeviceErrorKind,
    needle: &str,
) {
    match result {
        Err(Error::Device {
            kind,
            backend,
            message,
        }) => {
            assert_eq!(backend, BackendKind::Cuda);
            assert_eq!(kind, expected, "{message}");
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("expected Error::Device, got {other:?}"),
    }
}

#[test]
fn out_of_memory_at_plan_time_is_a_device_error_and_the_handle_survives() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let spec = EighSpec::uniform(8, 1000).with_vectors(true);
    inject(Fault::OutOfMemory);
    let plan: megabatch::Result<EighPlan<Cuda, f64>> = cuda.plan_eigh(&spec);
    is_device_error(plan, DeviceErrorKind::OutOfMemory, "OUT_OF_MEMORY");
    let mut plan = cuda.plan_eigh(&spec).unwrap();
    let a: Vec<f64> = (0..64 * 1000).map(|i| (i % 17) as f64).collect();
    let (mut w, mut v) = (vec![0.0; 8000], vec![0.0; 64 * 1000]);
    cuda.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
    assert!(!cuda.is_lost());
}

#[test]
fn a_failed_launch_is_a_device_error_for_that_call_only() {
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let spec = ReduceSpec::Full {
        op: ReduceOp::Sum,
        len: 1000,
    };
    let mut plan = cuda.plan_reduce(&spec).unwrap();
    let x = vec![0.5f32; 1000];
    let mut out = [0.0f32];
    inject(Fault::LaunchError);
    is_device_error(
        cuda.reduce_host(&mut plan, &x, None, &mut out),
        DeviceErrorKind::LaunchFailure,
        "LAUNCH_OUT_OF_RESOURCES",
    );
    cuda.reduce_host(&mut plan, &x, None, &mut out).unwrap();
    assert_eq!(out[0], 500.0);
    assert!(!cuda.is_lost());
}
