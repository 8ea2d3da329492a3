//! FlexAttention block masks from `.npz` archives: every tensor's rank and shape checked
//! against PyTorch's `BlockMask` layout and the attention call before the library validates
//! the entries, so each error names the archive, the tensor and what was expected. An optional
//! `partial_block_bits` array carries any `mask_mod` as packed element bits.

use std::path::Path;

use megabatch::{BlockMask, BlockMaskParts, MaskPredicate, BLOCK_SIZES};

use crate::npy::{self, Array};
use crate::{CliError, CliResult};

/// What the mask must fit: the attention call's sizes and the defaults for what the archive
/// leaves out.
pub struct MaskFit {
    /// Q's batch B.
    pub batch: usize,
    /// Q's heads Hq.
    pub heads: usize,
    /// Query length Sq.
    pub seq_q: usize,
    /// Key/value length Skv.
    pub seq_kv: usize,
    /// (BQ, BK) when the archive has no `block_size`.
    pub block: (usize, usize),
    /// Element rule inside partial blocks.
    pub predicate: MaskPredicate,
}

const NUM_LAYOUT: &str = "rank 3 [B, H, Q_BLOCKS]";
const IDX_LAYOUT: &str = "rank 4 [B, H, Q_BLOCKS, KV_BLOCKS]";

/// Reads and validates the block mask in the archive at `path`.
pub fn read(path: &Path, fit: &MaskFit) -> CliResult<BlockMask> {
    let file = path.display().to_string();
    let err = |array: &str, reason: String| CliError::Usage(format!("{file}: {array}: {reason}"));
    let required = |name: &str| -> CliResult<Array<i64>> {
        npy::read_npz_ints(path, name)?
            .ok_or_else(|| CliError::Usage(format!("{file}: no array `{name}`")))
    };
    let block = read_block_size(path, fit.block)?;
    let (qb, kb) = (fit.seq_q.div_ceil(block.0), fit.seq_kv.div_ceil(block.1));
    let num = required("kv_num_blocks")?;
    let [bm, hm] = match num.shape.as_slice() {
        &[bm, hm, _] => [bm, hm],
        other => return Err(err("kv_num_blocks", expected(NUM_LAYOUT, other))),
    };
    if bm != 1 && bm != fit.batch {
        return Err(err(
            "kv_num_blocks",
            format!(
                "B = {bm} is neither Q's batch {} nor 1 (broadcast)",
                fit.batch
            ),
        ));
    }
    if hm != 1 && hm != fit.heads {
        return Err(err(
            "kv_num_blocks",
            format!(
                "H = {hm} is neither Q's heads {} nor 1 (broadcast)",
                fit.heads
            ),
        ));
    }
    let num_shape = [bm, hm, qb];
    let idx_shape = [bm, hm, qb, kb];
    let geometry = format!(
        "Sq = {} and Skv = {} in blocks of {} x {}",
        fit.seq_q, fit.seq_kv, block.0, block.1
    );
    let check = |array: &str, layout: &str, got: &[usize], want: &[usize]| -> CliResult {
        if got.len() != want.len() {
            return Err(err(array, expected(layout, got)));
        }
        if got != want {
            return Err(err(
                array,
                format!("expected shape {want:?} ({geometry}), got {got:?}"),
            ));
        }
        Ok(())
    };
    check("kv_num_blocks", NUM_LAYOUT, &num.shape, &num_shape)?;
    let idx = required("kv_indices")?;
    check("kv_indices", IDX_LAYOUT, &idx.shape, &idx_shape)?;
    let full = match (
        npy::read_npz_ints(path, "full_kv_num_blocks")?,
        npy::read_npz_ints(path, "full_kv_indices")?,
    ) {
        (Some(n), Some(i)) => {
            check("full_kv_num_blocks", NUM_LAYOUT, &n.shape, &num_shape)?;
            check("full_kv_indices", IDX_LAYOUT, &i.shape, &idx_shape)?;
            Some((
                to_i32(&file, "full_kv_num_blocks", n.data)?,
                to_i32(&file, "full_kv_indices", i.data)?,
            ))
        }
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(format!(
                "{file}: full_kv_num_blocks and full_kv_indices come together"
            )))
        }
    };
    let parts = BlockMaskParts {
        seq_q: fit.seq_q,
        seq_kv: fit.seq_kv,
        block,
        batch: bm,
        heads: hm,
        kv_num_blocks: to_i32(&file, "kv_num_blocks", num.data)?,
        kv_indices: to_i32(&file, "kv_indices", idx.data)?,
        full,
        predicate: fit.predicate.clone(),
    };
    match read_bits(path, block)? {
        Some(words) => BlockMask::from_parts_with_bits(parts, words),
        None => BlockMask::from_parts(parts),
    }
    .map_err(|e| CliError::Usage(format!("{file}: {e}")))
}

/// The archive's `partial_block_bits`, the element mask of every partial block in
/// `kv_indices` order, as the library's `u32` words: uint8 `[NNZ, BQ, ceil(BK/8)]`, exactly
/// `numpy.packbits(m, axis=-1, bitorder="little")` of the `(NNZ, BQ, BK)` booleans (each row
/// padded here to whole words), or uint32 `[NNZ, BQ, ceil(BK/32)]`, the library's layout.
/// The library checks NNZ against `kv_num_blocks` and that no bit lies past the sequences.
fn read_bits(path: &Path, (bq, bk): (usize, usize)) -> CliResult<Option<Vec<u32>>> {
    const NAME: &str = "partial_block_bits";
    let file = path.display();
    let shape_err = |layout: &str, got: &[usize]| {
        CliError::Usage(format!(
            "{file}: {NAME}: expected {layout} for blocks of {bq} x {bk}, got shape {got:?}"
        ))
    };
    let row_words = bk.div_ceil(32);
    Ok(match npy::read_npz_bits(path, NAME)? {
        None => None,
        Some(npy::BitsArray::Words(a)) => match a.shape.as_slice() {
            &[_, r, w] if r == bq && w == row_words => Some(a.data),
            other => return Err(shape_err("uint32 [NNZ, BQ, ceil(BK/32)]", other)),
        },
        Some(npy::BitsArray::Bytes(a)) => match a.shape.as_slice() {
            &[_, r, w] if r == bq && w == bk.div_ceil(8) => Some(
                a.data
                    .chunks(w)
                    .flat_map(|row| {
                        // Little-endian words of the row's bytes, zero-padded to whole words.
                        (0..row_words).map(move |i| {
                            let byte =
                                |k: usize| u32::from(row.get(4 * i + k).copied().unwrap_or(0));
                            byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24
                        })
                    })
                    .collect(),
            ),
            other => return Err(shape_err("uint8 [NNZ, BQ, ceil(BK/8)]", other)),
        },
    })
}

fn expected(layout: &str, got: &[usize]) -> String {
    format!("expected {layout}, got shape {got:?}")
}

/// The archive's `block_size` [BQ, BK], or `default` (from `--block`); each one of
/// [`BLOCK_SIZES`].
fn read_block_size(path: &Path, default: (usize, usize)) -> CliResult<(usize, usize)> {
    let file = path.display();
    let (block, source) = match npy::read_npz_ints(path, "block_size")? {
        Some(Array { data, shape }) => match data.as_slice() {
            &[bq, bk] => (
                (
                    usize::try_from(bq).unwrap_or(0),
                    usize::try_from(bk).unwrap_or(0),
                ),
                format!("{file}: block_size"),
            ),
            _ => {
                return Err(CliError::Usage(format!(
                    "{file}: block_size: expected two numbers [BQ, BK], got shape {shape:?}"
                )))
            }
        },
        None => (default, "--block".to_string()),
    };
    if !(BLOCK_SIZES.contains(&block.0) && BLOCK_SIZES.contains(&block.1)) {
        return Err(CliError::Usage(format!(
            "{source}: expected block sizes in {BLOCK_SIZES:?}, got [{}, {}]",
            block.0, block.1
        )));
    }
    Ok(block)
}

/// Converts a mask tensor to the `i32` the mask stores, refusing values out of range.
fn to_i32(file: &str, name: &str, data: Vec<i64>) -> CliResult<Vec<i32>> {
    data.into_iter()
        .map(i32::try_from)
        .collect::<Result<_, _>>()
        .map_err(|_| CliError::Usage(format!("{file}: {name}: values beyond int32")))
}
