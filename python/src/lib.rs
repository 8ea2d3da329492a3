//! `megabatch._megabatch`: the extension module of the `megabatch` Python package.
//!
//! The pure-Python package (`python/megabatch/`) wraps these in numpy.linalg conventions and
//! documents the public API; this module holds what must be native:
//! - `array.rs`: CPU arrays in through DLPack, `layout.rs` their strides;
//! - `cuda.rs`: CUDA arrays in through DLPack on the caller's stream, kept alive until the
//!   queued work finished; `cache.rs` the CUDA plans of one-shot calls;
//! - `backend.rs`: the process's one [`megabatch::Auto`] and `backend=` names; `info.rs`;
//! - `plan.rs`: `EighPlan`, `exec.rs` its call (GIL released), `transpose.rs` the `uplo` copy;
//! - `reduce.rs`: the reductions (whole arrays, over rows, over segments);
//! - `attention.rs`: block-sparse attention over a FlexAttention `BlockMask`'s lists and bits;
//! - `errors.rs`: the crate's errors as Python exceptions, `LinAlgError`;
//! - `trace.rs`: the pointers the last call read and wrote (the zero-copy tests' hook).

mod array;
mod attention;
mod backend;
mod cache;
mod cuda;
mod dtype;
mod errors;
mod exec;
mod info;
mod layout;
mod oneshot;
mod owned;
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
    m.add_class::<reduce::ReducePlan>()?;
    m.add_class::<attention::AttentionPlan>()?;
    m.add_function(wrap_pyfunction!(oneshot::eigh, m)?)?;
    m.add_function(wrap_pyfunction!(oneshot::eigh_ragged, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce_rows, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::reduce_segments, m)?)?;
    m.add_function(wrap_pyfunction!(attention::attention, m)?)?;
    m.add_function(wrap_pyfunction!(info::info, m)?)?;
    m.add_function(wrap_pyfunction!(info::calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(trace::last_pointers, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::py_synchronize, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::py_pending, m)?)?;
    Ok(())
}
