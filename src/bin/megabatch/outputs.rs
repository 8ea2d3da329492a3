//! The files a command writes, committed together: every output path is checked (its folder
//! exists and takes a new file, no two outputs are one file) before any work starts, each
//! output is written to a temporary file beside it, and the temporaries are renamed into place
//! only once all of them were written. A failed run leaves no output behind, and an old result
//! is replaced whole or not at all.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use crate::{CliError, CliResult};

/// One output: where it goes, the temporary it is written to, what flag named it.
struct Pending {
    flag: &'static str,
    path: PathBuf,
    temp: PathBuf,
    /// Canonical folder and file name: two outputs with the same key are one file.
    key: (PathBuf, std::ffi::OsString),
    renamed: bool,
}

/// Handle of an output registered with [`Outputs::add`].
#[derive(Clone, Copy, Debug)]
pub struct Output(usize);

/// A set of pending outputs, written to temporaries and renamed into place by
/// [`Outputs::commit`]. Dropping it uncommitted removes the temporaries.
#[derive(Default)]
pub struct Outputs {
    pending: Vec<Pending>,
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `path` (named by `flag`, for messages): refuses a missing folder, a folder
    /// that takes no new file, a path that is a folder, and a file another output already
    /// names (an argument error). Creates the empty temporary the output will be written to.
    pub fn add(&mut self, flag: &'static str, path: &Path) -> CliResult<Output> {
        let usage =
            |reason: String| CliError::Usage(format!("{flag} {}: {reason}", path.display()));
        let folder = folder_of(path);
        let name = path
            .file_name()
            .ok_or_else(|| usage("not a file name".into()))?;
        if !folder.is_dir() {
            return Err(usage(format!("folder {} does not exist", folder.display())));
        }
        if path.is_dir() {
            return Err(usage("is a folder".into()));
        }
        let canonical = folder
            .canonicalize()
            .map_err(|e| usage(format!("folder {}: {e}", folder.display())))?;
        let key = (canonical, name.to_owned());
        if let Some(other) = self.pending.iter().find(|p| p.key == key) {
            return Err(CliError::Conflict(format!(
                "{} and {flag} name the same file {}",
                other.flag,
                path.display()
            )));
        }
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}-{}.megabatch-tmp",
            std::process::id(),
            self.pending.len()
        ));
        let temp = folder.join(temp_name);
        // Creating the temporary now is the real test that the folder takes a new file.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| usage(format!("cannot write in {}: {e}", folder.display())))?;
        self.pending.push(Pending {
            flag,
            path: path.to_path_buf(),
            temp,
            key,
            renamed: false,
        });
        Ok(Output(self.pending.len() - 1))
    }

    /// The temporary file to write `output` to.
    pub fn temp(&self, output: Output) -> &Path {
        &self.pending[output.0].temp
    }

    /// Renames every temporary into place, in the order they were added.
    pub fn commit(mut self) -> CliResult {
        for p in &mut self.pending {
            std::fs::rename(&p.temp, &p.path)
                .map_err(|e| CliError::Usage(format!("{} {}: {e}", p.flag, p.path.display())))?;
            p.renamed = true;
        }
        Ok(())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for p in self.pending.iter().filter(|p| !p.renamed) {
            // Best effort: the run already failed, and its own error is the one to report.
            let _ = std::fs::remove_file(&p.temp);
        }
    }
}
