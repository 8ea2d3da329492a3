"""Independent references for megabatch.attention: FlexAttention-style block masks built in
numpy, and a dense float64 softmax whose element mask calls ``mask_mod`` once per (q, kv)
pair of every kept block with Python ints (no vectorisation, no bit packing)."""

import numpy as np


class BlockMask:
    """The attributes of torch's ``BlockMask`` that megabatch reads, nothing else."""

    def __init__(self, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, block_size, mask_mod):
        self.kv_num_blocks = kv_num_blocks
        self.kv_indices = kv_indices
        self.full_kv_num_blocks = full_kv_num_blocks
        self.full_kv_indices = full_kv_indices
        self.BLOCK_SIZE = block_size
        self.mask_mod = mask_mod


def _lists(states, want):
    """``(counts [..., QB], indices [..., QB, KB])`` of the blocks whose state is ``want``,
    in ascending order, the unused tail of each row filled with 0 (as torch does)."""
    *lead, kb = states.shape
    counts = (states == want).sum(-1).astype(np.int32)
    indices = np.zeros(states.shape, dtype=np.int32)
    for pos in np.ndindex(*lead):
        listed = np.flatnonzero(states[pos] == want)
        indices[pos][: listed.size] = listed
    return counts, indices


def block_states(mask_mod, dims, seq, block):
    """0 (absent), 1 (partial) or 2 (full) per block ``[Bm, Hm, QB, KB]``, from the dense
    mask of ``mask_mod`` evaluated on numpy index arrays (as ``create_block_mask`` does)."""
    block = (block, block) if isinstance(block, int) else block
    (bm, hm), (sq, skv), (bq, bk) = dims, seq, block
    qb, kb = -(-sq // bq), -(-skv // bk)
    b = np.arange(bm)[:, None, None, None]
    h = np.arange(hm)[None, :, None, None]
    q = np.arange(sq)[None, None, :, None]
    kv = np.arange(skv)[None, None, None, :]
    dense = np.broadcast_to(np.asarray(mask_mod(b, h, q, kv), dtype=bool), (bm, hm, sq, skv))
    states = np.zeros((bm, hm, qb, kb), dtype=np.int8)
    for i in range(qb):
        for j in range(kb):
            tile = dense[:, :, i * bq : (i + 1) * bq, j * bk : (j + 1) * bk]
            states[:, :, i, j] = np.where(tile.all((-1, -2)), 2, np.where(tile.any((-1, -2)), 1, 0))
    return states


def from_states(states, block, mask_mod, rng=None):
    """A BlockMask of these block states; with ``rng``, each row's lists in a random order."""
    counts, indices = _lists(states, 1)
    full_counts, full_indices = _lists(states, 2)
    if rng is not None:
        for idx, n in ((indices, counts), (full_indices, full_counts)):
            for pos in np.ndindex(*n.shape):
                idx[pos][: n[pos]] = rng.permutation(idx[pos][: n[pos]])
    return BlockMask(counts, indices, full_counts, full_indices, block, mask_mod)


def create_block_mask(mask_mod, dims, seq, block):
    """As torch's ``create_block_mask``: full, partial and absent blocks from ``mask_mod``."""
    return from_states(block_states(mask_mod, dims, seq, block), block, mask_mod)


def element_mask(mask, shape, seq):
    """Dense ``[B, Hq, Sq, Skv]`` booleans: full blocks whole, partial blocks by calling
    ``mask.mask_mod(b, h, q, kv)`` with ints per pair (every pair, if it is None)."""
    batch, heads = shape
    sq, skv = seq
    bs = mask.BLOCK_SIZE
    bq, bk = (bs, bs) if isinstance(bs, int) else bs
    out = np.zeros((batch, heads, sq, skv), dtype=bool)
    lists = [(np.asarray(mask.kv_num_blocks), np.asarray(mask.kv_indices), False)]
    if mask.full_kv_num_blocks is not None:
        lists.append((np.asarray(mask.full_kv_num_blocks), np.asarray(mask.full_kv_indices), True))
    for b in range(batch):
        for h in range(heads):
            for counts, indices, full in lists:
                mb, mh = min(b, counts.shape[0] - 1), min(h, counts.shape[1] - 1)
                for i in range(counts.shape[2]):
                    for j in indices[mb, mh, i, : counts[mb, mh, i]]:
                        rows = range(i * bq, min((i + 1) * bq, sq))
                        cols = range(j * bk, min((j + 1) * bk, skv))
                        for qi in rows:
                            for kj in cols:
                                keep = full or mask.mask_mod is None or bool(mask.mask_mod(b, h, qi, kj))
                                out[b, h, qi, kj] = keep
    return out


def attention(q, k, v, mask, scale=None):
    """``(O, LSE)`` in float64: dense softmax over the kept pairs; a row with none kept gives
    O = 0 and LSE = -inf (FlexAttention's convention). GQA: head ``h`` reads ``h // (Hq // Hkv)``."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    batch, hq, sq, d = q.shape
    hkv, skv = k.shape[1], k.shape[2]
    group = hq // hkv
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    keep = element_mask(mask, (batch, hq), (sq, skv))
    s = np.where(keep, scale * q @ np.swapaxes(k, -1, -2), -np.inf)
    m = s.max(-1, keepdims=True)
    empty = ~keep.any(-1)
    p = np.exp(s - np.where(np.isfinite(m), m, 0.0))
    total = p.sum(-1, keepdims=True)
    o = np.where(empty[..., None], 0.0, p @ v / np.where(total > 0, total, 1.0))
    lse = np.where(empty, -np.inf, np.log(np.where(empty, 1.0, total[..., 0])) + np.where(empty, 0.0, m[..., 0]))
    return o, lse
