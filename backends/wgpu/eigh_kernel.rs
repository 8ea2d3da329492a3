//! The shader variants of the wgpu eigh (`shaders/eigh/`): which shader takes a bucket of
//! matrices of order up to `n`, with what team shape and workgroup memory.
//!
//! Shaders, named after the CUDA eigh kernel of the same algorithm (`kernels/eigh/`):
//! - `block.wgsl` ([`EighTridiagShader`] with `private_rows: false`): CUDA's block classes'
//!   algorithm (`kernels/eigh/block.cu`): A and Q in workgroup memory, LAPACK dsytd2, Q formed
//!   in place (dorg2r), EISPACK tql2 on one invocation that hands each chase's rotations to the
//!   row owners; a team of invocations per matrix, teams of small matrices packed into one
//!   workgroup.
//! - `warp.wgsl` (`private_rows: true`): CUDA's warp classes' layout (`kernels/eigh/warp.cu`):
//!   each invocation's row of A and of Q in its own arrays, Q accumulated forwards; the QL is
//!   block.wgsl's, since WGSL's subgroup operations are optional and the team is a slice of
//!   a workgroup rather than a subgroup.
//! - `subgroup.wgsl` (`EighSubgroupShader`, in `eigh_subgroup.rs`): the warp classes'
//!   structure with the subgroup as the warp: rows in private arrays exchanged by subgroup
//!   operations, no workgroup memory, on adapters with `Features::SUBGROUP`.
//! - `global.wgsl` (`EighGlobalShader`, in `eigh_global.rs`): block.wgsl's algorithm with A and
//!   Q in storage memory, a workgroup per matrix, for the orders whose matrix does not fit
//!   workgroup memory (those of CUDA's `dc` class, without its divide and conquer).
//! - `jacobi.wgsl` ([`EighShader`]): CUDA's Jacobi kernel (`kernels/eigh/jacobi.cu`).
//! - `common.wgsl` and `ql.wgsl`: what the others share, as `common.cuh` and `ql.cuh`.
//!
//! CUDA's chains and split classes (one QL chain per lane, several launches per class) have no
//! wgpu shader. The Rust names ([`EighTridiagShader`], `WgpuEighAlgorithm::{TridiagWorkgroup,
//! TridiagRows}`) and the pipeline keys (`eigh_tridiag/...`, `eigh_tridiag_rows/...`) stay as
//! they were: tests and the recorded benchmarks (`docs/benchmarks/eigh-wgpu-h200.md`) name them.

use std::fmt::Write;

use super::wgsl::{WgslFloat, EIGH_COMMON, EIGH_JACOBI, EIGH_QL, EIGH_TRIDIAG, EIGH_TRIDIAG_ROWS};

/// Threads that share one matrix at most; larger orders run one matrix per workgroup.
pub const EIGH_MAX_TEAM: usize = 256;
/// Smallest workgroup: teams of small matrices are packed up to this many threads.
pub const EIGH_MIN_WORKGROUP: usize = 64;

/// One specialisation of the Jacobi shader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighShader {
    /// Element type (F32 or F64).
    pub dtype: WgslFloat,
    /// Largest order of the dispatch, rounded up to even.
    pub nmax: usize,
    /// Threads per matrix.
    pub team: usize,
    /// Matrices per workgroup (1 when anything lives in the storage workspace).
    pub teams: usize,
    /// Accumulate eigenvectors.
    pub vectors: bool,
    /// A lives in workgroup memory (else in a storage workspace, one slot per workgroup).
    pub in_workgroup: bool,
    /// V lives in workgroup memory too (else in the storage workspace: the rotation passes
    /// read A's pairs from every thread, V's rows only from the thread that owns them, so V
    /// is the one to move out first).
    pub vectors_in_workgroup: bool,
}

impl EighShader {
    /// The variant for matrices of order up to `n`, preferring workgroup memory when it fits
    /// in `max_workgroup_bytes`: A and V, else A alone, else neither.
    pub fn for_order(
        dtype: WgslFloat,
        n: usize,
        vectors: bool,
        max_workgroup_bytes: usize,
    ) -> Self {
        let nmax = n.max(2).div_ceil(2) * 2;
        // A rotation pass has nmax/2 * nmax items, and each round three workgroup barriers.
        // Up to order 16 a thread per row, several matrices per workgroup; above, four per
        // row (capped at 256): measured 2.6-3.4x faster at n = 32 and 1.4-1.7x at n = 64 on
        // an H100 than one per row, and fewer loop trips per invocation keep lavapipe under
        // its loop limit (see `LAVAPIPE_EIGH_MAX_ORDER`).
        let team = if nmax <= 16 {
            nmax.next_power_of_two().max(4)
        } else {
            (4 * nmax.next_power_of_two()).min(EIGH_MAX_TEAM)
        };
        let mut shader = Self {
            dtype,
            nmax,
            team,
            teams: (EIGH_MIN_WORKGROUP / team).max(1),
            vectors,
            in_workgroup: true,
            vectors_in_workgroup: vectors,
        };
        while shader.workgroup_bytes() > max_workgroup_bytes && shader.teams > 1 {
            shader.teams /= 2;
        }
        if shader.workgroup_bytes() > max_workgroup_bytes && vectors {
            shader.vectors_in_workgroup = false;
        }
        if shader.workgroup_bytes() > max_workgroup_bytes {
            shader.in_workgroup = false;
            shader.vectors_in_workgroup = false;
        }
        shader
    }

    /// Elements of one matrix, stride `nmax + 1`.
    pub fn matrix_len(&self) -> usize {
        self.nmax * (self.nmax + 1)
    }

    /// Elements each team keeps in workgroup memory (A and/or V).
    pub fn workgroup_slot_len(&self) -> usize {
        let m = self.matrix_len();
        usize::from(self.in_workgroup) * m
            + usize::from(self.vectors && self.vectors_in_workgroup) * m
    }

    /// Elements each workgroup keeps in the storage workspace (A and/or V; 0: none).
    pub fn storage_slot_len(&self) -> usize {
        let m = self.matrix_len();
        usize::from(!self.in_workgroup) * m
            + usize::from(self.vectors && !self.vectors_in_workgroup) * m
    }

    /// Workgroup memory the variant declares, in bytes.
    pub fn workgroup_bytes(&self) -> usize {
        let r = self.dtype.size();
        let half = self.nmax / 2;
        let sh = self.sh_len();
        let reals = sh + self.teams * (4 * half + self.nmax) + self.team * self.teams;
        let words = self.teams * (self.nmax + half + 3) + 1;
        reals * r + words * 4
    }

    fn sh_len(&self) -> usize {
        (self.teams * self.workgroup_slot_len()).max(1)
    }

    /// Threads per workgroup.
    pub fn workgroup_size(&self) -> usize {
        self.team * self.teams
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!(
            "eigh_jacobi/{}/n{}/t{}x{}/v{}/wg{}{}",
            self.dtype.name(),
            self.nmax,
            self.team,
            self.teams,
            u8::from(self.vectors),
            u8::from(self.in_workgroup),
            u8::from(self.vectors_in_workgroup)
        )
    }

    /// The complete WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        let d = self.dtype;
        d.header(&mut s);
        let tau_big = if d == WgslFloat::F64 { "1e150" } else { "1e18" };
        let _ = writeln!(s, "alias R = {};", d.name());
        for (name, value) in [
            ("NMAX", self.nmax),
            ("S", self.nmax + 1),
            ("HALF", self.nmax / 2),
            ("TEAM", self.team),
            ("TEAMS", self.teams),
            ("WG", self.workgroup_size()),
            ("SH_LEN", self.sh_len()),
            ("WG_SLOT", self.workgroup_slot_len()),
            ("ST_SLOT", self.storage_slot_len()),
            ("MAX_SWEEPS", 60),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        let _ = writeln!(s, "const VECTORS: bool = {};", self.vectors);
        let _ = writeln!(s, "const IN_WG: bool = {};", self.in_workgroup);
        let _ = writeln!(s, "const V_IN_WG: bool = {};", self.vectors_in_workgroup);
        let _ = writeln!(s, "const EPS: R = R({});", d.eps());
        let _ = writeln!(s, "const TAU_BIG: R = R({tau_big});");
        let _ = writeln!(s, "const FINITE_MAX: R = R({});", d.finite_max());
        s.push_str(EIGH_COMMON);
        s.push_str(EIGH_JACOBI);
        s
    }
}

/// Invocations of a workgroup of the tridiagonal shader: teams of small matrices are packed up
/// to this many.
pub const EIGH_TRIDIAG_WORKGROUP: usize = 64;

/// One specialisation of the Householder + implicit QL shaders: a team of `team` invocations
/// per matrix (one per row), `teams` matrices per workgroup. `private_rows: false`
/// (`shaders/eigh/block.wgsl`): A and Q in workgroup memory, the algorithm of the CUDA block
/// classes (LAPACK dsytd2 and dorg2r, EISPACK tql2 in JAMA's form); `true`
/// (`shaders/eigh/warp.wgsl`): each invocation's rows of A and Q in its own arrays,
/// Q accumulated forwards, the layout of the CUDA warp classes, so that workgroup memory holds
/// only vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EighTridiagShader {
    /// Element type (F32 or F64).
    pub dtype: WgslFloat,
    /// Largest order of the dispatch (at least 2).
    pub nmax: usize,
    /// Invocations per matrix: `nmax` rounded up to a power of two.
    pub team: usize,
    /// Matrices per workgroup.
    pub teams: usize,
    /// Accumulate eigenvectors.
    pub vectors: bool,
    /// Rows of A and Q in function-scope arrays (else in workgroup memory).
    pub private_rows: bool,
}

impl EighTridiagShader {
    /// The variant for matrices of order up to `n`, or `None` when one matrix does not fit in
    /// `max_workgroup_bytes` of workgroup memory or its team exceeds `max_invocations`.
    pub fn for_order(
        dtype: WgslFloat,
        n: usize,
        vectors: bool,
        private_rows: bool,
        max_workgroup_bytes: usize,
        max_invocations: usize,
    ) -> Option<Self> {
        let nmax = n.max(2);
        let team = nmax.next_power_of_two();
        let mut shader = Self {
            dtype,
            nmax,
            team,
            teams: (EIGH_TRIDIAG_WORKGROUP / team).max(1),
            vectors,
            private_rows,
        };
        while shader.workgroup_bytes() > max_workgroup_bytes && shader.teams > 1 {
            shader.teams /= 2;
        }
        (shader.workgroup_bytes() <= max_workgroup_bytes
            && shader.workgroup_size() <= max_invocations)
            .then_some(shader)
    }

    /// Row stride of A in workgroup memory: odd, so a column walk by consecutive invocations
    /// hits distinct banks.
    pub fn stride(&self) -> usize {
        self.nmax | 1
    }

    /// Workgroup memory the variant declares, in bytes.
    pub fn workgroup_bytes(&self) -> usize {
        let per_team = if self.private_rows {
            8 * self.nmax
        } else {
            self.nmax * self.stride() + 9 * self.nmax
        };
        let reals = self.teams * per_team + self.team * self.teams;
        let words = self.teams * (self.nmax + 4 + 2 + 1) + 1;
        reals * self.dtype.size() + words * 4
    }

    /// Invocations per workgroup.
    pub fn workgroup_size(&self) -> usize {
        self.team * self.teams
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!(
            "eigh_tridiag{}/{}/n{}/t{}x{}/v{}",
            if self.private_rows { "_rows" } else { "" },
            self.dtype.name(),
            self.nmax,
            self.team,
            self.teams,
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
            ("S", self.stride()),
            ("TEAM", self.team),
            ("TEAMS", self.teams),
            ("WG", self.workgroup_size()),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        let _ = writeln!(s, "const VECTORS: bool = {};", self.vectors);
        let _ = writeln!(s, "const ULP: R = R({});", d.ulp());
        let _ = writeln!(s, "const RSQRT_ULP: R = R({});", d.rsqrt_ulp());
        let _ = writeln!(s, "const SAFE_MIN: R = R({});", d.safe_min());
        let _ = writeln!(s, "const FINITE_MAX: R = R({});", d.finite_max());
        s.push_str(EIGH_COMMON);
        s.push_str(EIGH_QL);
        s.push_str(if self.private_rows {
            EIGH_TRIDIAG_ROWS
        } else {
            EIGH_TRIDIAG
        });
        s
    }
}
