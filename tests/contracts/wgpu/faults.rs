//! Injected wgpu faults (feature `fault-injection`): an out-of-memory buffer creation at plan
//! time, a failed submission and a lost device each give `Error::Device` from that call; after
//! the first two the handle stays usable, after the third it reports `is_lost()` and every
//! later call fails fast. Skips without an adapter unless `MEGABATCH_REQUIRE_WGPU=1`.
#![cfg(all(feature = "wgpu", feature = "fault-injection"))]

use crate::common;

use megabatch::backends::wgpu::Wgpu;
use megabatch::faults::{self, Fault};
use megabatch::{BackendKind, BatchedEigh, DeviceErrorKind, EighPlan, EighSpec, Error};

fn eigh_once(gpu: &megabatch::backends::wgpu::Wgpu) -> megabatch::Result<Vec<f32>> {
    let mut plan = gpu.plan_eigh(&EighSpec::uniform(2, 1))?;
    let mut w = vec![0.0f32; 2];
    gpu.eigh_host(&mut plan, &[2.0, 1.0, 1.0, 2.0], &mut w, None)?;
    Ok(w)
}

#[test]
fn injected_faults_are_device_errors_and_lost_devices_stay_lost() {
    let Some(gpu) = common::wgpu_or_skip() else {
        return;
    };
    assert_eq!(eigh_once(&gpu).unwrap(), [1.0, 3.0]);

    faults::inject(Fault::OutOfMemory);
    let plan: Result<EighPlan<Wgpu, f32>, Error> = gpu.plan_eigh(&EighSpec::uniform(2, 1));
    let err = plan.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Device {
                kind: DeviceErrorKind::OutOfMemory,
                backend: BackendKind::Wgpu,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(eigh_once(&gpu).unwrap(), [1.0, 3.0], "usable after OOM");

    let mut plan = gpu.plan_eigh(&EighSpec::uniform(2, 1)).unwrap();
    let mut w = [0.0f32; 2];
    faults::inject(Fault::LaunchError);
    let err = gpu
        .eigh_host(&mut plan, &[2.0, 1.0, 1.0, 2.0], &mut w, None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Device {
                kind: DeviceErrorKind::LaunchFailure,
                ..
            }
        ),
        "{err:?}"
    );
    gpu.eigh_host(&mut plan, &[2.0, 1.0, 1.0, 2.0], &mut w, None)
        .unwrap();
    assert_eq!(w, [1.0, 3.0], "usable after a failed submission");
    assert!(!gpu.is_lost());

    faults::inject(Fault::DeviceLost);
    let err = gpu
        .eigh_host(&mut plan, &[2.0, 1.0, 1.0, 2.0], &mut w, None)
        .unwrap_err();
    let lost = |e: &Error| {
        matches!(
            e,
            Error::Device {
                kind: DeviceErrorKind::Lost,
                ..
            }
        )
    };
    assert!(lost(&err), "{err:?}");
    assert!(gpu.is_lost());
    assert!(eigh_once(&gpu).is_err_and(|e| lost(&e)));
    faults::clear();
}
