//! `megabatch._megabatch`: the extension module of the `megabatch` Python package.
//!
//! The pure-Python package (`python/megabatch/`) wraps these in numpy.linalg conventions and
//! documents the public API; this module holds what must be native:
//! - `array.rs`: arrays in through DLPack (CPU only in this release), `layout.rs` their strides;
//! - `backend.rs`: the process's one [`megabatch::Auto`] and `backend=` names; `info.rs`;
//! - `plan.rs`: `EighPlan`, `exec.rs` its call (GIL released), `transpose.rs` the `uplo` copy;
//! - `reduce.rs`: the reductions (whole arrays, over rows, over segments);
//! - `attention.rs`: block-sparse attention over a FlexAttention `BlockMask`'s lists and bits;
//! - `errors.rs`: the crate's errors as Python exceptions, `LinAlgError`;
//! - `trace.rs`: the pointers the last call read and wrote (the zero-copy tests' hook).

mod array;
mod attention;
mod backend;
mod dtype;
mod errors;
mod exec;
mod info;
mod layout;
mod oneshot;
mod plan;
mod reduce;
mod trace;
mod transpose;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _megabatch(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LinAlgError", errors::linalg_error_type(py)?)?;
    m.add_class::<plan::EighPlan>()?;
    m.add_function(wrap_pyfunction!(oneshot::eigh, m)?)?;
    m.add_function(wrap_pyfunction!(oneshot::eigh_ragged, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce_rows, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce_segments, m)?)?;
    m.add_function(wrap_pyfunction!(attention::attention, m)?)?;
    m.add_function(wrap_pyfunction!(info::info, m)?)?;
    m.add_function(wrap_pyfunction!(trace::last_pointers, m)?)?;
    Ok(())
}
