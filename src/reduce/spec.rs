//! What a reduction computes: the operation and the shape of its operands.

use crate::{Error, Result};

/// Reductions of a whole array `x` (length `len`) to one value; `y` has the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReduceOp {
    /// sum x_i (0 for an empty array).
    Sum,
    /// sum x_i / len (NaN for an empty array).
    Mean,
    /// min x_i (+inf for an empty array).
    Min,
    /// max x_i (-inf for an empty array).
    Max,
    /// max |x_i| (0 for an empty array): the infinity norm.
    MaxAbs,
    /// sum x_i y_i.
    Dot,
    /// max |x_i - y_i| (0 for empty arrays): the convergence measure of an iteration.
    MaxAbsDiff,
    /// max |x_i - y_i| / max(max |y_i|, tiny), with `tiny` the smallest normal number: the
    /// norm-wise relative form of [`ReduceOp::MaxAbsDiff`].
    MaxRelDiff,
}

/// Reductions over the rows of a row-major `(rows, cols)` matrix `x`, one value per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RowReduceOp {
    /// sum over rows.
    Sum,
    /// sum over rows / rows (NaN when rows = 0).
    Mean,
    /// sum_i w_i x_ij / sum_i w_i with weights `y` of length `rows`: the expectation over
    /// `rows` sampled worlds of `cols` quantities.
    WeightedMean,
    /// max over rows (-inf when rows = 0).
    Max,
}

/// Reductions of ragged segments of `x`: segment `s` is `x[offsets[s]..offsets[s + 1]]`, like
/// CSR row pointers. Empty segments give the operation's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentReduceOp {
    /// Segment sums (0 when empty).
    Sum,
    /// Segment means (NaN when empty: 0 / 0).
    Mean,
    /// Segment maxima (-inf when empty).
    Max,
    /// Segment minima (+inf when empty).
    Min,
    /// Segment dot products with `y` (same length as `x`; 0 when empty).
    Dot,
}

impl ReduceOp {
    /// Every operation, in declaration order.
    pub const ALL: [ReduceOp; 8] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::MaxAbs,
        ReduceOp::Dot,
        ReduceOp::MaxAbsDiff,
        ReduceOp::MaxRelDiff,
    ];

    /// The operation's kebab-case name (`"max-abs-diff"`), as the command-line tool and its
    /// tables spell it.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Min => "min",
            ReduceOp::Max => "max",
            ReduceOp::MaxAbs => "max-abs",
            ReduceOp::Dot => "dot",
            ReduceOp::MaxAbsDiff => "max-abs-diff",
            ReduceOp::MaxRelDiff => "max-rel-diff",
        }
    }

    /// Whether the operation reads a second operand `y` (same length as `x`).
    pub fn takes_y(self) -> bool {
        matches!(
            self,
            ReduceOp::Dot | ReduceOp::MaxAbsDiff | ReduceOp::MaxRelDiff
        )
    }
}

impl RowReduceOp {
    /// Every operation, in declaration order.
    pub const ALL: [RowReduceOp; 4] = [
        RowReduceOp::Sum,
        RowReduceOp::Mean,
        RowReduceOp::WeightedMean,
        RowReduceOp::Max,
    ];

    /// Whether the operation reads weights `y` (one per row).
    pub fn takes_y(self) -> bool {
        self == RowReduceOp::WeightedMean
    }
}

impl SegmentReduceOp {
    /// Every operation, in declaration order.
    pub const ALL: [SegmentReduceOp; 5] = [
        SegmentReduceOp::Sum,
        SegmentReduceOp::Mean,
        SegmentReduceOp::Max,
        SegmentReduceOp::Min,
        SegmentReduceOp::Dot,
    ];

    /// Whether the operation reads a second operand `y` (same length as `x`).
    pub fn takes_y(self) -> bool {
        self == SegmentReduceOp::Dot
    }
}

/// A reduction: operation and operand shapes. All inputs are row-major; the output is in the
/// accumulation type ([`crate::Reducible::Acc`]).
///
/// | spec | `x` | `y` | `out` |
/// |---|---|---|---|
/// | `Full { op, len }` | `len` | `len` for Dot / MaxAbsDiff / MaxRelDiff, else none | 1 |
/// | `Rows { op, rows, cols }` | `rows * cols` | `rows` weights for WeightedMean, else none | `cols` |
/// | `Segments { op, offsets }` | `offsets[last]` | same as `x` for Dot, else none | `offsets.len() - 1` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReduceSpec {
    /// A whole array to one value.
    Full {
        /// The operation.
        op: ReduceOp,
        /// Number of elements of `x`.
        len: usize,
    },
    /// Over the rows of a `(rows, cols)` matrix.
    Rows {
        /// The operation.
        op: RowReduceOp,
        /// Number of rows (N).
        rows: usize,
        /// Number of columns (k).
        cols: usize,
    },
    /// Over ragged segments given by offsets (non-decreasing, at least one entry; the first is
    /// usually 0, elements before it are ignored).
    Segments {
        /// The operation.
        op: SegmentReduceOp,
        /// Segment boundaries, `segments + 1` entries.
        offsets: Vec<usize>,
    },
}

/// Operand lengths of a validated spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceShape {
    /// Length of `x`.
    pub x_len: usize,
    /// Length of `y`, if the operation takes a second operand.
    pub y_len: Option<usize>,
    /// Length of `out`.
    pub out_len: usize,
}

impl ReduceShape {
    /// Checks operand lengths against this shape: what every backend's `reduce` does first.
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong length; [`Error::PlanMismatch`] when `y` is missing for a
    /// two-operand reduction or given to a one-operand one.
    pub fn check(&self, x_len: usize, y_len: Option<usize>, out_len: usize) -> Result<()> {
        crate::error::check_len("x", self.x_len, x_len)?;
        match (self.y_len, y_len) {
            (Some(n), Some(y)) => crate::error::check_len("y", n, y)?,
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::PlanMismatch(
                    "this reduction needs a second operand `y`",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::PlanMismatch(
                    "`y` was given to a one-operand reduction",
                ))
            }
        }
        crate::error::check_len("out", self.out_len, out_len)
    }
}

impl ReduceSpec {
    /// Checks the spec and returns its operand lengths.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if `rows * cols` overflows; [`Error::InvalidArgument`] for empty
    /// `offsets`; [`Error::BadOffsets`] where they decrease.
    pub fn shape(&self) -> Result<ReduceShape> {
        Ok(match self {
            ReduceSpec::Full { op, len } => ReduceShape {
                x_len: *len,
                y_len: op.takes_y().then_some(*len),
                out_len: 1,
            },
            ReduceSpec::Rows { op, rows, cols } => {
                let x_len = rows
                    .checked_mul(*cols)
                    .ok_or(Error::TooLarge("rows * cols overflows usize"))?;
                ReduceShape {
                    x_len,
                    y_len: op.takes_y().then_some(*rows),
                    out_len: *cols,
                }
            }
            ReduceSpec::Segments { op, offsets } => {
                let (&last, _) = offsets.split_last().ok_or(Error::InvalidArgument(
                    "segment offsets need at least one entry",
                ))?;
                if let Some(i) = offsets.windows(2).position(|p| p[1] < p[0]) {
                    return Err(Error::BadOffsets { index: i + 1 });
                }
                ReduceShape {
                    x_len: last,
                    y_len: op.takes_y().then_some(last),
                    out_len: offsets.len() - 1,
                }
            }
        })
    }
}
