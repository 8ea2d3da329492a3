//! Bit-packed element masks of partial blocks: any `mask_mod`, one bit per (query, key) pair
//! of each partial block, parallel to the block list (FlashInfer's `(nnz, BQ, BK)` boolean
//! mask, packed little-endian into 32-bit words).

use crate::{Error, Result};

/// The element mask of every partial block of a [`super::BlockMask`], one bit per (query, key)
/// pair: what lets any FlexAttention `mask_mod` (prefix-LM, per-token padding, dilated,
/// image-text, ...) run on every backend. Full blocks have no bits (every pair kept); blocks
/// not listed keep nothing.
///
/// # Layout
/// Tiles in the order of the partial-block list: mask rows `(b, h, q_block)` row-major over the
/// mask's own (possibly broadcast) dimensions `[Bm, Hm, QB]`, and within a row the slots
/// `0..kv_num_blocks` in `kv_indices` order; so `nnz = sum(kv_num_blocks)` tiles in all, and
/// slot `s` of mask row `r` is tile `sum(kv_num_blocks[..r]) + s`. A tile is `BQ` rows (query
/// `q_block * BQ + row`), each of [`ElementBits::words_per_row`]`(BK) = ceil(BK / 32)` `u32`
/// words; key `k_block * BK + col` is bit `col % 32` (least significant first) of word
/// `col / 32`. So tile `t`, row `r`, column `c` is bit `c % 32` of
/// `words[(t * BQ + r) * ceil(BK / 32) + c / 32]`, and a set bit keeps the pair. That is
/// `numpy.packbits(m, axis=-1, bitorder="little")` of the `(nnz, BQ, BK)` booleans with each
/// row padded to a multiple of 4 bytes, viewed as little-endian `uint32` (`BK = 16` rows take
/// one word whose upper 16 bits are zero). Bits of rows past `Sq`, of columns past `Skv` (in
/// the last blocks) and of the padding must be 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementBits {
    words: Vec<u32>,
    /// First tile of each mask row, and the tile count at the end (`[Bm * Hm * QB + 1]`).
    tile_starts: Vec<usize>,
    /// Words of one tile row: `ceil(BK / 32)`.
    row_words: usize,
    /// Words of one tile: `BQ * row_words`.
    tile_words: usize,
}

impl ElementBits {
    /// `u32` words per tile row for key blocks of `bk`: `ceil(bk / 32)`.
    pub fn words_per_row(bk: usize) -> usize {
        bk.div_ceil(32)
    }

    /// Packs `(nnz, bq, bk)` booleans (row-major, `true` = kept) into the words of the layout
    /// above: what a caller that evaluated its `mask_mod` on the partial blocks (as PyTorch's
    /// `create_mask`, vmapped) hands to [`super::BlockMask::from_parts_with_bits`].
    ///
    /// # Errors
    /// [`Error::Mask`] if `bools.len()` is not a multiple of `bq * bk` (or either is 0).
    pub fn pack(bools: &[bool], bq: usize, bk: usize) -> Result<Vec<u32>> {
        let row_words = Self::words_per_row(bk);
        if bq == 0 || bk == 0 || !bools.len().is_multiple_of(bq * bk) {
            return Err(Error::Mask {
                position: None,
                reason: "element booleans must be (nnz, BQ, BK)",
            });
        }
        let mut words = vec![0u32; bools.len() / bk * row_words];
        for (row, bits) in bools.chunks(bk).enumerate() {
            for (c, _) in bits.iter().enumerate().filter(|(_, &keep)| keep) {
                words[row * row_words + c / 32] |= 1 << (c % 32);
            }
        }
        Ok(words)
    }

    /// Validates `words` against the partial-block lists of a mask and builds the element
    /// mask. `partial_counts` is `kv_num_blocks` (`[Bm * Hm * QB]`, already checked), `kv_index`
    /// gives the key block of (mask row, slot), `position` turns (mask row, slot) into the
    /// `[b, h, q_block, slot]` of an error.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        words: Vec<u32>,
        partial_counts: &[i32],
        kv_index: impl Fn(usize, usize) -> usize,
        position: impl Fn(usize, usize) -> [usize; 4],
        seq: (usize, usize),
        block: (usize, usize),
    ) -> Result<Self> {
        let (bq, bk) = block;
        let row_words = Self::words_per_row(bk);
        let tile_words = bq * row_words;
        let qb = seq.0.div_ceil(bq);
        let mut tile_starts = Vec::with_capacity(partial_counts.len() + 1);
        let mut tiles = 0usize;
        for &n in partial_counts {
            tile_starts.push(tiles);
            tiles += n as usize; // counts were checked to lie in 0..=KB
        }
        tile_starts.push(tiles);
        let expected = tiles.checked_mul(tile_words).ok_or(Error::TooLarge(
            "element bits of the partial blocks overflow usize",
        ))?;
        if words.len() != expected {
            return Err(Error::Mask {
                position: None,
                reason: "element bits must have sum(kv_num_blocks) * BQ * ceil(BK/32) words",
            });
        }
        for (r, &n) in partial_counts.iter().enumerate() {
            // Rows of the block inside Sq; columns inside Skv and BK.
            let rows = bq.min(seq.0 - (r % qb) * bq);
            for slot in 0..n as usize {
                let cols = bk.min(seq.1 - kv_index(r, slot) * bk);
                let tile = &words[(tile_starts[r] + slot) * tile_words..][..tile_words];
                for (row, word_row) in tile.chunks(row_words).enumerate() {
                    let stray = word_row.iter().enumerate().any(|(w, &bits)| {
                        let valid = if row >= rows {
                            0
                        } else {
                            low_bits(cols.saturating_sub(32 * w))
                        };
                        bits & !valid != 0
                    });
                    if stray {
                        return Err(Error::Mask {
                            position: Some(position(r, slot)),
                            reason: "element bit set past the sequence ends or BK (padding)",
                        });
                    }
                }
            }
        }
        Ok(Self {
            words,
            tile_starts,
            row_words,
            tile_words,
        })
    }

    /// The packed words, `[nnz * BQ * ceil(BK/32)]` (layout above).
    pub fn words(&self) -> &[u32] {
        &self.words
    }

    /// `u32` words of one tile: `BQ * ceil(BK / 32)`.
    pub fn tile_words(&self) -> usize {
        self.tile_words
    }

    /// Partial blocks with bits: `sum(kv_num_blocks)`.
    pub fn tiles(&self) -> usize {
        self.tile_starts.last().copied().unwrap_or(0)
    }

    /// The tile of slot 0 of mask row `row` (`(b * Hm + h) * QB + q_block` in the mask's own
    /// dimensions); slot `s` is tile `tile_start(row) + s`. Also the `u32` the GPU kernels find
    /// a row's first tile by.
    pub fn tile_start(&self, row: usize) -> usize {
        self.tile_starts[row]
    }

    /// Whether tile `tile` keeps the pair at `row`, `col` of its block (block-relative).
    #[inline]
    pub fn keeps(&self, tile: usize, row: usize, col: usize) -> bool {
        let w = self.words[tile * self.tile_words + row * self.row_words + col / 32];
        w >> (col % 32) & 1 != 0
    }
}

/// A word with its lowest `n` bits set (all 32 from `n >= 32`).
fn low_bits(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}
