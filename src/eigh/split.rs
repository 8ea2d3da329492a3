//! Splitting one eigh batch into contiguous parts of about equal work, for several devices or
//! MPI ranks (issue "One batch over every GPU of a host, and over many hosts through MPI").

use std::ops::Range;

use super::spec::{EighLayout, EighSpec};
use crate::Result;

/// One part of a batch split by [`EighSpec::split_by_work`]: matrices `matrices` of the whole
/// batch, whose input (and eigenvectors) are elements `a` of the whole batch's `a` (and `v`)
/// and whose eigenvalues are elements `w` of its `w`; `spec` is the part as a batch of its own
/// (the same layout kind and `vectors`), so solving each part with `spec` and placing its
/// outputs at `w` and `a` gives the whole batch's outputs element for element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EighPart {
    /// Matrix indices of the whole batch in this part.
    pub matrices: Range<usize>,
    /// Element range of the part's matrices in the whole batch's `a` and `v`.
    pub a: Range<usize>,
    /// Element range of the part's eigenvalues in the whole batch's `w`.
    pub w: Range<usize>,
    /// The part as a batch of its own.
    pub spec: EighSpec,
}

impl EighPart {
    /// The part's share of the batch's work, in the units of [`EighSpec::split_by_work`].
    pub fn work(&self) -> f64 {
        (0..self.spec.batch())
            .map(|i| matrix_work(self.spec.order(i)))
            .sum()
    }
}

/// The work a matrix of order `n` counts for when a batch is split: `n^3` (every eigh
/// algorithm here is cubic) plus 1 for the matrix's fixed cost, so that a part of many
/// matrices of order 0 or 1 is not free.
fn matrix_work(n: usize) -> f64 {
    (n as f64).powi(3) + 1.0
}

impl EighSpec {
    /// Splits the batch into exactly `parts` contiguous parts (some empty when there are
    /// fewer matrices than parts) of about equal work, `n^3 + 1` per matrix of order `n`:
    /// part `k` ends where the running work is nearest to `k / parts` of the total, so each
    /// part's work is within one matrix's work of `1 / parts` of the total. Contiguous parts
    /// keep each part's inputs and outputs one range of the whole batch's buffers, which is
    /// what an MPI scatter (`MPI_Scatterv`) or a per-device copy takes.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for `parts == 0`; [`crate::Error::TooLarge`] if the
    /// batch's buffer lengths overflow (as [`EighSpec::offsets`]).
    pub fn split_by_work(&self, parts: usize) -> Result<Vec<EighPart>> {
        if parts == 0 {
            return Err(crate::Error::InvalidArgument(
                "split_by_work needs at least one part",
            ));
        }
        let offsets = self.offsets(1)?;
        let count = self.batch();
        // prefix[i]: the work of matrices 0..i.
        let mut prefix = Vec::with_capacity(count + 1);
        prefix.push(0.0);
        for i in 0..count {
            prefix.push(prefix[i] + matrix_work(self.order(i)));
        }
        let ends = crate::split::balanced_ends(&prefix, parts);
        let mut begin = 0;
        Ok(ends
            .into_iter()
            .map(|end| {
                let (a0, w0) = element_starts(&offsets, begin, count);
                let (a1, w1) = element_starts(&offsets, end, count);
                let spec = match self.layout() {
                    EighLayout::Uniform { n, .. } => EighSpec::uniform(*n, end - begin),
                    EighLayout::Ragged { sizes } => EighSpec::ragged(sizes[begin..end].to_vec()),
                }
                .with_vectors(self.vectors());
                let part = EighPart {
                    matrices: begin..end,
                    a: a0..a1,
                    w: w0..w1,
                    spec,
                };
                begin = end;
                part
            })
            .collect())
    }
}

/// Where matrix `i` starts in `a` and `w` (`i == count`: the buffers' ends).
fn element_starts(offsets: &super::EighOffsets, i: usize, count: usize) -> (usize, usize) {
    if i == count {
        (offsets.a_len(), offsets.w_len())
    } else {
        let slot = offsets.slot(i);
        (slot.a_start, slot.w_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work of matrices `range` computed directly from the sizes (the reference).
    fn work_of(sizes: &[usize]) -> f64 {
        sizes.iter().map(|&n| (n as f64).powi(3) + 1.0).sum()
    }

    #[test]
    fn parts_tile_the_batch_and_balance_within_one_matrix() {
        // Orders 0-40 in a scrambled order, as a physics batch mixes them.
        let sizes: Vec<usize> = (0..500).map(|i| (i * 37 + 11) % 41).collect();
        let spec = EighSpec::ragged(sizes.clone()).with_vectors(true);
        let total = work_of(&sizes);
        let largest = work_of(&[40]);
        for parts in [1, 2, 3, 7, 64] {
            let split = spec.split_by_work(parts).unwrap();
            assert_eq!(split.len(), parts);
            let (mut m, mut a, mut w) = (0, 0, 0);
            for p in &split {
                assert_eq!(p.matrices.start, m);
                assert_eq!((p.a.start, p.w.start), (a, w));
                let here = &sizes[p.matrices.clone()];
                assert_eq!(p.spec, EighSpec::ragged(here.to_vec()).with_vectors(true));
                assert_eq!(p.a.len(), here.iter().map(|n| n * n).sum::<usize>());
                assert_eq!(p.w.len(), here.iter().sum::<usize>());
                let ideal = total / parts as f64;
                assert!(
                    (work_of(here) - ideal).abs() <= largest,
                    "{parts} parts: {} against {ideal}",
                    work_of(here)
                );
                assert_eq!(p.work(), work_of(here));
                (m, a, w) = (p.matrices.end, p.a.end, p.w.end);
            }
            assert_eq!(m, sizes.len());
            let offsets = spec.offsets(8).unwrap();
            assert_eq!((a, w), (offsets.a_len(), offsets.w_len()));
        }
    }

    #[test]
    fn one_heavy_matrix_is_never_split_and_more_parts_than_matrices_leaves_parts_empty() {
        // One order-100 matrix among order-2 ones: it is a part of its own (with neighbours
        // at most), and the parts after the batch's end are empty.
        let mut sizes = vec![2; 10];
        sizes[4] = 100;
        let split = EighSpec::ragged(sizes.clone()).split_by_work(3).unwrap();
        let heavy: Vec<_> = split.iter().filter(|p| p.matrices.contains(&4)).collect();
        assert_eq!(heavy.len(), 1);
        let split = EighSpec::uniform(3, 2).split_by_work(5).unwrap();
        assert_eq!(split.iter().filter(|p| !p.matrices.is_empty()).count(), 2);
        assert_eq!(split.iter().map(|p| p.matrices.len()).sum::<usize>(), 2);
        for p in &split {
            assert_eq!(p.spec, EighSpec::uniform(3, p.matrices.len()));
            assert_eq!(p.a, 9 * p.matrices.start..9 * p.matrices.end);
        }
        assert!(EighSpec::uniform(3, 2).split_by_work(0).is_err());
        let empty = EighSpec::ragged(Vec::new()).split_by_work(2).unwrap();
        assert!(empty
            .iter()
            .all(|p| p.matrices.is_empty() && p.a.is_empty()));
    }

    #[test]
    fn a_uniform_batch_splits_into_near_equal_counts() {
        let split = EighSpec::uniform(12, 1001).split_by_work(4).unwrap();
        let counts: Vec<usize> = split.iter().map(|p| p.matrices.len()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 1001);
        assert!(counts.iter().all(|&c| c == 250 || c == 251), "{counts:?}");
    }
}
