//! `Auto::new` reads `MEGABATCH_BACKEND` and the calibration file named by
//! `MEGABATCH_CALIBRATION`. One test, alone in a child process of its binary, because it sets
//! process environment.

use crate::common;
use megabatch::cost::{save_calibration, CostModel, ModelSource};
use megabatch::{Auto, BackendKind, Error};

#[test]
fn environment_overrides_and_calibration_file_handling() {
    if common::child::ran_alone() {
        return; // passed alone in a child process (tests/common/child.rs)
    }
    let dir = std::env::temp_dir().join(format!("megabatch-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("calibration.json");
    std::env::set_var("MEGABATCH_CALIBRATION", &file);
    std::env::remove_var("MEGABATCH_BACKEND");

    // No file: defaults, no warning.
    let auto = Auto::new().unwrap();
    assert_eq!(auto.model().source, ModelSource::Defaults);
    assert!(auto.notes().iter().all(|n| !n.contains("calibration")));

    // A file for this machine is loaded.
    let mut mine = CostModel::defaults(&auto.machine_key(), 3, &[]);
    mine.source = ModelSource::Calibrated;
    mine.created_unix_s = 42;
    save_calibration(&mine, &file).unwrap();
    assert_eq!(Auto::new().unwrap().model(), &mine);

    // A corrupt file is ignored with a note, never a crash.
    std::fs::write(&file, "{ not json").unwrap();
    let auto = Auto::new().unwrap();
    assert_eq!(auto.model().source, ModelSource::Defaults);
    assert!(auto.notes().iter().any(|n| n.contains("calibration")));

    // Another machine's file likewise.
    save_calibration(&CostModel::defaults("elsewhere", 3, &[]), &file).unwrap();
    let auto = Auto::new().unwrap();
    assert_eq!(auto.model().source, ModelSource::Defaults);
    assert!(auto.notes().iter().any(|n| n.contains("elsewhere")));

    // MEGABATCH_BACKEND forces a present backend, refuses absent or unknown ones.
    std::env::set_var("MEGABATCH_BACKEND", "cpu");
    let auto = Auto::new().unwrap();
    assert_eq!(auto.forced(), Some(BackendKind::Cpu));
    std::env::set_var("MEGABATCH_BACKEND", "AUTO");
    assert_eq!(Auto::new().unwrap().forced(), None);
    std::env::set_var("MEGABATCH_BACKEND", "tpu");
    assert!(matches!(Auto::new(), Err(Error::InvalidArgument(_))));
    std::env::set_var("MEGABATCH_BACKEND", "wgpu");
    assert!(matches!(
        Auto::new(),
        Err(Error::Unsupported {
            backend: BackendKind::Wgpu,
            ..
        })
    ));
    std::env::remove_var("MEGABATCH_BACKEND");
    let _ = std::fs::remove_dir_all(&dir);
}
