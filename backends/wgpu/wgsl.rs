//! The WGSL shaders of the wgpu backend (`shaders/*.wgsl`) and the headers that specialise
//! them: WGSL has no generics, so each variant (dtype, matrix order, team shape) is the shader
//! text with a header of `alias` and `const` declarations in front. `tests/wgpu_shaders.rs`
//! validates each variant with naga, without an adapter.

use std::fmt::Write;

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
/// The QL both tridiagonal shaders run (`shaders/eigh/ql.wgsl`).
pub const EIGH_QL: &str = include_str!("../../shaders/eigh/ql.wgsl");
/// The reduction shader (`shaders/reduce.wgsl`).
pub const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
/// The block-sparse attention shader (`shaders/attention.wgsl`).
pub const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");

/// A floating-point type as WGSL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    fn header(self, out: &mut String) {
        if self == WgslFloat::F16 {
            out.push_str("enable f16;\n");
        }
    }

    /// Half the unit roundoff (LAPACK's `eps`).
    fn eps(self) -> &'static str {
        match self {
            WgslFloat::F16 => "4.8828125e-4",
            WgslFloat::F32 => "5.9604644775390625e-8",
            WgslFloat::F64 => "1.1102230246251565e-16",
        }
    }

    /// Machine epsilon (the spacing of floats at 1): QL's deflation test, as JAMA's tql2.
    fn ulp(self) -> &'static str {
        match self {
            WgslFloat::F16 => "9.765625e-4",
            WgslFloat::F32 => "1.1920928955078125e-7",
            WgslFloat::F64 => "2.220446049250313e-16",
        }
    }

    /// 1 / sqrt(machine epsilon): above it, p^2 + 1 rounds to p^2 (naga cannot fold sqrt).
    fn rsqrt_ulp(self) -> &'static str {
        match self {
            WgslFloat::F16 => "32.0",
            WgslFloat::F32 => "2896.309375740099",
            WgslFloat::F64 => "67108864.0",
        }
    }

    /// Smallest normal number (LAPACK's `safmin`).
    fn safe_min(self) -> &'static str {
        match self {
            WgslFloat::F16 => "6.103515625e-5",
            WgslFloat::F32 => "1.1754943508222875e-38",
            WgslFloat::F64 => "2.2250738585072014e-308",
        }
    }

    fn finite_max(self) -> &'static str {
        match self {
            WgslFloat::F16 => "65504.0",
            WgslFloat::F32 => "3.4028234663852886e38",
            WgslFloat::F64 => "1.7976931348623157e308",
        }
    }
}

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

/// Workgroup size of the reduction shader.
pub const REDUCE_WORKGROUP: usize = 256;
/// Row lanes per column in row reductions (so `REDUCE_WORKGROUP / 16` columns per workgroup).
pub const REDUCE_ROW_LANES: usize = 16;

/// What a reduction dispatch does to its input (the shader's `SHAPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceStage {
    /// Whole array, stage 1: per-workgroup partials (or the result, with one workgroup).
    Full,
    /// Whole array, stage 2: folds the partials.
    Final,
    /// One value per column of a row-major matrix.
    Rows,
    /// One value per segment.
    Segments,
}

/// One specialisation of the reduction shader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReduceShader {
    /// Element type.
    pub elem: WgslFloat,
    /// The shader's accumulating operation (`OP_*` in `shaders/reduce.wgsl`).
    pub op: u32,
    /// The finishing step (`FIN_*`).
    pub fin: u32,
    /// The stage.
    pub stage: ReduceStage,
}

impl ReduceShader {
    /// The dispatches of `spec` on elements `elem`: one, or two for whole arrays (stage 1 and
    /// the fold of its partials).
    pub fn for_spec(spec: &crate::ReduceSpec, elem: WgslFloat) -> Vec<Self> {
        use crate::{ReduceOp as F, ReduceSpec as S, RowReduceOp as R, SegmentReduceOp as G};
        let (op, fin, stage) = match spec {
            S::Full { op, .. } => {
                let (o, f) = match op {
                    F::Sum => (0, 0),
                    F::Mean => (0, 1),
                    F::Min => (2, 0),
                    F::Max => (3, 0),
                    F::MaxAbs => (4, 0),
                    F::Dot => (1, 0),
                    F::MaxAbsDiff => (5, 0),
                    F::MaxRelDiff => (6, 2),
                };
                (o, f, ReduceStage::Full)
            }
            S::Rows { op, .. } => {
                let (o, f) = match op {
                    R::Sum => (0, 0),
                    R::Mean => (0, 1),
                    R::WeightedMean => (7, 3),
                    R::Max => (3, 0),
                };
                (o, f, ReduceStage::Rows)
            }
            S::Segments { op, .. } => {
                let (o, f) = match op {
                    G::Sum => (0, 0),
                    G::Mean => (0, 1),
                    G::Max => (3, 0),
                    G::Min => (2, 0),
                    G::Dot => (1, 0),
                };
                (o, f, ReduceStage::Segments)
            }
        };
        let first = Self {
            elem,
            op,
            fin,
            stage,
        };
        if stage == ReduceStage::Full {
            vec![
                first,
                Self {
                    stage: ReduceStage::Final,
                    ..first
                },
            ]
        } else {
            vec![first]
        }
    }

    /// The accumulator type: f32 for f16 elements, else the element type.
    pub fn acc(&self) -> WgslFloat {
        match self.elem {
            WgslFloat::F16 => WgslFloat::F32,
            e => e,
        }
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!(
            "reduce/{}/op{}/fin{}/{:?}",
            self.elem.name(),
            self.op,
            self.fin,
            self.stage
        )
    }

    /// The complete WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        self.elem.header(&mut s);
        let acc = self.acc();
        let tiny = match acc {
            WgslFloat::F64 => "2.2250738585072014e-308",
            _ => "1.1754943508222875e-38",
        };
        let _ = writeln!(s, "alias T = {};", self.elem.name());
        let _ = writeln!(s, "alias A = {};", acc.name());
        let stage = match self.stage {
            ReduceStage::Full => 0,
            ReduceStage::Final => 1,
            ReduceStage::Rows => 2,
            ReduceStage::Segments => 3,
        };
        for (name, value) in [
            ("OP", self.op as usize),
            ("FIN", self.fin as usize),
            ("SHAPE", stage),
            ("WG", REDUCE_WORKGROUP),
            ("ROW_LANES", REDUCE_ROW_LANES),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        let _ = writeln!(s, "const TINY = {tiny};");
        let _ = writeln!(s, "const FINITE_MAX = {};", acc.finite_max());
        s.push_str(REDUCE);
        s
    }
}

/// Invocations per workgroup of the attention shader.
pub const ATTENTION_WORKGROUP: usize = 128;

/// One specialisation of the attention shader: element type and head dimension fix the tile
/// sizes, so that Q, the accumulators, K, V and the scores fit 28 KiB of workgroup memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionShader {
    /// Element type (F32 or F16).
    pub elem: WgslFloat,
    /// Head dimension.
    pub head_dim: usize,
}

impl AttentionShader {
    /// Query rows per sub-tile: `R * D` = 2,048 f32.
    pub fn rows(&self) -> usize {
        (2048 / self.head_dim).max(1)
    }

    /// Keys per chunk: `C * D` = 1,024 f32.
    pub fn keys(&self) -> usize {
        (1024 / self.head_dim).max(1)
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!("attention/{}/d{}", self.elem.name(), self.head_dim)
    }

    /// The complete WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        self.elem.header(&mut s);
        let _ = writeln!(s, "alias T = {};", self.elem.name());
        for (name, value) in [
            ("D", self.head_dim),
            ("R", self.rows()),
            ("C", self.keys()),
            ("WG", ATTENTION_WORKGROUP),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        s.push_str(ATTENTION);
        s
    }
}
