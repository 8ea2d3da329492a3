//! The subgroup layout of the wgpu eigh (`shaders/eigh/subgroup.wgsl`, issue 26 step 4): one
//! matrix per subgroup, rows of A and Q in each invocation's own arrays, exchanged by subgroup
//! shuffles and reductions instead of workgroup memory. Taken only on adapters with
//! `Features::SUBGROUP` (see [`SubgroupSizes`]); elsewhere the workgroup layouts stay.

use std::fmt::Write;

use super::wgsl::{WgslFloat, EIGH_COMMON, EIGH_SUBGROUP};

/// Largest order the subgroup layout takes: the register budget of the CUDA warp classes it
/// follows (one or two rows per lane on a 32-wide subgroup).
pub const SUBGROUP_MAX_ORDER: usize = 64;

/// Most rows one invocation holds (a subgroup of `min` lanes holds `nmax / min` rows a lane):
/// beyond 8 rows of A and Q a lane's private arrays are too large to be worth it (and an
/// adapter with 4-wide subgroups keeps the workgroup layouts above order 32).
pub const SUBGROUP_MAX_ROWS_PER_LANE: usize = 8;

/// Invocations per workgroup of the subgroup shader, at least: several subgroups of a matrix
/// each; raised to the adapter's largest subgroup where that is wider.
pub const SUBGROUP_WORKGROUP: usize = 64;

/// The subgroup sizes an adapter may run a compute shader with (`AdapterInfo::subgroup_min_size`
/// and `subgroup_max_size`; 32 and 32 on NVIDIA, 8 and 8 on lavapipe with 256-bit vectors).
/// The shader reads the real size at run time (`subgroup_size`); the host sizes the rows per
/// invocation for `min` and the matrices per workgroup for `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubgroupSizes {
    /// Smallest subgroup, in invocations (a power of two, at least 4).
    pub min: usize,
    /// Largest subgroup, in invocations (a power of two, at most 128).
    pub max: usize,
}

/// One specialisation of the subgroup eigh shader: matrices of order up to `nmax`, each on one
/// subgroup, `rows_per_lane` rows of A (and Q) per invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighSubgroupShader {
    /// Element type (F32 or F64).
    pub dtype: WgslFloat,
    /// Largest order of the dispatch (at least 2).
    pub nmax: usize,
    /// Rows per invocation: `nmax / sizes.min`, rounded up.
    pub rows_per_lane: usize,
    /// Invocations per workgroup: [`SUBGROUP_WORKGROUP`] or the largest subgroup.
    pub workgroup: usize,
    /// Matrices per workgroup the host counts on: `workgroup / sizes.max` (the shader takes
    /// `workgroup / subgroup_size`, at least as many, and strides over the rest).
    pub teams: usize,
    /// Accumulate eigenvectors.
    pub vectors: bool,
}

impl EighSubgroupShader {
    /// The variant for matrices of order up to `n` on an adapter with subgroups of `sizes`
    /// and at most `max_invocations` invocations per workgroup, or `None` when the layout does
    /// not apply: `n` above [`SUBGROUP_MAX_ORDER`], more than [`SUBGROUP_MAX_ROWS_PER_LANE`]
    /// rows per invocation, or a workgroup the adapter does not allow.
    pub fn for_order(
        dtype: WgslFloat,
        n: usize,
        vectors: bool,
        sizes: SubgroupSizes,
        max_invocations: usize,
    ) -> Option<Self> {
        let nmax = n.max(2);
        if n > SUBGROUP_MAX_ORDER || sizes.min == 0 || sizes.max < sizes.min {
            return None;
        }
        let rows_per_lane = nmax.div_ceil(sizes.min);
        let workgroup = SUBGROUP_WORKGROUP.max(sizes.max);
        (rows_per_lane <= SUBGROUP_MAX_ROWS_PER_LANE && workgroup <= max_invocations).then_some(
            Self {
                dtype,
                nmax,
                rows_per_lane,
                workgroup,
                teams: workgroup / sizes.max,
                vectors,
            },
        )
    }

    /// Invocations per workgroup.
    pub fn workgroup_size(&self) -> usize {
        self.workgroup
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!(
            "eigh_subgroup/{}/n{}/r{}/w{}/v{}",
            self.dtype.name(),
            self.nmax,
            self.rows_per_lane,
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
        for (name, value) in [
            ("NMAX", self.nmax),
            ("RPI", self.rows_per_lane),
            ("WG", self.workgroup),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        let _ = writeln!(s, "const VECTORS: bool = {};", self.vectors);
        let _ = writeln!(s, "const ULP: R = R({});", d.ulp());
        let _ = writeln!(s, "const RSQRT_ULP: R = R({});", d.rsqrt_ulp());
        let _ = writeln!(s, "const SAFE_MIN: R = R({});", d.safe_min());
        let _ = writeln!(s, "const FINITE_MAX: R = R({});", d.finite_max());
        s.push_str(EIGH_COMMON);
        s.push_str(EIGH_SUBGROUP);
        s
    }
}
