//! Element-level rules applied inside partial blocks of a block mask.

/// Which (query, key) pairs of a *partial* block are kept. Full blocks keep every pair, and
/// blocks not listed keep none. Positions are token indices in the query and key/value sequences.
/// When `seq_q != seq_kv`, causal rules are aligned bottom-right as in FlashAttention 2.1+:
/// query `i` sits at key position `i + seq_kv - seq_q`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaskPredicate {
    /// Every pair of a listed block is kept.
    None,
    /// Key `j` is kept for query `i` iff `j <= i + seq_kv - seq_q`.
    Causal,
    /// Causal with a window: kept iff `i' - window < j <= i'`, where `i' = i + seq_kv - seq_q`.
    SlidingWindow {
        /// Number of keys each query sees, itself included (>= 1).
        window: usize,
    },
    /// Sequences packed in one row: kept iff `ids[i] == ids[j]` (and causal, if `causal`).
    /// Needs `seq_q == seq_kv == ids.len()` and non-decreasing ids (documents are contiguous).
    Documents {
        /// Document id of every token.
        ids: Vec<u32>,
        /// Also apply the causal rule within each document.
        causal: bool,
    },
}

impl MaskPredicate {
    /// Whether query `i` attends key `j` (`i < seq_q`, `j < seq_kv`).
    pub fn keeps(&self, i: usize, j: usize, seq_q: usize, seq_kv: usize) -> bool {
        // Compare j <= i + seq_kv - seq_q without going negative.
        let causal = || j + seq_q <= i + seq_kv;
        match self {
            MaskPredicate::None => true,
            MaskPredicate::Causal => causal(),
            MaskPredicate::SlidingWindow { window } => causal() && i + seq_kv < j + seq_q + window,
            MaskPredicate::Documents { ids, causal: c } => ids[i] == ids[j] && (!c || causal()),
        }
    }

    /// Classifies the block of queries `qs` and keys `ks` (non-empty ranges): `Some(true)` if
    /// every pair is kept, `Some(false)` if none is, `None` if some are (a partial block).
    /// Exact: with `d = j - (i + seq_kv - seq_q)`, the causal rules keep a band of `d`, and a
    /// block's `d` takes every value in `[j0 - i1', j1 - i0']`; documents are contiguous runs.
    pub(crate) fn classify(
        &self,
        qs: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
        seq_q: usize,
        seq_kv: usize,
    ) -> Option<bool> {
        let shift = seq_kv as i64 - seq_q as i64;
        let d_min = ks.start as i64 - (qs.end as i64 - 1 + shift);
        let d_max = ks.end as i64 - 1 - (qs.start as i64 + shift);
        let band = |lo: i64, hi: i64| {
            if d_min >= lo && d_max <= hi {
                Some(true)
            } else if d_max < lo || d_min > hi {
                Some(false)
            } else {
                None
            }
        };
        match self {
            MaskPredicate::None => Some(true),
            MaskPredicate::Causal => band(i64::MIN, 0),
            MaskPredicate::SlidingWindow { window } => band(1 - *window as i64, 0),
            MaskPredicate::Documents { ids, causal } => {
                let (qa, qb) = (ids[qs.start], ids[qs.end - 1]);
                let (ka, kb) = (ids[ks.start], ids[ks.end - 1]);
                if qb < ka || kb < qa {
                    return Some(false);
                }
                let one_doc = qa == qb && ka == kb && qa == ka;
                match (causal, band(i64::MIN, 0)) {
                    (true, Some(false)) => Some(false),
                    (false, _) | (true, Some(true)) if one_doc => Some(true),
                    _ => None,
                }
            }
        }
    }
}
