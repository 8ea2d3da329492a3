//! `megabatch eigh`: eigendecomposition of the matrices in a `.npy` file.

use std::path::PathBuf;

use megabatch::{BatchedEigh, EighSpec, Real, Residency};
use npyz::AutoSerialize;

use crate::npy::{self, Array, FloatArray};
use crate::timing::auto_for;
use crate::{BackendArg, CliError, CliResult};

/// Arguments of `megabatch eigh`.
#[derive(clap::Args)]
pub struct EighArgs {
    /// Symmetric matrices, float32 or float64, shape [..., n, n] (C order; the lower triangle
    /// is read). Leading dimensions are the batch.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the eigenvalues, ascending, shape [..., n] (default: print them).
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

pub fn run(args: &EighArgs) -> CliResult {
    match npy::read_float(&args.input)? {
        FloatArray::F32(a) => solve(args, a),
        FloatArray::F64(a) => solve(args, a),
        other => Err(CliError::Usage(format!(
            "{}: eigh reads float32 or float64, not {}",
            args.input.display(),
            other.dtype()
        ))),
    }
}

fn solve<T: Real + AutoSerialize>(args: &EighArgs, a: Array<T>) -> CliResult {
    let (batch_dims, n) = match a.shape.as_slice() {
        [lead @ .., r, c] if r == c => (lead.to_vec(), *r),
        shape => {
            return Err(CliError::Usage(format!(
                "{}: shape {shape:?} is not [..., n, n]",
                args.input.display()
            )))
        }
    };
    let batch: usize = batch_dims.iter().product();
    let spec = EighSpec::uniform(n, batch).with_vectors(args.vectors.is_some());
    let auto = auto_for(&megabatch::Auto::new()?, args.backend)?;
    if args.explain {
        eprintln!("{}", auto.explain_eigh::<T>(&spec, Residency::Host));
    }
    let mut w = vec![T::zero(); n * batch];
    let mut v = vec![T::zero(); if spec.vectors() { n * n * batch } else { 0 }];
    let mut plan = BatchedEigh::<T>::plan_eigh(&auto, &spec)?;
    let v_out = spec.vectors().then_some(&mut v[..]);
    auto.eigh_host(&mut plan, &a.data, &mut w, v_out)?;
    let w_shape: Vec<usize> = batch_dims.iter().copied().chain([n]).collect();
    match &args.values {
        Some(path) => npy::write(path, &w_shape, &w)?,
        None if args.vectors.is_none() => {
            for row in w.chunks(n.max(1)) {
                let text: Vec<String> = row.iter().map(|x| format!("{x:?}")).collect();
                println!("{}", text.join(" "));
            }
        }
        None => {}
    }
    if let Some(path) = &args.vectors {
        npy::write(path, &a.shape, &v)?;
    }
    Ok(())
}
