//! `megabatch`: the command-line face of the crate (feature `cli`). Inspect the machine,
//! calibrate and explain `Auto`'s choices, benchmark the backends, and run eigh and attention
//! on NumPy `.npy` files.

mod attention_cmd;
mod bench;
mod calibrate;
mod crossover;
mod eigh_cmd;
mod info;
mod mask_npz;
mod npy;
mod ops;
mod outputs;
mod plot;
mod progress;
mod regret;
mod table;
mod timing;
mod values;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Many small problems at once: batched eigh, reductions and block-sparse attention on CPU and
/// GPU, with a calibrated per-call choice of backend.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats of tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per row, one per line.
    Json,
}

/// Which backend runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The cost model decides per call.
    Auto,
    /// The CPU backend.
    Cpu,
    /// The CUDA backend (feature `cuda`).
    Cuda,
    /// The wgpu backend (feature `wgpu`).
    Wgpu,
}

#[derive(Subcommand)]
enum Command {
    /// CPU threads, GPU devices and which backends this build has.
    Info,
    /// Measure this machine, save the calibration and print the crossover table.
    Calibrate {
        /// Fewer sizes, one repetition each (about a third of the time).
        #[arg(long)]
        quick: bool,
        /// Where to write the calibration, in an existing folder (default: the user's cache
        /// directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format of the crossover table.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Time the operations per backend.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Eigenvalues (ascending) and eigenvectors of the symmetric matrices in a `.npy` file.
    Eigh(eigh_cmd::EighArgs),
    /// Block-sparse attention on `.npy` tensors.
    Attention(attention_cmd::AttentionArgs),
    /// Pictures.
    Plot {
        #[command(subcommand)]
        what: plot::PlotCommand,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let subcommand = matches.subcommand_name().map(str::to_owned);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Info => info::run(),
        Command::Calibrate { quick, out, format } => calibrate::run(quick, out, format),
        Command::Bench { what } => bench::run(what),
        Command::Eigh(args) => eigh_cmd::run(&args),
        Command::Attention(args) => attention_cmd::run(&args),
        Command::Plot { what } => plot::run(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Reported as clap reports its own argument errors: the subcommand's usage, status 2.
        Err(CliError::Conflict(message)) => {
            let mut root = Cli::command();
            root.build();
            let mut command = subcommand
                .and_then(|name| root.find_subcommand(&name).cloned())
                .unwrap_or(root);
            command
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit()
        }
        Err(e) => {
            eprintln!("megabatch: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors of the tool: the library's, I/O, and argument problems found after parsing.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the library.
    #[error(transparent)]
    Megabatch(#[from] megabatch::Error),
    /// Reading or writing a NumPy file.
    #[error(transparent)]
    Npy(#[from] npy::NpyError),
    /// Anything else the user can fix.
    #[error("{0}")]
    Usage(String),
    /// Arguments that contradict each other (found after parsing, e.g. two outputs naming one
    /// file): an argument error, reported like clap's.
    #[error("{0}")]
    Conflict(String),
}

/// The tool's result type.
pub type CliResult<T = ()> = Result<T, CliError>;
