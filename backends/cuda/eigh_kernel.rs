//! One compiled eigh kernel: a size class (`eigh_classes/`), a dtype and values or vectors.
//! The warp and block classes keep their row length and thread count as compile-time
//! constants (register arrays), so each (class, dtype, values/vectors) is its own NVRTC
//! program, compiled on first use and cached in the process and on disk, like the attention
//! variants; Jacobi lives in the main translation unit.

use super::eigh_classes::EighClass;
use super::nvrtc::{compile_source, KERNEL_SOURCES};

/// One compiled eigh kernel: a size class, a dtype and whether it accumulates eigenvectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighKernel {
    /// The size class.
    pub class: EighClass,
    /// `"f32"` or `"f64"`.
    pub dtype: &'static str,
    /// Eigenvectors too (false: values only).
    pub vectors: bool,
}

impl EighKernel {
    /// The entry point's name, e.g. `eigh_warp_f64_g16_r12_v`.
    pub fn name(&self) -> String {
        self.class.desc().name(self)
    }

    /// The program's entry points in launch order: the name itself, or for `Split` the
    /// name with `_reduce`, `_chains` and (with vectors) `_replay`, for `DivideConquer` with
    /// `_reduce` and `_solve`, `_back` (vectors) or `_values`.
    pub fn entries(&self) -> Vec<String> {
        self.class.desc().entries(self)
    }

    /// The NVRTC program of this variant: the shared headers, the class's source, and one
    /// instantiation line.
    ///
    /// # Panics
    /// For Jacobi, which is in the main translation unit ([`KERNEL_SOURCES`]).
    pub fn source(&self) -> String {
        self.class
            .desc()
            .program(self)
            .expect("Jacobi is in the main translation unit")
    }

    /// Compiles this variant for `arch` (e.g. `"sm_90"`), cached as [`compile_source`] caches.
    ///
    /// # Errors
    /// [`crate::Error::Device`] when libnvrtc is missing or the compile fails (with the log).
    pub fn compile(&self, arch: &str) -> crate::Result<std::sync::Arc<Vec<u8>>> {
        compile_source(arch, &self.source())
    }

    /// Every variant the backend compiles as its own program (for the NVRTC test).
    pub fn all() -> Vec<Self> {
        super::eigh_classes::eigh_layout_checks()
            .into_iter()
            .map(|(kernel, _)| kernel)
            .filter(|k| k.class.desc().program(k).is_some())
            .collect()
    }

    /// `v` with vectors, `w` values only: the last part of the entry points' names.
    pub(crate) fn suffix(&self) -> &'static str {
        if self.vectors {
            "v"
        } else {
            "w"
        }
    }

    /// The C++ element type.
    pub(crate) fn c_type(&self) -> &'static str {
        if self.dtype == "f64" {
            "double"
        } else {
            "float"
        }
    }

    /// Bytes per element.
    pub(crate) fn elem(&self) -> usize {
        if self.dtype == "f64" {
            8
        } else {
            4
        }
    }
}

/// The headers every class program starts with: the shared `common.cuh` files and the
/// tridiagonal QL (`kernels/eigh/ql.cuh`).
pub(crate) fn common_headers() -> String {
    let mut s = String::new();
    for (name, text) in KERNEL_SOURCES
        .iter()
        .filter(|(name, _)| name.ends_with("common.cuh"))
    {
        s.push_str(&format!("// ---- {name}\n{text}\n"));
    }
    s.push_str(EIGH_QL_SOURCE);
    s
}

/// The line that instantiates a class's kernel macro, e.g.
/// `MB_EIGH_WARP_KERNEL(eigh_warp_f64_g16_r12_v, double, 16, 12, true)`.
pub(crate) fn instantiate(macro_name: &str, kernel: &EighKernel, name: &str, args: &str) -> String {
    format!(
        "\n{macro_name}({name}, {}, {args}, {})\n",
        kernel.c_type(),
        kernel.vectors
    )
}

/// `kernels/eigh/ql.cuh`: the tridiagonal QL shared by the warp and block classes.
pub const EIGH_QL_SOURCE: &str = include_str!("../../kernels/eigh/ql.cuh");
/// `kernels/eigh/warp.cu`.
pub const EIGH_WARP_SOURCE: &str = include_str!("../../kernels/eigh/warp.cu");
/// `kernels/eigh/chains.cu` (after warp.cu, whose reduction it shares).
pub const EIGH_CHAINS_SOURCE: &str = include_str!("../../kernels/eigh/chains.cu");
/// `kernels/eigh/block.cu`.
pub const EIGH_BLOCK_SOURCE: &str = include_str!("../../kernels/eigh/block.cu");
/// `kernels/eigh/split.cu` (after block.cu, whose reduction it runs).
pub const EIGH_SPLIT_SOURCE: &str = include_str!("../../kernels/eigh/split.cu");
/// `kernels/eigh/dc.cu` (after block.cu, whose block reductions it uses).
pub const EIGH_DC_SOURCE: &str = include_str!("../../kernels/eigh/dc.cu");
