"""A FlexAttention ``BlockMask``, read duck-typed, as the lists and element bits the crate takes.

The four block tensors pass through as ``int32``; the ``mask_mod`` is evaluated on the
partial blocks only (those in ``kv_indices``; blocks in ``full_kv_indices`` keep every pair
and need no bits), vectorised as FlexAttention's ``create_mask`` does with ``vmap``, and
packed in the crate's ``ElementBits`` layout: tile ``t`` (the partial blocks in row-major
``(b, h, q_block)`` order, slots in ``kv_indices`` order), row ``r``, column ``c`` is bit
``c % 32`` (least significant first) of little-endian ``uint32`` word
``(t * BQ + r) * ceil(BK / 32) + c // 32``; bits past ``Sq``, ``Skv`` and ``BK`` are 0.
"""

import sys

import numpy

_FIELDS = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices")


def read_block_mask(block_mask, batch, heads_q, seq_q, seq_kv):
    """The block lists and element bits of ``block_mask`` for a call of these sizes.

    Returns a dict: ``dims`` ``(Bm, Hm)``, ``block`` ``(BQ, BK)``, ``kv_num_blocks`` and
    ``kv_indices`` (``int32`` little-endian bytes), ``full`` (a pair of those, or ``None``),
    ``bits`` (``uint32`` little-endian bytes, or ``None`` without a ``mask_mod``: every pair
    of a partial block kept, FlexAttention's ``noop_mask``).

    A mask that broadcasts over batch or heads (``Bm`` or ``Hm`` 1) is expanded to
    ``(batch, heads_q)`` when it has a ``mask_mod``: FlexAttention calls the ``mask_mod`` with
    each row's own ``b`` and ``h``, so the bits may differ per row.

    Raises ``TypeError`` for a missing attribute, a non-integer block tensor or a
    ``mask_mod`` that cannot be called on indices; ``ValueError`` for shapes that do not fit
    the call, counts or indices out of range, or a tensor on a GPU.
    """
    for name in ("kv_num_blocks", "kv_indices", "BLOCK_SIZE"):
        if not hasattr(block_mask, name):
            raise TypeError(
                f"block_mask has no `{name}`: it must be a FlexAttention BlockMask (or an object "
                "with kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, BLOCK_SIZE "
                "and mask_mod)"
            )
    bq, bk = _block_size(block_mask.BLOCK_SIZE)
    qb, kb = -(-seq_q // bq), -(-seq_kv // bk)
    tensors = {name: _int_array(getattr(block_mask, name, None), name) for name in _FIELDS}
    counts, indices = tensors["kv_num_blocks"], tensors["kv_indices"]
    if counts.ndim != 3 or counts.shape[0] not in (1, batch) or counts.shape[1] not in (1, heads_q):
        raise ValueError(
            f"block_mask.kv_num_blocks has shape {counts.shape}: it must be [B or 1, Hq or 1, "
            f"ceil(Sq / BQ)] = [{batch} or 1, {heads_q} or 1, {qb}]"
        )
    dims = counts.shape[:2]
    want = {"kv_num_blocks": (*dims, qb), "kv_indices": (*dims, qb, kb)}
    want["full_kv_num_blocks"], want["full_kv_indices"] = want["kv_num_blocks"], want["kv_indices"]
    for name, t in tensors.items():
        if t is not None and t.shape != want[name]:
            raise ValueError(
                f"block_mask.{name} has shape {t.shape}, expected {want[name]} for Sq={seq_q}, "
                f"Skv={seq_kv} and BLOCK_SIZE ({bq}, {bk}): the mask was made for other lengths"
            )
    full_n, full_i = tensors["full_kv_num_blocks"], tensors["full_kv_indices"]
    if (full_n is None) != (full_i is None):
        raise ValueError("block_mask has one of full_kv_num_blocks / full_kv_indices without the other")
    mask_mod = getattr(block_mask, "mask_mod", None)
    if getattr(mask_mod, "__name__", None) == "noop_mask":
        mask_mod = None
    if mask_mod is not None and dims != (batch, heads_q):
        expand = (batch, heads_q)
        counts, indices = _expand(counts, expand), _expand(indices, expand)
        if full_n is not None:
            full_n, full_i = _expand(full_n, expand), _expand(full_i, expand)
        dims = expand
    for n, i, name in ((counts, indices, ""), (full_n, full_i, "full_")):
        if n is not None:
            _check_lists(n, i, kb, name)
    bits = None
    if mask_mod is not None:
        bits = _element_bits(mask_mod, counts, indices, (bq, bk), (seq_q, seq_kv))
    return {
        "dims": tuple(int(d) for d in dims),
        "block": (bq, bk),
        "kv_num_blocks": _i32_bytes(counts),
        "kv_indices": _i32_bytes(indices),
        "full": None if full_n is None else (_i32_bytes(full_n), _i32_bytes(full_i)),
        "bits": bits,
    }


def _block_size(size):
    """``(BQ, BK)`` from an int or a pair of ints."""
    pair = (size, size) if isinstance(size, int) else tuple(size) if hasattr(size, "__len__") else None
    if pair is None or len(pair) != 2 or not all(isinstance(s, (int, numpy.integer)) for s in pair):
        raise TypeError(f"block_mask.BLOCK_SIZE must be an int or a pair (BQ, BK) of ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def _int_array(obj, name):
    """A CPU integer tensor as an ``int64`` numpy array (``None`` stays ``None``)."""
    if obj is None:
        return None
    device = getattr(obj, "device", None)
    if device is not None and not isinstance(device, str) and getattr(device, "type", "cpu") != "cpu":
        # A torch CUDA tensor (create_block_mask(..., device="cuda")): read once, to the host.
        if not hasattr(obj, "cpu"):
            raise ValueError(f"block_mask.{name} is on {device}: pass CPU block tensors (.cpu())")
        obj = obj.cpu()
    elif type(obj).__module__.split(".", 1)[0] == "cupy":
        obj = obj.get()
    if hasattr(obj, "__array__") or isinstance(obj, (list, tuple)):
        array = numpy.asarray(obj)
    elif hasattr(obj, "__dlpack__"):
        array = numpy.from_dlpack(obj)
    else:
        raise TypeError(f"block_mask.{name} must be an integer array, got {type(obj).__name__}")
    if not numpy.issubdtype(array.dtype, numpy.integer):
        raise TypeError(f"block_mask.{name} is {array.dtype}: block tensors are integers (int32)")
    return array.astype(numpy.int64)


def _expand(t, dims):
    """``t`` broadcast over its first two dimensions to ``dims``, as a new array."""
    return numpy.ascontiguousarray(numpy.broadcast_to(t, (*dims, *t.shape[2:])))


def _check_lists(counts, indices, kb, prefix):
    """Counts within ``0..=KB`` and listed indices within ``0..KB`` (what the bits' indexing
    relies on; the crate checks the rest, duplicates included, with positions)."""
    if counts.size and (counts.min() < 0 or counts.max() > kb):
        raise ValueError(f"block_mask.{prefix}kv_num_blocks has a count outside 0..={kb} (ceil(Skv / BK))")
    listed = numpy.arange(kb) < counts[..., None]
    if listed.any():
        values = indices[listed]
        if values.min() < 0 or values.max() >= kb:
            raise ValueError(f"block_mask.{prefix}kv_indices lists a key block outside 0..{kb}")


def _i32_bytes(t):
    return numpy.ascontiguousarray(t, dtype="<i4").tobytes()


def _element_bits(mask_mod, counts, indices, block, seq):
    """``mask_mod`` on every pair of every partial block, packed (layout: module docstring)."""
    (bq, bk), (seq_q, seq_kv) = block, seq
    dims_h, qb, kb = counts.shape[1], counts.shape[2], indices.shape[3]
    rows = counts.reshape(-1)
    row, slot = numpy.nonzero(numpy.arange(kb)[None, :] < rows[:, None])  # tile order
    words = -(-bk // 32)
    if row.size == 0:
        return b""
    kv_block = indices.reshape(-1, kb)[row, slot]
    b = (row // (dims_h * qb))[:, None, None]
    h = (row // qb % dims_h)[:, None, None]
    q_idx = (row % qb)[:, None, None] * bq + numpy.arange(bq)[None, :, None]
    kv_idx = kv_block[:, None, None] * bk + numpy.arange(bk)[None, None, :]
    inside = (q_idx < seq_q) & (kv_idx < seq_kv)
    # Indices clipped into the sequences: create_mask never calls mask_mod past them (a
    # mask_mod may index per-token arrays); the clipped pairs are masked out by `inside`.
    shape = (row.size, bq, bk)
    keep = evaluate(mask_mod, b, h, numpy.minimum(q_idx, seq_q - 1), numpy.minimum(kv_idx, seq_kv - 1), shape)
    padded = numpy.zeros((row.size, bq, words * 32), dtype=bool)
    padded[:, :, :bk] = keep & inside
    return numpy.packbits(padded, axis=-1, bitorder="little").tobytes()


def evaluate(mask_mod, b, h, q_idx, kv_idx, shape):
    """``mask_mod(b, h, q_idx, kv_idx)`` as booleans of ``shape``: called once on broadcast
    numpy index arrays (as ``create_mask`` calls it under ``vmap``); if that fails or does not
    broadcast to ``shape``, once on torch tensors (when torch is imported: a ``mask_mod``
    written with torch operations); else once per element with Python ints.

    Raises ``TypeError`` (chaining the per-element error) if no form works.
    """
    args = (b, h, q_idx, kv_idx)
    try:
        return numpy.broadcast_to(numpy.asarray(mask_mod(*args), dtype=bool), shape)
    except Exception:  # noqa: BLE001 - any failure means: not vectorisable with numpy
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:  # a mask_mod may index tensors on the GPU (document ids)
            try:
                out = mask_mod(*(torch.from_numpy(numpy.ascontiguousarray(a)).to(device) for a in args))
                return numpy.broadcast_to(numpy.asarray(out.cpu(), dtype=bool), shape)
            except Exception:  # noqa: BLE001 - as above
                pass
    full = [numpy.broadcast_to(a, shape).ravel() for a in args]
    try:
        flat = [bool(mask_mod(int(x), int(y), int(z), int(w))) for x, y, z, w in zip(*full)]
    except Exception as e:
        raise TypeError(
            f"block_mask.mask_mod could not be evaluated: called on broadcast index arrays and on "
            f"single ints (b, h, q_idx, kv_idx), it raised {type(e).__name__}: {e}"
        ) from e
    return numpy.array(flat, dtype=bool).reshape(shape)
