//! What an eigh call computes: the batch layout and whether eigenvectors are wanted.

use crate::{Error, Result};

/// How the matrices of one batch are laid out in memory. Every matrix is square, row-major,
/// and stored densely; only its lower triangle is read (LAPACK `uplo = 'L'`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EighLayout {
    /// `batch` matrices of size `n x n`: input `a` has shape `[batch, n, n]`, eigenvalues `w`
    /// `[batch, n]`, eigenvectors `v` `[batch, n, n]`.
    Uniform {
        /// Matrix order.
        n: usize,
        /// Number of matrices.
        batch: usize,
    },
    /// Matrices of different orders concatenated without padding: matrix `i` occupies
    /// `sizes[i]^2` consecutive elements of `a` (and of `v`), its eigenvalues `sizes[i]`
    /// consecutive elements of `w`, in batch order.
    Ragged {
        /// Order of each matrix (0 allowed: an empty matrix).
        sizes: Vec<usize>,
    },
}

/// A batched symmetric eigendecomposition problem (eigh): for every matrix `A_i`, eigenvalues
/// `w_i` in ascending order and, if requested, orthonormal eigenvectors `V_i` as columns
/// (`V_i[r][k]` is component `r` of eigenvector `k`, row-major), with `A_i V_i = V_i diag(w_i)`.
/// Each eigenvector's component of largest magnitude is positive (the first such component if
/// several tie), so that backends agree element by element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EighSpec {
    layout: EighLayout,
    vectors: bool,
}

impl EighSpec {
    /// `batch` matrices of order `n`, eigenvalues only.
    pub fn uniform(n: usize, batch: usize) -> Self {
        Self {
            layout: EighLayout::Uniform { n, batch },
            vectors: false,
        }
    }

    /// Matrices of orders `sizes` concatenated without padding, eigenvalues only.
    pub fn ragged(sizes: impl Into<Vec<usize>>) -> Self {
        Self {
            layout: EighLayout::Ragged {
                sizes: sizes.into(),
            },
            vectors: false,
        }
    }

    /// Requests eigenvectors too (`true`) or eigenvalues only (`false`).
    #[must_use]
    pub fn with_vectors(mut self, vectors: bool) -> Self {
        self.vectors = vectors;
        self
    }

    /// The batch layout.
    pub fn layout(&self) -> &EighLayout {
        &self.layout
    }

    /// Whether eigenvectors are computed.
    pub fn vectors(&self) -> bool {
        self.vectors
    }

    /// Number of matrices in the batch.
    pub fn batch(&self) -> usize {
        match &self.layout {
            EighLayout::Uniform { batch, .. } => *batch,
            EighLayout::Ragged { sizes } => sizes.len(),
        }
    }

    /// Order of matrix `i`. Panics if `i >= self.batch()`.
    pub fn order(&self, i: usize) -> usize {
        match &self.layout {
            EighLayout::Uniform { n, batch } => {
                assert!(i < *batch, "matrix index out of range");
                *n
            }
            EighLayout::Ragged { sizes } => sizes[i],
        }
    }

    /// Largest matrix order in the batch (0 for an empty batch).
    pub fn max_order(&self) -> usize {
        match &self.layout {
            EighLayout::Uniform { n, batch } => {
                if *batch == 0 {
                    0
                } else {
                    *n
                }
            }
            EighLayout::Ragged { sizes } => sizes.iter().copied().max().unwrap_or(0),
        }
    }

    /// Estimated floating-point operations of the whole batch: about `9 n^3` per matrix with
    /// eigenvectors (tridiagonalisation, accumulation, implicit QL) and `4/3 n^3 + 30 n^2`
    /// without (Golub & Van Loan, Matrix Computations, 4th ed., section 8.3). Used by the cost
    /// model and to balance work across threads.
    pub fn flops(&self) -> f64 {
        let per = |n: usize| eigh_flops(n, self.vectors);
        match &self.layout {
            EighLayout::Uniform { n, batch } => per(*n) * *batch as f64,
            EighLayout::Ragged { sizes } => sizes.iter().map(|&n| per(n)).sum(),
        }
    }

    /// Element offsets of every matrix: checks that every buffer length fits in `usize` and in
    /// `isize::MAX` bytes of `T`-sized elements.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if a buffer length overflows.
    pub fn offsets(&self, elem_size: usize) -> Result<EighOffsets> {
        let too_large = Error::TooLarge("eigh buffer length overflows usize");
        let out = match &self.layout {
            EighLayout::Uniform { n, batch } => {
                let nn = n.checked_mul(*n).ok_or(too_large.clone())?;
                let a_len = nn.checked_mul(*batch).ok_or(too_large.clone())?;
                let w_len = n.checked_mul(*batch).ok_or(too_large.clone())?;
                EighOffsets {
                    a_len,
                    w_len,
                    ragged: None,
                    uniform_n: *n,
                }
            }
            EighLayout::Ragged { sizes } => {
                let mut a_starts = Vec::with_capacity(sizes.len() + 1);
                let mut w_starts = Vec::with_capacity(sizes.len() + 1);
                let (mut a, mut w) = (0usize, 0usize);
                for &n in sizes {
                    a_starts.push(a);
                    w_starts.push(w);
                    let nn = n.checked_mul(n).ok_or(too_large.clone())?;
                    a = a.checked_add(nn).ok_or(too_large.clone())?;
                    w = w.checked_add(n).ok_or(too_large.clone())?;
                }
                a_starts.push(a);
                w_starts.push(w);
                EighOffsets {
                    a_len: a,
                    w_len: w,
                    ragged: Some(RaggedOffsets { a_starts, w_starts }),
                    uniform_n: 0,
                }
            }
        };
        let bytes_ok = out
            .a_len
            .checked_mul(elem_size.max(1))
            .is_some_and(|b| b <= isize::MAX as usize);
        if !bytes_ok {
            return Err(too_large);
        }
        Ok(out)
    }
}

impl EighSpec {
    /// The batch's non-empty matrices grouped by `key` of their order: one entry per distinct
    /// key, in ascending key order, each with its matrix indices ascending (the GPU backends'
    /// ragged buckets: one launch per entry). Order-0 matrices belong to no group. `None` if an
    /// index of a non-empty matrix does not fit `I` (the backend's index type in its tables).
    #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
    pub(crate) fn buckets<K: Ord, I: TryFrom<usize>>(
        &self,
        mut key: impl FnMut(usize) -> K,
    ) -> Option<Vec<(K, Vec<I>)>> {
        let mut groups: std::collections::BTreeMap<K, Vec<I>> = Default::default();
        for i in 0..self.batch() {
            let n = self.order(i);
            if n > 0 {
                groups.entry(key(n)).or_default().push(I::try_from(i).ok()?);
            }
        }
        Some(groups.into_iter().collect())
    }
}

fn eigh_flops(n: usize, vectors: bool) -> f64 {
    let n = n as f64;
    if vectors {
        9.0 * n * n * n
    } else {
        4.0 / 3.0 * n * n * n + 30.0 * n * n
    }
}

#[derive(Debug, Clone)]
struct RaggedOffsets {
    a_starts: Vec<usize>,
    w_starts: Vec<usize>,
}

/// Where each matrix of a batch lives in the flat buffers, computed once at plan time.
#[derive(Debug, Clone)]
pub struct EighOffsets {
    a_len: usize,
    w_len: usize,
    ragged: Option<RaggedOffsets>,
    uniform_n: usize,
}

/// One matrix's place in the batch buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixSlot {
    /// Matrix order.
    pub n: usize,
    /// First element of the matrix in `a` (and of its eigenvectors in `v`).
    pub a_start: usize,
    /// First eigenvalue in `w`.
    pub w_start: usize,
}

impl EighOffsets {
    /// Checks the operands of an eigh call against these offsets: what every backend's `eigh`
    /// does first. `vectors` is whether the plan computes eigenvectors.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] if `v` is given without eigenvectors planned or missing when
    /// they were; [`Error::Shape`] if a length differs from the spec's.
    pub fn check(&self, vectors: bool, a: usize, w: usize, v: Option<usize>) -> Result<()> {
        if vectors != v.is_some() {
            return Err(Error::PlanMismatch(if vectors {
                "the plan computes eigenvectors but no `v` buffer was given"
            } else {
                "`v` was given but the plan was made without eigenvectors"
            }));
        }
        crate::error::check_len("a", self.a_len, a)?;
        crate::error::check_len("w", self.w_len, w)?;
        if let Some(v) = v {
            crate::error::check_len("v", self.a_len, v)?;
        }
        Ok(())
    }

    /// Length of `a` and of `v` in elements.
    pub fn a_len(&self) -> usize {
        self.a_len
    }

    /// Length of `w` in elements.
    pub fn w_len(&self) -> usize {
        self.w_len
    }

    /// Where matrix `i` lives. `i` must be less than the batch size.
    #[inline]
    pub fn slot(&self, i: usize) -> MatrixSlot {
        match &self.ragged {
            Some(r) => MatrixSlot {
                n: r.w_starts[i + 1] - r.w_starts[i],
                a_start: r.a_starts[i],
                w_start: r.w_starts[i],
            },
            None => {
                let n = self.uniform_n;
                MatrixSlot {
                    n,
                    a_start: i * n * n,
                    w_start: i * n,
                }
            }
        }
    }
}

/// The order a matrix of order `n` is padded to in its bucket (even, coarser as n grows, so a
/// ragged batch needs few dispatches and wastes at most ~12% of a sweep's rounds).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn bucket_order(n: usize) -> usize {
    let step = match n {
        0..=16 => 2,
        17..=32 => 4,
        33..=64 => 8,
        65..=128 => 16,
        _ => 32,
    };
    n.max(2).div_ceil(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_group_non_empty_matrices_by_key_in_key_then_index_order() {
        let spec = EighSpec::ragged(vec![5, 0, 3, 6, 17, 4, 0, 5, 33]);
        // By padded order (even up to 16, multiples of 4 to 32, of 8 to 64), as wgpu does.
        let by_padded = spec.buckets::<_, u32>(crate::eigh::bucket_order).unwrap();
        assert_eq!(
            by_padded,
            vec![
                (4, vec![2, 5]),
                (6, vec![0, 3, 7]),
                (20, vec![4]),
                (40, vec![8]),
            ]
        );
        // A composite key, as CUDA's (size class, padded order): small orders share one group.
        let classes = spec.buckets::<_, i32>(|n| (n > 16, if n > 16 { n } else { 0 }));
        assert_eq!(
            classes.unwrap(),
            vec![
                ((false, 0), vec![0, 2, 3, 5, 7]),
                ((true, 17), vec![4]),
                ((true, 33), vec![8]),
            ]
        );
        // Uniform: one group; empty matrices or an empty batch: none.
        assert_eq!(
            EighSpec::uniform(3, 3).buckets::<_, u32>(|n| n),
            Some(vec![(3, vec![0, 1, 2])])
        );
        assert_eq!(
            EighSpec::uniform(0, 3).buckets::<_, u32>(|n| n),
            Some(vec![])
        );
        assert_eq!(
            EighSpec::ragged(vec![0, 0]).buckets::<_, u32>(|n| n),
            Some(vec![])
        );
    }

    #[test]
    fn buckets_refuse_indices_the_table_type_cannot_hold() {
        let mut sizes = vec![0; 300];
        sizes[299] = 2;
        let spec = EighSpec::ragged(sizes.clone());
        assert_eq!(spec.buckets::<_, u8>(|n| n), None);
        assert_eq!(spec.buckets::<_, u16>(|n| n), Some(vec![(2, vec![299])]));
        // Only non-empty matrices need an index.
        sizes[299] = 0;
        sizes[3] = 2;
        assert_eq!(
            EighSpec::ragged(sizes).buckets::<_, u8>(|n| n),
            Some(vec![(2, vec![3])])
        );
    }
}
