//! The files a command writes, committed together: every output path is checked (its folder
//! exists and takes a new file, no two outputs are one file, no output is one of the command's
//! inputs) before any work starts, each output is written to a temporary file beside it, and
//! the temporaries are renamed into place only once all of them were written. A failed run
//! leaves no output behind, and an old result is replaced whole or not at all.

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

/// An input file a command reads, which no output may name.
struct Input {
    flag: &'static str,
    path: PathBuf,
    /// The file with `.`, `..` and symbolic links resolved.
    canonical: PathBuf,
    /// Device and inode (Unix): the same file under another name (a hard link).
    id: Option<(u64, u64)>,
}

/// A set of pending outputs, written to temporaries and renamed into place by
/// [`Outputs::commit`]. Dropping it uncommitted removes the temporaries.
#[derive(Default)]
pub struct Outputs {
    pending: Vec<Pending>,
    inputs: Vec<Input>,
}

/// Device and inode of the file at `path` (links followed), where the platform has them.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
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

    /// Registers an input file (named by `flag`, for messages) that no output may name;
    /// register every input before the outputs. A path that does not resolve (a missing file)
    /// is left to the reader to report.
    pub fn input(&mut self, flag: &'static str, path: &Path) {
        if let Ok(canonical) = path.canonicalize() {
            self.inputs.push(Input {
                flag,
                path: path.to_path_buf(),
                canonical,
                id: file_id(path),
            });
        }
    }

    /// Registers `path` (named by `flag`, for messages): refuses a missing folder, a folder
    /// that takes no new file, a path that is a folder, a file another output already names,
    /// and a file that is one of the registered inputs, by any name: the same path spelt
    /// otherwise (`./x.npy`, through a linked folder), a symbolic link to it or (Unix) a hard
    /// link, compared by device and inode (argument errors). Creates the empty temporary the
    /// output will be written to.
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
        // The output as it resolves if it exists (a link to an input), and its file identity.
        let resolved = path.canonicalize().ok();
        let id = file_id(path);
        if let Some(input) = self.inputs.iter().find(|i| {
            i.canonical == key.0.join(&key.1)
                || resolved.as_ref() == Some(&i.canonical)
                || (id.is_some() && id == i.id)
        }) {
            return Err(CliError::Conflict(format!(
                "{flag} {} is the input {} {}: refusing to overwrite an input",
                path.display(),
                input.flag,
                input.path.display()
            )));
        }
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
