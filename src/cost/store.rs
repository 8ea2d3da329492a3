//! The calibration file: one JSON [`CostModel`] per machine key in the user's cache directory.

use std::path::{Path, PathBuf};

use super::model::{CostModel, MODEL_VERSION};
use crate::stable_hash::stable_hash;
use crate::{Error, Result};

/// Environment variable naming the calibration file to read and write instead of the default
/// under the user's cache directory.
pub const CALIBRATION_ENV: &str = "MEGABATCH_CALIBRATION";

/// Where the calibration of `machine` is kept: `$MEGABATCH_CALIBRATION` if set, else
/// `<cache dir>/megabatch/calibration-v<MODEL_VERSION>-<hash of machine>.json`
/// (`~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows). `None`
/// when the platform has no cache directory.
pub fn default_calibration_path(machine: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CALIBRATION_ENV) {
        return Some(PathBuf::from(path));
    }
    let name = format!(
        "calibration-v{MODEL_VERSION}-{:016x}.json",
        stable_hash(machine.as_bytes())
    );
    Some(dirs::cache_dir()?.join("megabatch").join(name))
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Calibration {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `model` to `path` as JSON, creating the parent directory. The file is written
/// beside its final name and renamed into place, so a concurrent reader never sees half a file.
///
/// # Errors
/// [`Error::Calibration`] if the directory or file cannot be written.
pub fn save_calibration(model: &CostModel, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let json = serde_json::to_string_pretty(model).map_err(|e| file_error(path, e))?;
    let partial = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&partial, json).map_err(|e| file_error(path, e))?;
    std::fs::rename(&partial, path).map_err(|e| file_error(path, e))
}

/// Reads the calibration at `path` for `machine`. `Ok(None)` when there is no file.
///
/// # Errors
/// [`Error::Calibration`] when the file cannot be read, is not a calibration (corrupt or
/// truncated JSON), has another [`MODEL_VERSION`], or belongs to another machine key (other
/// devices or driver): such a file is stale, and `Auto` ignores it with a warning.
pub fn load_calibration(path: &Path, machine: &str) -> Result<Option<CostModel>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, e)),
    };
    // Check the version before the shape, so an old file reports why it is ignored.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| file_error(path, format!("not JSON: {e}")))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(MODEL_VERSION)) {
        return Err(file_error(
            path,
            format!("version {version:?}, this build reads version {MODEL_VERSION}"),
        ));
    }
    let model: CostModel = serde_json::from_value(value)
        .map_err(|e| file_error(path, format!("not a calibration: {e}")))?;
    if model.machine != machine {
        return Err(file_error(
            path,
            format!("made for machine `{}`, this is `{machine}`", model.machine),
        ));
    }
    Ok(Some(model))
}
