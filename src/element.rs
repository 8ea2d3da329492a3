//! Element types: what a buffer may hold ([`Element`]) and what an eigensolver or a reduction
//! computes in ([`Real`]).

use std::fmt::Debug;

use bytemuck::Pod;
use num_traits::{Float, NumAssign};

/// A plain-old-data value that can live in a device buffer: copied bit for bit between host and
/// device memory (`bytemuck::Pod`), shared across threads, with a name for error messages.
pub trait Element: Pod + Send + Sync + Debug + PartialEq + 'static {
    /// The dtype's conventional name (`"f32"`, `"f64"`, ...), used in errors and benchmarks.
    const DTYPE: &'static str;
}

/// A real floating-point type an eigensolver computes in: `f32` or `f64` (IEEE 754 binary32 and
/// binary64). Sealed: the kernels rely on the exact rounding behaviour of these two types.
pub trait Real: Element + Float + NumAssign + sealed::Sealed {
    /// Unit roundoff `eps` as LAPACK's `dlamch('E')` (half the gap from 1.0 to the next float):
    /// 2^-24 for f32, 2^-53 for f64.
    const UNIT_ROUNDOFF: Self;
    /// Smallest positive normal number (`dlamch('S')`).
    const SAFE_MIN: Self;
    /// Converts an `f64` constant into this type, rounding to nearest.
    fn of(x: f64) -> Self;
    /// The value as an `f64` (exact for both types).
    fn to_f64_lossless(self) -> f64;
}

pub(crate) mod sealed {
    /// Also requires faer's scalar traits, so the CPU backend can hand these types to faer's
    /// self-adjoint eigensolver without naming faer in the public bounds.
    pub trait Sealed: faer::traits::RealField + faer::traits::ComplexField<Real = Self> {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Element for f32 {
    const DTYPE: &'static str = "f32";
}
impl Element for f64 {
    const DTYPE: &'static str = "f64";
}

impl Real for f32 {
    const UNIT_ROUNDOFF: Self = f32::EPSILON * 0.5;
    const SAFE_MIN: Self = f32::MIN_POSITIVE;
    fn of(x: f64) -> Self {
        x as f32
    }
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const UNIT_ROUNDOFF: Self = f64::EPSILON * 0.5;
    const SAFE_MIN: Self = f64::MIN_POSITIVE;
    fn of(x: f64) -> Self {
        x
    }
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
