"""Block-sparse attention over a FlexAttention ``BlockMask``: ``attention`` and
``AttentionPlan``."""

from . import _megabatch
from ._block_mask import read_block_mask
from ._linalg import as_array

_DTYPES = ("float32", "float16", "bfloat16")


def _dtype_name(x):
    return str(getattr(x, "dtype", "?")).replace("torch.", "")


def _check(q, k, v, enable_gqa):
    """Shapes ``(q_shape, kv_shape)`` of a call, checked as ``flex_attention`` does, and the
    common dtype name."""
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
    dtypes = [_dtype_name(x) for x in (q, k, v)]
    for name, dtype in zip("qkv", dtypes):
        if dtype not in _DTYPES:
            raise TypeError(
                f"`{name}` is {dtype}: attention takes float32, float16 or bfloat16 (its scores and "
                "softmax are float32 on every backend); convert with .astype(numpy.float32)"
            )
    if len(set(dtypes)) != 1:
        raise TypeError(f"q, k, v are {', '.join(dtypes)}: they must share one dtype")
    return shapes[0], shapes[1], dtypes[0]


def attention(
    q, k, v, block_mask, *, scale=None, return_lse=False, enable_gqa=False, backend="auto", stream=None
):
    """Scaled dot-product attention over the blocks a FlexAttention ``BlockMask`` keeps:
    ``softmax(scale * q @ k.mT + mask) @ v``, as ``torch.nn.attention.flex_attention`` with
    the same ``block_mask``.

    Parameters
    ----------
    q : array of shape ``[B, Hq, Sq, D]``, float32, float16 or bfloat16, on the CPU or CUDA
        C-contiguous (numpy, torch, CuPy, or anything with ``__dlpack__``), read in place.
        ``D`` is 32, 64, 96, 128 or 256. float16 and bfloat16 run where a backend takes them:
        the CPU (both), wgpu (float16 with ``SHADER_F16``), CUDA (both, sm_80 and newer);
        numpy has float16 only (bfloat16 from torch tensors). CUDA arrays (torch, CuPy) run
        on the CUDA backend on ``stream``, without waiting, as :func:`megabatch.eigh`.
    k, v : arrays of shape ``[B, Hkv, Skv, D]``, ``q``'s dtype and device, C-contiguous
        ``Hkv == Hq``, or with ``enable_gqa=True`` any divisor of ``Hq``: query head ``h``
        reads key/value head ``h // (Hq // Hkv)`` (grouped-query attention).
    block_mask : a FlexAttention ``BlockMask``, read duck-typed
        ``kv_num_blocks [Bm, Hm, QB]`` and ``kv_indices [Bm, Hm, QB, KB]`` (the partial
        blocks), optional ``full_kv_num_blocks`` / ``full_kv_indices`` (same shapes; blocks
        kept whole), integer numpy arrays, CPU torch tensors or anything with ``__array__``
        or ``__dlpack__`` (CUDA tensors are copied to the host once, with a wait: use
        :class:`AttentionPlan` to read a mask once for many calls); ``QB = ceil(Sq / BQ)``, ``KB = ceil(Skv / BK)``, ``Bm`` in
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
        overrides it). CUDA arrays run on ``"cuda"``.
    stream : int, torch.cuda.Stream or cupy Stream, optional
        CUDA arrays only: the stream the work is queued on (default: the framework's current
        stream).

    Returns
    -------
    out : array of shape ``[B, Hq, Sq, D]``, ``q``'s dtype
        A new array: numpy for CPU input (a torch CPU tensor for bfloat16, which numpy
        lacks), of ``q``'s framework on its device for CUDA input. A row with no kept key
        (every block of its query block absent, or every element bit 0) is 0, as in
        FlexAttention.
    lse : float32 array of shape ``[B, Hq, Sq]``, only with ``return_lse=True``
        A new array: ``log(sum(exp(scale * scores)))`` over the kept keys, natural
        logarithm (base e, as FlexAttention returns it); ``-inf`` for a row with no kept key.
        Returned as ``(out, lse)``.

    Scores, softmax statistics and accumulation are float32 on every backend, whatever the
    input dtype; float64 inputs are refused rather than silently rounded.

    Raises
    ------
    TypeError
        ``q``, ``k`` or ``v`` not float32, float16 or bfloat16, or of different dtypes; a
        ``block_mask`` without the BlockMask attributes,
        with non-integer tensors, or whose ``mask_mod`` cannot be called on indices.
    ValueError
        Shapes that do not fit together (``Hkv != Hq`` without ``enable_gqa``, ``Hq`` not a
        multiple of ``Hkv``, an unsupported ``D``), a non-contiguous input, an array on a
        GPU, a block mask made for other lengths or block sizes, or an inconsistent one
        (counts or indices out of range, a key block listed twice in a row), an unknown
        ``backend``; a dtype no backend of this process runs (bfloat16 with ``backend="wgpu"``).
    MemoryError
        Inputs too large for the chosen backend.
    RuntimeError
        A forced backend this machine does not have, or a device failure.
    """
    q, k, v = as_array(q), as_array(k), as_array(v)
    (b, hq, sq, _), (_, _, skv, _), _ = _check(q, k, v, enable_gqa)
    mask = read_block_mask(block_mask, b, hq, sq, skv)
    scale = None if scale is None else float(scale)
    out, lse = _megabatch._attention(
        q, k, v, mask, scale=scale, return_lse=bool(return_lse), backend=backend, stream=stream
    )
    return (out, lse) if return_lse else out


class AttentionPlan:
    """Attention over one ``BlockMask`` for many calls: the mask read (and its ``mask_mod``
    evaluated) once, the plan's buffers allocated once, calls with ``out=`` allocating
    nothing.

    ``AttentionPlan(block_mask, q_shape, kv_shape, *, dtype="float32", scale=None,
    enable_gqa=False, backend="auto", device="cpu")``: ``q_shape`` ``(B, Hq, Sq, D)``,
    ``kv_shape`` ``(B, Hkv, Skv, D)``, ``block_mask`` and ``scale`` as :func:`attention` takes
    them; ``dtype`` ``"float32"``, ``"float16"`` or ``"bfloat16"`` (numpy or torch dtypes
    too); ``device`` ``"cpu"`` (host arrays) or ``"cuda"`` (CUDA arrays, on the CUDA backend).

    Calling ``plan(q, k, v, *, out=None, lse=None, return_lse=False, stream=None)``
    ---------------------------------------------------------------------------------
    ``q``, ``k``, ``v`` of the plan's shapes, dtype and device, C-contiguous, read in place.
    ``out`` (``q``'s shape and dtype) and ``lse`` (float32 ``[B, Hq, Sq]``) are written in
    place when given (C-contiguous, writable), else new arrays as :func:`attention` makes
    them. Returns ``out``, or ``(out, lse)`` with ``return_lse=True`` or ``lse`` given. The
    GIL is released while it computes; on CUDA the call is queued on ``stream`` (default: the
    framework's current stream) and returns without waiting.

    Raises what :func:`attention` raises (at construction for the mask and shapes, at calls
    for arrays that do not match the plan: ``TypeError`` dtype, ``ValueError`` shape, layout
    or device).
    """

    __slots__ = ("_plan", "q_shape", "kv_shape")

    def __init__(
        self,
        block_mask,
        q_shape,
        kv_shape,
        *,
        dtype="float32",
        scale=None,
        enable_gqa=False,
        backend="auto",
        device="cpu",
    ):
        q_shape, kv_shape = tuple(int(d) for d in q_shape), tuple(int(d) for d in kv_shape)

        class _Shape:  # shapes and dtype only: what _check reads
            def __init__(self, shape):
                self.shape, self.dtype = shape, "float32"

        _check(_Shape(q_shape), _Shape(kv_shape), _Shape(kv_shape), enable_gqa)
        b, hq, sq, _ = q_shape
        mask = read_block_mask(block_mask, b, hq, sq, kv_shape[2])
        scale = None if scale is None else float(scale)
        self._plan = _megabatch._AttentionPlan(
            mask, list(q_shape), list(kv_shape), dtype, scale=scale, backend=backend, device=device
        )
        self.q_shape, self.kv_shape = q_shape, kv_shape

    def __call__(self, q, k, v, *, out=None, lse=None, return_lse=False, stream=None):
        o, l = self._plan(q, k, v, out=out, lse=lse, return_lse=return_lse, stream=stream)
        return o if l is None else (o, l)

    @property
    def dtype(self):
        """``"float32"``, ``"float16"`` or ``"bfloat16"``."""
        return self._plan.dtype

    @property
    def backend(self):
        """The backend that runs the plan: ``"cpu"``, ``"wgpu"`` or ``"cuda"``."""
        return self._plan.backend

    @property
    def device(self):
        """Where the arrays of its calls live: ``"cpu"`` or ``"cuda"``."""
        return self._plan.device

    def __repr__(self):
        return (
            f"AttentionPlan(q_shape={self.q_shape}, kv_shape={self.kv_shape}, dtype='{self.dtype}', "
            f"backend='{self.backend}', device='{self.device}')"
        )
