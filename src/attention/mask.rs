//! Block-sparse attention masks in FlexAttention's `BlockMask` layout, field for field, so
//! masks built with PyTorch's `create_block_mask` (or for FlashAttention's CuTe kernels, which
//! use the same four tensors) pass through unchanged.

use super::{ElementBits, MaskPredicate};
use crate::{Error, Result};

/// Block sizes the kernels support, for both the query (BQ) and key/value (BK) dimension.
pub const BLOCK_SIZES: [usize; 4] = [16, 32, 64, 128];

/// The blocks of the `(seq_q, seq_kv)` score matrix that attention visits, per (batch, head).
///
/// Layout (row-major, `i32` as in PyTorch), with `QB = ceil(seq_q / BQ)`, `KB = ceil(seq_kv / BK)`
/// and `Bm`, `Hm` equal to the batch and head counts or 1 (broadcast):
/// - `kv_num_blocks [Bm, Hm, QB]`: how many *partial* blocks query block `q` visits;
/// - `kv_indices [Bm, Hm, QB, KB]`: their key-block indices, the first `kv_num_blocks` entries of
///   each row; the rest of the row is undefined and never read;
/// - optional `full_kv_num_blocks` / `full_kv_indices`, same shapes: blocks kept entirely, which
///   need no element mask. Partial and full lists of a row are disjoint.
///
/// Inside partial blocks either the [`MaskPredicate`] decides per element (the built-in rules,
/// computed from positions in the kernels), or, for masks made by
/// [`BlockMask::from_parts_with_bits`] or [`BlockMask::from_mask_mod`], the partial block's own
/// bits ([`ElementBits`]: any `mask_mod`); the predicate is then [`MaskPredicate::None`] and
/// unused. Reference: PyTorch
/// `torch.nn.attention.flex_attention.BlockMask`; Dong et al., "Flex Attention: A Programming
/// Model for Generating Optimized Attention Kernels", 2024.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMask {
    seq_q: usize,
    seq_kv: usize,
    block: (usize, usize),
    batch: usize,
    heads: usize,
    kv_num_blocks: Vec<i32>,
    kv_indices: Vec<i32>,
    full: Option<(Vec<i32>, Vec<i32>)>,
    predicate: MaskPredicate,
    /// Element bits of the partial blocks, replacing the predicate when present.
    bits: Option<ElementBits>,
}

/// The four tensors of a [`BlockMask`] and its geometry, as handed over from PyTorch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMaskParts {
    /// Query length.
    pub seq_q: usize,
    /// Key/value length.
    pub seq_kv: usize,
    /// (BQ, BK), each in [`BLOCK_SIZES`].
    pub block: (usize, usize),
    /// Leading dimension of the tensors: the batch size, or 1 to broadcast.
    pub batch: usize,
    /// Second dimension: the number of query heads, or 1 to broadcast.
    pub heads: usize,
    /// `[batch, heads, QB]`.
    pub kv_num_blocks: Vec<i32>,
    /// `[batch, heads, QB, KB]`.
    pub kv_indices: Vec<i32>,
    /// Optional full blocks: (`full_kv_num_blocks`, `full_kv_indices`), same shapes.
    pub full: Option<(Vec<i32>, Vec<i32>)>,
    /// Rule inside partial blocks.
    pub predicate: MaskPredicate,
}

/// An error in the entry at `position` (`[b, h, q_block, slot]`).
fn entry_err(position: [usize; 4], reason: &'static str) -> Error {
    Error::Mask {
        position: Some(position),
        reason,
    }
}

/// An error of the whole mask: no entry to point at.
fn mask_err(reason: &'static str) -> Error {
    Error::Mask {
        position: None,
        reason,
    }
}

pub(super) fn check_block_sizes(block: (usize, usize)) -> Result<()> {
    if BLOCK_SIZES.contains(&block.0) && BLOCK_SIZES.contains(&block.1) {
        Ok(())
    } else {
        Err(mask_err("block sizes must be 16, 32, 64 or 128"))
    }
}

/// Key-block indices and counts are `i32`, as in PyTorch: `KB` must fit.
fn check_block_index_range(kb: usize) -> Result<()> {
    if i32::try_from(kb).is_ok() {
        Ok(())
    } else {
        Err(Error::TooLarge(
            "more key blocks than int32 block indices can count",
        ))
    }
}

impl BlockMask {
    /// Validates `parts` and builds the mask: block sizes, tensor lengths, counts within
    /// `0..=KB`, listed indices within `0..KB`, no index listed twice in a row (partial and full
    /// together), predicate consistent with the lengths. Cost: one pass over the listed entries.
    ///
    /// # Errors
    /// [`Error::Mask`] with the position of the first wrong entry (none for whole-mask
    /// problems); [`Error::TooLarge`] if the tensor lengths overflow.
    pub fn from_parts(parts: BlockMaskParts) -> Result<Self> {
        let BlockMaskParts {
            seq_q,
            seq_kv,
            block,
            batch,
            heads,
            kv_num_blocks,
            kv_indices,
            full,
            predicate,
        } = parts;
        check_block_sizes(block)?;
        if batch == 0 || heads == 0 {
            return Err(mask_err("batch and head dimensions must be at least 1"));
        }
        let (qb, kb) = (seq_q.div_ceil(block.0), seq_kv.div_ceil(block.1));
        check_block_index_range(kb)?;
        let rows = batch
            .checked_mul(heads)
            .and_then(|x| x.checked_mul(qb))
            .ok_or(Error::TooLarge("block mask dimensions overflow"))?;
        let cells = rows
            .checked_mul(kb)
            .ok_or(Error::TooLarge("block mask dimensions overflow"))?;
        match &predicate {
            MaskPredicate::SlidingWindow { window: 0 } => {
                return Err(mask_err("sliding window must be at least 1"))
            }
            MaskPredicate::Documents { ids, .. } => {
                if seq_q != seq_kv || ids.len() != seq_q {
                    return Err(mask_err("document ids need seq_q == seq_kv == ids.len()"));
                }
                if ids.windows(2).any(|w| w[1] < w[0]) {
                    return Err(mask_err("document ids must be non-decreasing"));
                }
            }
            _ => {}
        }
        let lists = std::iter::once((&kv_num_blocks, &kv_indices))
            .chain(full.as_ref().map(|(n, i)| (n, i)));
        for (counts, indices) in lists.clone() {
            if counts.len() != rows || indices.len() != cells {
                return Err(mask_err(
                    "tensor lengths do not match [B|1, H|1, ceil(Sq/BQ)(, ceil(Skv/BK))]",
                ));
            }
        }
        let mut seen = vec![false; kb];
        for row in 0..rows {
            let position = |slot| [row / (heads * qb), row / qb % heads, row % qb, slot];
            seen.fill(false);
            for (counts, indices) in lists.clone() {
                let count = counts[row];
                if count < 0 || count as usize > kb {
                    return Err(entry_err(
                        position(0),
                        "block count outside 0..=ceil(Skv/BK)",
                    ));
                }
                for slot in 0..count as usize {
                    let k = indices[row * kb + slot];
                    if k < 0 || k as usize >= kb {
                        return Err(entry_err(position(slot), "key-block index out of range"));
                    }
                    if std::mem::replace(&mut seen[k as usize], true) {
                        return Err(entry_err(
                            position(slot),
                            "key block listed twice in one row",
                        ));
                    }
                }
            }
        }
        Ok(Self {
            seq_q,
            seq_kv,
            block,
            batch,
            heads,
            kv_num_blocks,
            kv_indices,
            full,
            predicate,
            bits: None,
        })
    }

    /// Like [`BlockMask::from_parts`], with the element mask of every partial block as packed
    /// bits (layout: [`ElementBits`]; [`ElementBits::pack`] packs booleans): any `mask_mod`.
    /// `parts.predicate` must be [`MaskPredicate::None`], since the bits alone decide inside
    /// partial blocks; full blocks keep every pair and need no bits. An all-zero tile is
    /// allowed (its block adds nothing; a row with nothing else kept is an empty row).
    ///
    /// # Errors
    /// As [`BlockMask::from_parts`]; [`Error::Mask`] if the predicate is not `None`, if
    /// `bits.len() != sum(kv_num_blocks) * BQ * ceil(BK / 32)` (no position), or if a tile
    /// sets a bit of a row past `Sq`, a column past `Skv` or BK's padding (the tile's
    /// `[b, h, q_block, slot]`); [`Error::TooLarge`] if the sizes overflow.
    pub fn from_parts_with_bits(parts: BlockMaskParts, bits: Vec<u32>) -> Result<Self> {
        if parts.predicate != MaskPredicate::None {
            return Err(mask_err(
                "element bits replace the predicate: it must be MaskPredicate::None",
            ));
        }
        let mut mask = Self::from_parts(parts)?;
        let (qb, kb) = mask.block_counts();
        let heads = mask.heads;
        let bits = ElementBits::new(
            bits,
            &mask.kv_num_blocks,
            |row, slot| mask.kv_indices[row * kb + slot] as usize,
            |row, slot| [row / (heads * qb), row / qb % heads, row % qb, slot],
            (mask.seq_q, mask.seq_kv),
            mask.block,
        )?;
        mask.bits = Some(bits);
        Ok(mask)
    }

    /// Builds a mask of one (batch, head) row set (`batch = heads = 1`, broadcast) from a rule:
    /// each block is full, partial or absent according to the rule's exact classification.
    ///
    /// # Errors
    /// As [`BlockMask::from_parts`].
    pub fn from_predicate(
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        predicate: MaskPredicate,
    ) -> Result<Self> {
        check_block_sizes(block)?;
        if let MaskPredicate::Documents { ids, .. } = &predicate {
            if ids.len() != seq_q || seq_q != seq_kv {
                return Err(mask_err("document ids need seq_q == seq_kv == ids.len()"));
            }
        }
        Self::from_classifier(
            seq_q,
            seq_kv,
            block,
            |_, _, qs, ks| predicate.classify(qs, ks, seq_q, seq_kv),
            predicate.clone(),
        )
    }

    /// Builds a broadcast (`batch = heads = 1`) mask by asking `classify(q, k, queries, keys)`
    /// for every block: `Some(true)` full, `None` partial, `Some(false)` absent.
    fn from_classifier(
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        classify: impl Fn(usize, usize, std::ops::Range<usize>, std::ops::Range<usize>) -> Option<bool>,
        predicate: MaskPredicate,
    ) -> Result<Self> {
        let (qb, kb) = (seq_q.div_ceil(block.0), seq_kv.div_ceil(block.1));
        check_block_index_range(kb)?;
        let cells = block_table_cells(qb, kb)?;
        let (mut partial_n, mut full_n) = (vec![0i32; qb], vec![0i32; qb]);
        let (mut partial_i, mut full_i) = (vec![0i32; cells], vec![0i32; cells]);
        for q in 0..qb {
            let qs = q * block.0..((q + 1) * block.0).min(seq_q);
            for k in 0..kb {
                let ks = k * block.1..((k + 1) * block.1).min(seq_kv);
                let (counts, indices) = match classify(q, k, qs.clone(), ks) {
                    Some(false) => continue,
                    Some(true) => (&mut full_n, &mut full_i),
                    None => (&mut partial_n, &mut partial_i),
                };
                indices[q * kb + counts[q] as usize] = k as i32;
                counts[q] += 1;
            }
        }
        Self::from_parts(BlockMaskParts {
            seq_q,
            seq_kv,
            block,
            batch: 1,
            heads: 1,
            kv_num_blocks: partial_n,
            kv_indices: partial_i,
            full: Some((full_n, full_i)),
            predicate,
        })
    }

    /// Every block kept, all as full blocks.
    ///
    /// # Errors
    /// [`Error::Mask`] for unsupported block sizes.
    pub fn dense(seq_q: usize, seq_kv: usize, block: (usize, usize)) -> Result<Self> {
        Self::from_predicate(seq_q, seq_kv, block, MaskPredicate::None)
    }

    /// Causal attention (bottom-right aligned): blocks below the diagonal full, blocks the
    /// diagonal crosses partial.
    ///
    /// # Errors
    /// [`Error::Mask`] for unsupported block sizes.
    pub fn causal(seq_q: usize, seq_kv: usize, block: (usize, usize)) -> Result<Self> {
        Self::from_predicate(seq_q, seq_kv, block, MaskPredicate::Causal)
    }

    /// Causal sliding window of `window` keys per query.
    ///
    /// # Errors
    /// [`Error::Mask`] for unsupported block sizes or `window == 0`.
    pub fn sliding_window(
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        window: usize,
    ) -> Result<Self> {
        if window == 0 {
            return Err(mask_err("sliding window must be at least 1"));
        }
        Self::from_predicate(
            seq_q,
            seq_kv,
            block,
            MaskPredicate::SlidingWindow { window },
        )
    }

    /// Variable-length documents packed in one sequence (block-diagonal): token `i` attends
    /// token `j` iff both belong to the same document, optionally causally. `lengths` are the
    /// document lengths in order; the sequence length is their sum.
    ///
    /// # Errors
    /// [`Error::Mask`] for unsupported block sizes.
    pub fn documents(lengths: &[usize], block: (usize, usize), causal: bool) -> Result<Self> {
        let ids: Vec<u32> = lengths
            .iter()
            .enumerate()
            .flat_map(|(d, &n)| std::iter::repeat_n(d as u32, n))
            .collect();
        let len = ids.len();
        Self::from_predicate(len, len, block, MaskPredicate::Documents { ids, causal })
    }

    /// From a boolean block matrix `[QB, KB]` (row-major): `true` blocks are kept entirely.
    ///
    /// # Errors
    /// [`Error::Mask`] if `blocks.len() != QB * KB` or block sizes are unsupported.
    pub fn from_block_matrix(
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        blocks: &[bool],
    ) -> Result<Self> {
        check_block_sizes(block)?;
        let kb = seq_kv.div_ceil(block.1);
        if blocks.len() != seq_q.div_ceil(block.0) * kb {
            return Err(mask_err(
                "block matrix must have ceil(Sq/BQ) * ceil(Skv/BK) entries",
            ));
        }
        Self::from_classifier(
            seq_q,
            seq_kv,
            block,
            |q, k, _, _| Some(blocks[q * kb + k]),
            MaskPredicate::None,
        )
    }

    /// (query length, key/value length).
    pub fn seq_lens(&self) -> (usize, usize) {
        (self.seq_q, self.seq_kv)
    }

    /// (BQ, BK).
    pub fn block_size(&self) -> (usize, usize) {
        self.block
    }

    /// (ceil(Sq/BQ), ceil(Skv/BK)).
    pub fn block_counts(&self) -> (usize, usize) {
        (
            self.seq_q.div_ceil(self.block.0),
            self.seq_kv.div_ceil(self.block.1),
        )
    }

    /// The element rule of partial blocks ([`MaskPredicate::None`], and unused, when the mask
    /// has [`BlockMask::element_bits`]).
    pub fn predicate(&self) -> &MaskPredicate {
        &self.predicate
    }

    /// The packed element mask of the partial blocks, for masks made with
    /// [`BlockMask::from_parts_with_bits`] or [`BlockMask::from_mask_mod`]; `None` when the
    /// predicate decides.
    pub fn element_bits(&self) -> Option<&ElementBits> {
        self.bits.as_ref()
    }

    /// Whether query `i` attends key `j` in batch `b`, query head `h` (broadcast applied):
    /// the block is listed, and full, or partial and its predicate or bit keeps the pair.
    /// One walk of the block's row; for kernels and checks, not a hot path.
    pub fn keeps(&self, b: usize, h: usize, i: usize, j: usize) -> bool {
        let (bq, bk) = self.block;
        let r = self.row_index(b, h, i / bq);
        self.row(b, h, i / bq)
            .enumerate()
            .find(|&(_, (k, _))| k == j / bk)
            .is_some_and(|(slot, (_, full))| {
                full || match &self.bits {
                    // Partial blocks come first in a row, so the slot is the partial slot.
                    Some(bits) => bits.keeps(bits.tile_start(r) + slot, i % bq, j % bk),
                    None => self.predicate.keeps(i, j, self.seq_q, self.seq_kv),
                }
            })
    }

    /// The mask row of batch `b`, query head `h`, query block `q` in the mask's own
    /// dimensions (broadcast applied): `(b' * Hm + h') * QB + q`, the index of
    /// `kv_num_blocks` and of [`ElementBits::tile_start`].
    pub fn row_index(&self, b: usize, h: usize, q: usize) -> usize {
        let qb = self.block_counts().0;
        ((if self.batch == 1 { 0 } else { b }) * self.heads + if self.heads == 1 { 0 } else { h })
            * qb
            + q
    }

    /// Kept blocks (partial + full) over all (batch, head, query block) rows of a call with
    /// `batch` and `heads`, broadcast dimensions expanded.
    pub fn kept_blocks(&self, batch: usize, heads: usize) -> usize {
        let (qb, _) = self.block_counts();
        let mut total = 0;
        for b in 0..self.batch {
            for h in 0..self.heads {
                total += (0..qb).map(|q| self.row(b, h, q).count()).sum::<usize>();
            }
        }
        total * (batch / self.batch) * (heads / self.heads)
    }

    /// The mask of a call of `batch` x `heads` (batch, query head) rows, row `(b', h')` being
    /// this mask's row `pick(b', h')` (broadcast applied): for splitting one call's heads
    /// across devices, each part a call of its own. A mask broadcast over both batch and heads
    /// is returned as it is. Lists, full blocks and element bits are copied row by row.
    ///
    /// # Errors
    /// As [`BlockMask::from_parts`] (the copy of a valid mask is valid).
    pub(crate) fn gather(
        &self,
        batch: usize,
        heads: usize,
        pick: impl Fn(usize, usize) -> (usize, usize),
    ) -> Result<Self> {
        if self.batch == 1 && self.heads == 1 {
            return Ok(self.clone());
        }
        let (qb, kb) = self.block_counts();
        let rows = batch * heads * qb;
        let mut counts = Vec::with_capacity(rows);
        let mut indices = Vec::with_capacity(rows * kb);
        let mut full = self
            .full
            .as_ref()
            .map(|_| (Vec::with_capacity(rows), Vec::with_capacity(rows * kb)));
        let mut words = self.bits.as_ref().map(|_| Vec::new());
        for b in 0..batch {
            for h in 0..heads {
                let (ob, oh) = pick(b, h);
                for q in 0..qb {
                    let r = self.row_index(ob, oh, q);
                    counts.push(self.kv_num_blocks[r]);
                    indices.extend_from_slice(&self.kv_indices[r * kb..(r + 1) * kb]);
                    if let (Some((n, i)), Some((fn_, fi))) = (&mut full, &self.full) {
                        n.push(fn_[r]);
                        i.extend_from_slice(&fi[r * kb..(r + 1) * kb]);
                    }
                    if let (Some(w), Some(bits)) = (&mut words, &self.bits) {
                        let per = bits.tile_words();
                        let first = bits.tile_start(r);
                        let count = self.kv_num_blocks[r] as usize;
                        w.extend_from_slice(&bits.words()[first * per..(first + count) * per]);
                    }
                }
            }
        }
        let parts = BlockMaskParts {
            seq_q: self.seq_q,
            seq_kv: self.seq_kv,
            block: self.block,
            batch,
            heads,
            kv_num_blocks: counts,
            kv_indices: indices,
            full,
            predicate: self.predicate.clone(),
        };
        match words {
            Some(w) => Self::from_parts_with_bits(parts, w),
            None => Self::from_parts(parts),
        }
    }

    /// (batch, heads) dimensions of the tensors (1 where broadcast).
    pub fn broadcast_dims(&self) -> (usize, usize) {
        (self.batch, self.heads)
    }

    /// Whether the mask is shaped for `batch` and `heads` (each equal, or the mask's is 1).
    pub fn fits(&self, batch: usize, heads: usize) -> bool {
        (self.batch == 1 || self.batch == batch) && (self.heads == 1 || self.heads == heads)
    }

    /// The kept key blocks of query block `q` for batch `b` and head `h` (broadcast applied):
    /// partial blocks first, then full ones, each as (key block, is_full). Only the defined
    /// prefix of each index row is read.
    pub fn row(&self, b: usize, h: usize, q: usize) -> impl Iterator<Item = (usize, bool)> + '_ {
        let kb = self.block_counts().1;
        let r = self.row_index(b, h, q);
        let partial = self.kv_indices[r * kb..r * kb + self.kv_num_blocks[r] as usize]
            .iter()
            .map(|&k| (k as usize, false));
        let full = self.full.iter().flat_map(move |(n, i)| {
            i[r * kb..r * kb + n[r] as usize]
                .iter()
                .map(|&k| (k as usize, true))
        });
        partial.chain(full)
    }

    /// The mask flattened for a GPU kernel: row starts (`[Bm * Hm * QB + 1]`), entries (key
    /// block, bit 31 set for a full block; rows in [`BlockMask::row`] order) and the longest
    /// row's length.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the entries do not fit `u32` offsets.
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    pub(crate) fn flat_lists(&self) -> Result<(Vec<u32>, Vec<u32>, usize)> {
        let qb = self.block_counts().0;
        let mut rows = Vec::with_capacity(self.batch * self.heads * qb + 1);
        let mut entries = Vec::new();
        let mut longest = 0;
        let offset = |n: usize| {
            u32::try_from(n).map_err(|_| Error::TooLarge("block mask has over 2^32 kept blocks"))
        };
        for b in 0..self.batch {
            for h in 0..self.heads {
                for q in 0..qb {
                    rows.push(offset(entries.len())?);
                    let before = entries.len();
                    entries.extend(
                        self.row(b, h, q)
                            .map(|(k, full)| k as u32 | if full { 1 << 31 } else { 0 }),
                    );
                    longest = longest.max(entries.len() - before);
                }
            }
        }
        rows.push(offset(entries.len())?);
        Ok((rows, entries, longest))
    }
}

/// The `rows x kb` cells of a block mask's index tensors, once its four i32 tensors (two of
/// `rows` counts, two of `rows x kb` indices) are known to fit this machine's memory.
///
/// # Errors
/// [`Error::TooLarge`] if the cell count overflows or the tensors exceed the memory.
pub(super) fn block_table_cells(rows: usize, kb: usize) -> Result<usize> {
    let cells = rows
        .checked_mul(kb)
        .ok_or(Error::TooLarge("block mask dimensions overflow"))?;
    crate::limits::host_bytes(
        cells.saturating_add(rows),
        2 * std::mem::size_of::<i32>(),
        "block mask exceeds this machine's memory",
    )?;
    Ok(cells)
}
