//! Block masks from a `mask_mod` closure, as FlexAttention's `create_block_mask`: every block
//! classified as empty, partial or full from the closure's values, and the partial blocks'
//! values kept as packed element bits.

use super::mask::{block_table_cells, check_block_sizes};
use super::{BlockMask, BlockMaskParts, ElementBits, MaskPredicate};
use crate::{Error, Result};

impl BlockMask {
    /// A mask broadcast over batch and heads from `mask_mod(q_idx, kv_idx) -> keep`, the
    /// two-index form of FlexAttention's `mask_mod` (prefix-LM, padding of one layout,
    /// dilated, image-text, ...). See [`BlockMask::from_mask_mod_bh`].
    ///
    /// # Errors
    /// As [`BlockMask::from_mask_mod_bh`].
    pub fn from_mask_mod(
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        mask_mod: impl Fn(usize, usize) -> bool,
    ) -> Result<Self> {
        Self::from_mask_mod_bh(1, 1, seq_q, seq_kv, block, |_, _, q, kv| mask_mod(q, kv))
    }

    /// A mask of `[batch, heads]` rows from `mask_mod(b, h, q_idx, kv_idx) -> keep`,
    /// FlexAttention's `create_block_mask`: `mask_mod` is called once for every pair
    /// `q_idx < seq_q`, `kv_idx < seq_kv` of every block, a block is *full* when it keeps
    /// every pair (no bits), *absent* when it keeps none, and *partial* otherwise, with its
    /// values packed as [`ElementBits`]. `batch` or `heads` 1 broadcasts (`b` or `h` is then
    /// always 0). The lists are in ascending key-block order, partial then full, as
    /// `create_block_mask` writes them; the predicate is [`MaskPredicate::None`].
    ///
    /// Cost: `batch * heads * seq_q * seq_kv` calls, one pass; memory: the four tensors and
    /// `BQ * ceil(BK / 32)` words per partial block.
    ///
    /// # Errors
    /// [`Error::Mask`] for unsupported block sizes or a zero batch or head count;
    /// [`Error::TooLarge`] if the tensors overflow or exceed this machine's memory.
    pub fn from_mask_mod_bh(
        batch: usize,
        heads: usize,
        seq_q: usize,
        seq_kv: usize,
        block: (usize, usize),
        mask_mod: impl Fn(usize, usize, usize, usize) -> bool,
    ) -> Result<Self> {
        let (bq, bk) = block;
        check_block_sizes(block)?;
        let (qb, kb) = (seq_q.div_ceil(bq), seq_kv.div_ceil(bk));
        let rows = batch
            .checked_mul(heads)
            .and_then(|x| x.checked_mul(qb))
            .ok_or(Error::TooLarge("block mask dimensions overflow"))?;
        // The bits are not counted: they grow with the partial blocks found.
        let cells = block_table_cells(rows, kb)?;
        let row_words = ElementBits::words_per_row(bk);
        let (mut partial_n, mut full_n) = (vec![0i32; rows], vec![0i32; rows]);
        let (mut partial_i, mut full_i) = (vec![0i32; cells], vec![0i32; cells]);
        let mut words = Vec::new();
        let mut tile = vec![0u32; bq * row_words];
        for r in 0..rows {
            let (b, h, q) = (r / (heads * qb), r / qb % heads, r % qb);
            let i0 = q * bq;
            let tile_rows = bq.min(seq_q - i0);
            for k in 0..kb {
                let j0 = k * bk;
                let cols = bk.min(seq_kv - j0);
                tile.fill(0);
                let mut kept = 0;
                for row in 0..tile_rows {
                    for c in 0..cols {
                        if mask_mod(b, h, i0 + row, j0 + c) {
                            tile[row * row_words + c / 32] |= 1 << (c % 32);
                            kept += 1;
                        }
                    }
                }
                let (counts, indices) = if kept == 0 {
                    continue;
                } else if kept == tile_rows * cols {
                    (&mut full_n, &mut full_i)
                } else {
                    words.extend_from_slice(&tile);
                    (&mut partial_n, &mut partial_i)
                };
                indices[r * kb + counts[r] as usize] = k as i32;
                counts[r] += 1;
            }
        }
        Self::from_parts_with_bits(
            BlockMaskParts {
                seq_q,
                seq_kv,
                block,
                batch,
                heads,
                kv_num_blocks: partial_n,
                kv_indices: partial_i,
                full: Some((full_n, full_i)),
                predicate: MaskPredicate::None,
            },
            words,
        )
    }
}
