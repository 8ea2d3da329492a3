"""Block-sparse attention over a FlexAttention ``BlockMask``: ``attention``."""

from . import _megabatch
from ._block_mask import read_block_mask
from ._linalg import as_array


def attention(q, k, v, block_mask, *, scale=None, return_lse=False, enable_gqa=False, backend="auto"):
    """Scaled dot-product attention over the blocks a FlexAttention ``BlockMask`` keeps:
    ``softmax(scale * q @ k.mT + mask) @ v``, as ``torch.nn.attention.flex_attention`` with
    the same ``block_mask``.

    Parameters
    ----------
    q : array of shape ``[B, Hq, Sq, D]``, float32, on the CPU
        C-contiguous (numpy, or anything with ``__dlpack__`` on the CPU), read in place.
        ``D`` is 32, 64, 96, 128 or 256.
    k, v : arrays of shape ``[B, Hkv, Skv, D]``, float32, C-contiguous
        ``Hkv == Hq``, or with ``enable_gqa=True`` any divisor of ``Hq``: query head ``h``
        reads key/value head ``h // (Hq // Hkv)`` (grouped-query attention).
    block_mask : a FlexAttention ``BlockMask``, read duck-typed
        ``kv_num_blocks [Bm, Hm, QB]`` and ``kv_indices [Bm, Hm, QB, KB]`` (the partial
        blocks), optional ``full_kv_num_blocks`` / ``full_kv_indices`` (same shapes; blocks
        kept whole), integer numpy arrays, CPU torch tensors or anything with ``__array__``
        or ``__dlpack__``; ``QB = ceil(Sq / BQ)``, ``KB = ceil(Skv / BK)``, ``Bm`` in
        ``{B, 1}``, ``Hm`` in ``{Hq, 1}`` (1 broadcasts). ``BLOCK_SIZE``: an int or
        ``(BQ, BK)``, each 16, 32, 64 or 128. ``mask_mod``: ``(b, h, q_idx, kv_idx) -> bool``
        or ``None``. It is evaluated on the partial blocks only, once on broadcast numpy index
        arrays (as ``create_mask`` does under ``vmap``); a ``mask_mod`` that does not
        broadcast is called on torch tensors (if torch is imported), else once per element.
        ``None`` (or torch's ``noop_mask``) keeps every pair of a partial block, as
        FlexAttention does. With a ``mask_mod``, a broadcast mask is expanded to ``(B, Hq)``:
        the ``mask_mod`` sees each row's own ``b`` and ``h``, as in ``flex_attention``.
    scale : float, optional
        The factor on ``q @ k.mT``; default ``1 / sqrt(D)``.
    return_lse : bool
        Also return the log-sum-exp of each row's scaled, masked scores.
    enable_gqa : bool
        Allow ``Hkv != Hq`` (as ``torch.nn.functional.scaled_dot_product_attention``).
    backend : {"auto", "cpu", "wgpu", "cuda"}
        ``"auto"``: the cost model picks (the environment variable ``MEGABATCH_BACKEND``
        overrides it).

    Returns
    -------
    out : float32 array of shape ``[B, Hq, Sq, D]``
        A new numpy array. A row with no kept key (every block of its query block absent,
        or every element bit 0) is 0, as in FlexAttention.
    lse : float32 array of shape ``[B, Hq, Sq]``, only with ``return_lse=True``
        A new numpy array: ``log(sum(exp(scale * scores)))`` over the kept keys, natural
        logarithm (base e, as FlexAttention returns it); ``-inf`` for a row with no kept key.
        Returned as ``(out, lse)``.

    Scores, softmax statistics and accumulation are float32 on every backend; float64
    inputs are refused rather than silently rounded.

    Raises
    ------
    TypeError
        ``q``, ``k`` or ``v`` not float32; a ``block_mask`` without the BlockMask attributes,
        with non-integer tensors, or whose ``mask_mod`` cannot be called on indices.
    ValueError
        Shapes that do not fit together (``Hkv != Hq`` without ``enable_gqa``, ``Hq`` not a
        multiple of ``Hkv``, an unsupported ``D``), a non-contiguous input, an array on a
        GPU, a block mask made for other lengths or block sizes, or an inconsistent one
        (counts or indices out of range, a key block listed twice in a row), an unknown
        ``backend``.
    MemoryError
        Inputs too large for the chosen backend.
    RuntimeError
        A forced backend this machine does not have, or a device failure.
    """
    q, k, v = as_array(q), as_array(k), as_array(v)
    shapes = [tuple(getattr(x, "shape", ())) for x in (q, k, v)]
    if any(len(s) != 4 for s in shapes):
        raise ValueError(f"q, k, v have shapes {shapes[0]}, {shapes[1]}, {shapes[2]}: each must be 4-D [B, H, S, D]")
    (b, hq, sq, d), (bk, hkv, skv, dk) = shapes[0], shapes[1]
    if bk != b or dk != d or shapes[2] != shapes[1]:
        raise ValueError(
            f"q {shapes[0]}, k {shapes[1]}, v {shapes[2]}: k and v must be equal, [B, Hkv, Skv, D] "
            "with q's B and D"
        )
    if hq != hkv and not enable_gqa:
        raise ValueError(f"q has {hq} heads, k and v {hkv}: pass enable_gqa=True for grouped-query attention")
    if hkv == 0 or hq % hkv:
        raise ValueError(f"q has {hq} heads, k and v {hkv}: Hq must be a multiple of Hkv")
    for name, x in zip("qkv", (q, k, v)):
        dtype = str(getattr(x, "dtype", "?")).replace("torch.", "")
        if dtype != "float32":
            raise TypeError(
                f"`{name}` is {dtype}: attention takes float32 (its scores and softmax are float32 "
                "on every backend); convert with .astype(numpy.float32)"
            )
    mask = read_block_mask(block_mask, b, hq, sq, skv)
    scale = None if scale is None else float(scale)
    out, lse = _megabatch._attention(q, k, v, mask, scale=scale, return_lse=bool(return_lse), backend=backend)
    return (out, lse) if return_lse else out
