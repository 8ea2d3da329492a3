//! Element types: what a buffer may hold ([`Element`]) and what an eigensolver or a reduction
//! computes in ([`Real`]).
//!
//! Buffers hold floats (`f32`, `f64`, `f16`, `bf16`) for the operations, and `i32` or `u32`
//! for integer data that travels with them: the per-matrix status of an eigh call
//! ([`crate::BatchedEigh::eigh_info`], `i32`), indices a user kernel computes. The operations
//! themselves take only the float types their traits name.

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

/// 32-bit signed integers: the eigh status codes ([`crate::EIGH_SOLVED`] and the others),
/// cuSOLVER's `info` type.
impl Element for i32 {
    const DTYPE: &'static str = "i32";
}
/// 32-bit unsigned integers (indices, counters, bit masks).
impl Element for u32 {
    const DTYPE: &'static str = "u32";
}

impl Element for half::f16 {
    const DTYPE: &'static str = "f16";
}
impl Element for half::bf16 {
    const DTYPE: &'static str = "bf16";
}

/// An input dtype a reduction reads, with the type it accumulates and returns in: `f32` and
/// `f64` accumulate in themselves, `f16` and `bf16` in `f32` (their own precision would lose
/// every digit of a long sum).
pub trait Reducible: Element {
    /// The accumulation and output type.
    type Acc: Real;
    /// The value in the accumulation type (exact for every supported pair).
    fn widen(self) -> Self::Acc;
}

impl Reducible for f32 {
    type Acc = f32;
    fn widen(self) -> f32 {
        self
    }
}
impl Reducible for f64 {
    type Acc = f64;
    fn widen(self) -> f64 {
        self
    }
}
impl Reducible for half::f16 {
    type Acc = f32;
    fn widen(self) -> f32 {
        self.to_f32()
    }
}
impl Reducible for half::bf16 {
    type Acc = f32;
    fn widen(self) -> f32 {
        self.to_f32()
    }
}
