//! The shader variants of the wgpu reductions (`shaders/reduce.wgsl`): operation, finishing
//! step and stage per dispatch.

use std::fmt::Write;

use super::wgsl::{WgslFloat, REDUCE};

/// Workgroup size of the reduction shader.
pub const REDUCE_WORKGROUP: usize = 256;
/// Row lanes per column in row reductions (so `REDUCE_WORKGROUP / 16` columns per workgroup).
pub const REDUCE_ROW_LANES: usize = 16;

/// What a reduction dispatch does to its input (the shader's `SHAPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
