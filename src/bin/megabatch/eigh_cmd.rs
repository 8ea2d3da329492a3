//! `megabatch eigh`: eigendecomposition of the matrices in a `.npy` file.

use std::path::PathBuf;

use megabatch::{BatchedEigh, EighSpec, Real, Residency};
use npyz::AutoSerialize;

use crate::npy::{self, Array, FloatArray};
use crate::outputs::{Output, Outputs};
use crate::timing::auto_for;
use crate::{BackendArg, CliError, CliResult};

/// Arguments of `megabatch eigh`.
#[derive(clap::Args)]
pub struct EighArgs {
    /// Symmetric matrices, float32 or float64, shape [..., n, n] (C order; the lower triangle
    /// is read). Leading dimensions are the batch.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the eigenvalues, ascending, shape [..., n] (default: print them, one
    /// matrix per line).
    #[arg(long)]
    values: Option<PathBuf>,
    /// Where to write the eigenvectors as columns, shape [..., n, n] (as numpy.linalg.eigh).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Print Auto's predictions and choice to stderr.
    #[arg(long)]
    explain: bool,
}

/// Runs `megabatch eigh`.
pub fn run(args: &EighArgs) -> CliResult {
    let mut outputs = Outputs::new();
    outputs.input("--input", &args.input);
    let values = args
        .values
        .as_deref()
        .map(|p| outputs.add("--values", p))
        .transpose()?;
    let vectors = args
        .vectors
        .as_deref()
        .map(|p| outputs.add("--vectors", p))
        .transpose()?;
    let targets = Targets { values, vectors };
    match npy::read_float(&args.input)? {
        FloatArray::F32(a) => solve(args, &outputs, targets, a)?,
        FloatArray::F64(a) => solve(args, &outputs, targets, a)?,
        other => {
            return Err(CliError::Usage(format!(
                "{}: eigh reads float32 or float64, not {}",
                args.input.display(),
                other.dtype()
            )))
        }
    }
    outputs.commit()
}

/// The registered outputs of a run.
struct Targets {
    values: Option<Output>,
    vectors: Option<Output>,
}

fn solve<T: Real + AutoSerialize>(
    args: &EighArgs,
    outputs: &Outputs,
    targets: Targets,
    a: Array<T>,
) -> CliResult {
    let (batch_dims, n) = match a.shape.as_slice() {
        [lead @ .., r, c] if r == c => (lead.to_vec(), *r),
        shape => {
            return Err(CliError::Usage(format!(
                "{}: shape {shape:?} is not [..., n, n]",
                args.input.display()
            )))
        }
    };
    // The reader checked that the whole shape's element count fits; so does the batch's.
    let batch = npy::element_count(&batch_dims).unwrap_or(0);
    let with_vectors = targets.vectors.is_some();
    let mut w = Vec::new();
    let mut v = Vec::new();
    // An empty stack (or 0 x 0 matrices) has empty results, as in NumPy, whatever the other
    // dimensions: nothing to plan, however large n or the batch dimensions are.
    if a.data.is_empty() {
        if args.explain {
            eprintln!("nothing to compute: the input has no elements");
        }
    } else {
        let spec = EighSpec::uniform(n, batch).with_vectors(with_vectors);
        let auto = auto_for(&megabatch::Auto::new()?, args.backend)?;
        if args.explain {
            eprintln!("{}", auto.explain_eigh::<T>(&spec, Residency::Host));
        }
        w = vec![T::zero(); n * batch];
        v = vec![T::zero(); if with_vectors { n * n * batch } else { 0 }];
        let mut plan = auto.plan_eigh(&spec)?;
        let v_out = with_vectors.then_some(&mut v[..]);
        auto.eigh_host(&mut plan, &a.data, &mut w, v_out)?;
    }
    let w_shape: Vec<usize> = batch_dims.iter().copied().chain([n]).collect();
    match targets.values {
        Some(out) => npy::write(outputs.temp(out), &w_shape, &w)?,
        None => print_values(&w, n),
    }
    if let Some(out) = targets.vectors {
        npy::write(outputs.temp(out), &a.shape, &v)?;
    }
    Ok(())
}

/// The eigenvalues on stdout, one matrix per line.
fn print_values<T: Real>(w: &[T], n: usize) {
    for row in w.chunks(n.max(1)) {
        let text: Vec<String> = row.iter().map(|x| format!("{x:?}")).collect();
        println!("{}", text.join(" "));
    }
}
