//! Eigh on the CPU: accuracy on LAPACK's matrix types, argument errors, properties.

mod accuracy;
mod errors;
mod properties;
