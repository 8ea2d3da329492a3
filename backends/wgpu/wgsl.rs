//! What the wgpu shader variants share: the WGSL sources (`shaders/`) and the element types
//! their headers name. WGSL has no generics, so each variant (dtype, matrix order, team shape,
//! head dimension) is the shader text with a header of `alias` and `const` declarations in
//! front, built by the variant types of `eigh_kernel.rs`, `reduce_kernel.rs` and
//! `attention_kernel.rs`; `tests/kernels/wgpu.rs` validates each with naga, without an adapter.

/// What both eigensolver shaders start with (`shaders/eigh/common.wgsl`): bindings, matrix
/// lookup, input test, exponent.
pub const EIGH_COMMON: &str = include_str!("../../shaders/eigh/common.wgsl");
/// The Jacobi eigensolver shader (`shaders/eigh/jacobi.wgsl`).
pub const EIGH_JACOBI: &str = include_str!("../../shaders/eigh/jacobi.wgsl");
/// The Householder + QL eigensolver shader with A and Q in workgroup memory
/// (`shaders/eigh/block.wgsl`, the algorithm of CUDA's `kernels/eigh/block.cu`).
pub const EIGH_TRIDIAG: &str = include_str!("../../shaders/eigh/block.wgsl");
/// The same with rows in function-scope arrays (`shaders/eigh/warp.wgsl`, the layout of CUDA's
/// `kernels/eigh/warp.cu`).
pub const EIGH_TRIDIAG_ROWS: &str = include_str!("../../shaders/eigh/warp.wgsl");
/// The tridiagonal shader in the subgroup layout (`shaders/eigh/subgroup.wgsl`: rows in
/// private arrays, exchanged by subgroup operations; CUDA's `kernels/eigh/warp.cu` structure).
pub const EIGH_SUBGROUP: &str = include_str!("../../shaders/eigh/subgroup.wgsl");
/// The tridiagonal shader with A and Q in storage memory (`shaders/eigh/global.wgsl`: a
/// workgroup per matrix, only vectors in workgroup memory; orders that do not fit it).
pub const EIGH_GLOBAL: &str = include_str!("../../shaders/eigh/global.wgsl");
/// The QL the workgroup tridiagonal shaders and the global one run (`shaders/eigh/ql.wgsl`).
pub const EIGH_QL: &str = include_str!("../../shaders/eigh/ql.wgsl");
/// The reduction shader (`shaders/reduce.wgsl`).
pub const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
/// The block-sparse attention shader (`shaders/attention.wgsl`).
pub const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");

/// A floating-point type as WGSL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WgslFloat {
    /// `f16` (needs `enable f16;` and the adapter's `SHADER_F16`).
    F16,
    /// `f32`, always available.
    F32,
    /// `f64` (a naga extension; needs the adapter's `SHADER_F64`).
    F64,
}

impl WgslFloat {
    /// The WGSL type name.
    pub fn name(self) -> &'static str {
        match self {
            WgslFloat::F16 => "f16",
            WgslFloat::F32 => "f32",
            WgslFloat::F64 => "f64",
        }
    }

    /// Size in bytes.
    pub fn size(self) -> usize {
        match self {
            WgslFloat::F16 => 2,
            WgslFloat::F32 => 4,
            WgslFloat::F64 => 8,
        }
    }

    /// The type of a megabatch element: `f32` -> F32, `f64` -> F64, `f16` -> F16; `None`
    /// for other types.
    pub fn of<T: 'static>() -> Option<Self> {
        use std::any::TypeId;
        let id = TypeId::of::<T>();
        if id == TypeId::of::<f32>() {
            Some(WgslFloat::F32)
        } else if id == TypeId::of::<f64>() {
            Some(WgslFloat::F64)
        } else if id == TypeId::of::<half::f16>() {
            Some(WgslFloat::F16)
        } else {
            None
        }
    }

    pub(super) fn header(self, out: &mut String) {
        if self == WgslFloat::F16 {
            out.push_str("enable f16;\n");
        }
    }

    /// Half the unit roundoff (LAPACK's `eps`).
    pub(super) fn eps(self) -> &'static str {
        match self {
            WgslFloat::F16 => "4.8828125e-4",
            WgslFloat::F32 => "5.9604644775390625e-8",
            WgslFloat::F64 => "1.1102230246251565e-16",
        }
    }

    /// Machine epsilon (the spacing of floats at 1): QL's deflation test, as JAMA's tql2.
    pub(super) fn ulp(self) -> &'static str {
        match self {
            WgslFloat::F16 => "9.765625e-4",
            WgslFloat::F32 => "1.1920928955078125e-7",
            WgslFloat::F64 => "2.220446049250313e-16",
        }
    }

    /// 1 / sqrt(machine epsilon): above it, p^2 + 1 rounds to p^2 (naga cannot fold sqrt).
    pub(super) fn rsqrt_ulp(self) -> &'static str {
        match self {
            WgslFloat::F16 => "32.0",
            WgslFloat::F32 => "2896.309375740099",
            WgslFloat::F64 => "67108864.0",
        }
    }

    /// Smallest normal number (LAPACK's `safmin`).
    pub(super) fn safe_min(self) -> &'static str {
        match self {
            WgslFloat::F16 => "6.103515625e-5",
            WgslFloat::F32 => "1.1754943508222875e-38",
            WgslFloat::F64 => "2.2250738585072014e-308",
        }
    }

    pub(super) fn finite_max(self) -> &'static str {
        match self {
            WgslFloat::F16 => "65504.0",
            WgslFloat::F32 => "3.4028234663852886e38",
            WgslFloat::F64 => "1.7976931348623157e308",
        }
    }
}
