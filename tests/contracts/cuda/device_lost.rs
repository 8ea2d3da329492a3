//! A sticky GPU fault (injected `CUDA_ERROR_LAUNCH_FAILED`, as after an illegal address or a
//! device falling off the bus): the failing call returns `Error::Device`, the handle reports
//! itself lost, every later CUDA call fails fast with `Error::Device`, and `Auto` plans on the
//! CPU from then on and says so. One test, alone in a child process of its binary, because it ends
//! CUDA for the process.
#![cfg(all(feature = "cuda", feature = "fault-injection"))]

use crate::common;

use megabatch::backends::cpu::Cpu;
use megabatch::backends::cuda::Cuda;
use megabatch::faults::{inject, Fault};
use megabatch::{
    Auto, BackendKind, BatchedEigh, DeviceErrorKind, EighPlan, EighSpec, Error, Residency,
};

#[test]
fn a_lost_device_fails_fast_and_auto_falls_back_to_the_cpu() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let Some(cuda) = common::cuda_or_skip() else {
        return;
    };
    let auto = Auto::with_cuda(Cpu::with_threads(2).unwrap(), cuda.clone());
    let big = EighSpec::uniform(8, 100_000).with_vectors(true);
    assert_eq!(
        auto.explain_eigh::<f64>(&big, Residency::Host).chosen,
        BackendKind::Cuda
    );
    let mut plan = auto.plan_eigh_for::<f64>(&big, Residency::Host).unwrap();
    assert_eq!(plan.backend(), BackendKind::Cuda);
    let a: Vec<f64> = (0..64 * 100_000).map(|i| (i % 13) as f64).collect();
    let (mut w, mut v) = (vec![0.0; 800_000], vec![0.0; 64 * 100_000]);

    inject(Fault::DeviceLost);
    match auto.eigh_host(&mut plan, &a, &mut w, Some(&mut v)) {
        Err(Error::Device { kind, message, .. }) => {
            assert_eq!(kind, DeviceErrorKind::Lost, "{message}");
            assert!(message.contains("device lost"), "{message}");
        }
        other => panic!("expected Error::Device, got {other:?}"),
    }
    assert!(cuda.is_lost() && auto.is_lost(BackendKind::Cuda));
    // Every later CUDA call fails fast, never hangs or panics.
    assert!(matches!(
        auto.eigh_host(&mut plan, &a, &mut w, Some(&mut v)),
        Err(Error::Device {
            kind: DeviceErrorKind::Lost,
            ..
        })
    ));
    let plan: Result<EighPlan<Cuda, f64>, Error> = cuda.plan_eigh(&big);
    assert!(matches!(
        plan,
        Err(Error::Device {
            kind: DeviceErrorKind::Lost,
            ..
        })
    ));
    // Auto no longer predicts or picks CUDA, says why, and its CPU plans work.
    let decision = auto.explain_eigh::<f64>(&big, Residency::Host);
    assert_eq!(decision.chosen, BackendKind::Cpu);
    assert_eq!(decision.predictions[1].seconds, None);
    assert!(auto.notes().iter().any(|n| n.contains("cuda device lost")));
    let mut plan = auto.plan_eigh_for::<f64>(&big, Residency::Host).unwrap();
    assert_eq!(plan.backend(), BackendKind::Cpu);
    auto.eigh_host(&mut plan, &a, &mut w, Some(&mut v)).unwrap();
}
