//! The global-memory layout of the wgpu eigh (`shaders/eigh/global.wgsl`, issue 26 step 4):
//! Householder tridiagonalisation + implicit QL, the algorithm of the workgroup-memory
//! tridiagonal shaders, with A in a per-matrix slot of a storage workspace and Q in the output
//! `v`, one workgroup per matrix, only vectors of the matrix's order in workgroup memory. It
//! takes the orders whose matrix no longer fits workgroup memory (the role of the CUDA backend's
//! `dc` class, `kernels/eigh/dc.cu`, whose divide and conquer it does not port).
//!
//! The workspace holds one slot per matrix in flight: at most [`GLOBAL_WORKSPACE_BUDGET`] bytes
//! (or [`crate::backends::wgpu::Wgpu::set_eigh_workspace_budget`]'s), the adapter's largest
//! storage binding and largest buffer, and a bucket with more matrices than slots runs as
//! several dispatches (waves), each workgroup taking one matrix.

use std::fmt::Write;

use super::wgsl::{WgslFloat, EIGH_COMMON, EIGH_GLOBAL, EIGH_QL};
use crate::{Error, Result};

/// Largest order the global layout takes: the wgpu eigh's own limit
/// ([`crate::backends::wgpu::WGPU_EIGH_MAX_ORDER`]), wherever its vectors fit workgroup memory
/// (with 48 KiB: every order in f32, to 980 in f64), so that the parallel-order Jacobi shader
/// is left only below order 5 and where they do not fit. Chosen without a GPU measurement: the
/// layout does the O(n^3) work of the tridiagonal shaders (about 4/3 n^3 flops to reduce, 4/3
/// n^3 to form Q, a few n^3 for the QL's rotations) where Jacobi does several O(n^3) sweeps
/// over the same storage memory, and on an H200 Jacobi ran 1.7e3 f32 matrices/s at n = 128
/// while the workgroup-memory tridiagonal shader ran 5.1e4 at n = 96, 4.6x Jacobi's rate there
/// (docs/benchmarks/eigh-wgpu-h200.md). Tested on lavapipe up to its limit of 96.
pub const GLOBAL_MAX_ORDER: usize = 1024;

/// Default most bytes the global layout's workspace takes per plan (1 GiB). wgpu does not
/// report a device's memory, so unlike the CUDA `dc` class (an eighth of it) this is a fixed
/// figure: an eighth of an 8 GiB card, room for 2,048 f64 matrices of order 256 in flight, more
/// than an H100's multiprocessors hold at once (their workgroup memory keeps about three such
/// workgroups each).
pub const GLOBAL_WORKSPACE_BUDGET: usize = 1 << 30;

/// Fewest invocations per workgroup (one SIMD group on NVIDIA); the QL needs two at least.
pub const GLOBAL_MIN_WORKGROUP: usize = 32;
/// Most invocations per workgroup (WebGPU's guaranteed minimum of
/// `max_compute_invocations_per_workgroup`); larger orders give each invocation several columns.
pub const GLOBAL_MAX_WORKGROUP: usize = 256;

/// One specialisation of the global-memory eigh shader: matrices of order up to `nmax`, one
/// per workgroup of `workgroup` invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighGlobalShader {
    /// Element type (F32 or F64).
    pub dtype: WgslFloat,
    /// Largest order of the dispatch (at least 2).
    pub nmax: usize,
    /// Invocations per workgroup: `nmax` rounded up to a power of two, within
    /// [`GLOBAL_MIN_WORKGROUP`]..=[`GLOBAL_MAX_WORKGROUP`] and the adapter's limit (a column
    /// of the trailing block per invocation up to 256).
    pub workgroup: usize,
    /// Accumulate eigenvectors.
    pub vectors: bool,
}

impl EighGlobalShader {
    /// The variant for matrices of order up to `n`, or `None` when `n` exceeds
    /// [`GLOBAL_MAX_ORDER`], its vectors do not fit `max_workgroup_bytes` of workgroup memory,
    /// or the adapter allows fewer than [`GLOBAL_MIN_WORKGROUP`] invocations per workgroup.
    pub fn for_order(
        dtype: WgslFloat,
        n: usize,
        vectors: bool,
        max_workgroup_bytes: usize,
        max_invocations: usize,
    ) -> Option<Self> {
        let nmax = n.max(2);
        let top = GLOBAL_MAX_WORKGROUP.min(max_invocations);
        if n > GLOBAL_MAX_ORDER || top < GLOBAL_MIN_WORKGROUP {
            return None;
        }
        // The largest power of two within the adapter's limit, so that the tree reductions
        // halve cleanly.
        let top = 1 << top.ilog2();
        let shader = Self {
            dtype,
            nmax,
            workgroup: nmax.next_power_of_two().clamp(GLOBAL_MIN_WORKGROUP, top),
            vectors,
        };
        (shader.workgroup_bytes() <= max_workgroup_bytes).then_some(shader)
    }

    /// Workgroup memory the variant declares, in bytes: d, e and the four rotation vectors of
    /// `shaders/eigh/ql.wgsl` (one team), its reduction array, the three scalars of the next
    /// column, and ten words.
    pub fn workgroup_bytes(&self) -> usize {
        let reals = 6 * self.nmax + self.workgroup + 3;
        reals * self.dtype.size() + 10 * 4
    }

    /// Invocations per workgroup.
    pub fn workgroup_size(&self) -> usize {
        self.workgroup
    }

    /// Elements of one matrix's slot of the workspace (A at row stride `n`, then Q).
    pub fn slot_len(&self) -> usize {
        self.nmax * self.nmax
    }

    /// Matrices in flight for a bucket of `count` matrices of `elem`-byte elements: as many
    /// slots as fit `budget` bytes, the adapter's largest storage binding and buffer
    /// (`max_binding`, `max_buffer`) and one dispatch's workgroups (`max_workgroups`), at
    /// least one, at most `count`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when one slot exceeds the largest storage binding or buffer.
    pub fn slots(
        &self,
        count: usize,
        elem: usize,
        budget: usize,
        max_binding: u64,
        max_buffer: u64,
        max_workgroups: usize,
    ) -> Result<usize> {
        let slot = self.slot_len() * elem;
        let limit = usize::try_from(max_binding.min(max_buffer)).unwrap_or(usize::MAX);
        if slot > limit {
            return Err(Error::TooLarge(
                "one eigh workspace slot exceeds the adapter's largest storage binding",
            ));
        }
        Ok((budget.min(limit) / slot)
            .min(max_workgroups)
            .min(count)
            .max(1))
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!(
            "eigh_global/{}/n{}/w{}/v{}",
            self.dtype.name(),
            self.nmax,
            self.workgroup,
            u8::from(self.vectors)
        )
    }

    /// The complete WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        let d = self.dtype;
        d.header(&mut s);
        let _ = writeln!(s, "alias R = {};", d.name());
        for (name, value) in [("NMAX", self.nmax), ("TEAMS", 1), ("WG", self.workgroup)] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        let _ = writeln!(s, "const VECTORS: bool = {};", self.vectors);
        let _ = writeln!(s, "const ULP: R = R({});", d.ulp());
        let _ = writeln!(s, "const RSQRT_ULP: R = R({});", d.rsqrt_ulp());
        let _ = writeln!(s, "const SAFE_MIN: R = R({});", d.safe_min());
        let _ = writeln!(s, "const FINITE_MAX: R = R({});", d.finite_max());
        s.push_str(EIGH_COMMON);
        s.push_str(EIGH_QL);
        s.push_str(EIGH_GLOBAL);
        s
    }
}

/// The waves of a bucket of `count` matrices with `slots` matrices in flight: each wave's
/// first position in the bucket and its matrix count.
pub(crate) fn waves(count: usize, slots: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..count)
        .step_by(slots.max(1))
        .map(move |first| (first, slots.min(count - first)))
}
