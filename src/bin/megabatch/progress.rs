//! Progress of long measurements on stderr: indicatif's bar on a terminal, one line per case
//! otherwise, so a run under a pipe, a log file or CI shows what it is measuring and how far it
//! is instead of staying silent for minutes.

use std::fmt::Display;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress over a known number of cases.
pub struct Progress {
    /// The bar, on a terminal; `None` means lines.
    bar: Option<ProgressBar>,
    /// What is measured, the prefix of every line (e.g. "crossover f64").
    label: String,
    len: usize,
    started: usize,
}

impl Progress {
    /// Progress of `len` cases of `label`.
    pub fn new(label: impl Into<String>, len: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(len as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            label: label.into(),
            len,
            started: 0,
        }
    }

    /// Announces the next case, `what` (e.g. "n = 16"): the bar's message, or a line
    /// "label: what (3/9)".
    pub fn start(&mut self, what: impl Display) {
        self.started += 1;
        match &self.bar {
            Some(bar) => bar.set_message(what.to_string()),
            None => eprintln!("{}: {what} ({}/{})", self.label, self.started, self.len),
        }
    }

    /// Marks the announced case done.
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Clears the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
