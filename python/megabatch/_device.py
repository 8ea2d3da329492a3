"""CUDA arrays: the frameworks megabatch knows (torch, CuPy), their streams and allocators.

The native side calls these two helpers for every call on CUDA arrays:

- :func:`stream_handle`: the ``cudaStream_t`` the call runs on;
- :func:`empty`: a new array of the input's framework for an output the caller did not give.

Arrays of other DLPack producers on CUDA work as inputs (on a stream of megabatch's own,
ordered after the producer's work by DLPack's stream handshake) and as ``out=`` arrays.
"""


def _framework(x):
    """``"torch"``, ``"cupy"`` or ``None``, from the module of ``x``'s type."""
    module = type(x).__module__.split(".", 1)[0]
    return module if module in ("torch", "cupy") else None


def stream_handle(like, stream=None):
    """The raw CUDA stream (``int``, 0 for the legacy default stream) a call runs on.

    ``stream``: ``None`` for the current stream of ``like``'s framework
    (``torch.cuda.current_stream(like.device)``, ``cupy.cuda.get_current_stream()``), an
    ``int`` handle, or a stream object (``torch.cuda.Stream`` through ``cuda_stream``, CuPy's
    ``Stream`` through ``ptr``). Returns ``None`` for an array of another framework with no
    ``stream``: megabatch then uses a stream of its own.

    Raises ``TypeError`` for a ``stream`` that is none of these.
    """
    if stream is not None:
        if isinstance(stream, int) and not isinstance(stream, bool):
            return stream
        for attr in ("cuda_stream", "ptr"):
            handle = getattr(stream, attr, None)
            if isinstance(handle, int):
                return handle
        raise TypeError(
            f"stream must be an int cudaStream_t, a torch.cuda.Stream or a cupy Stream, got {type(stream).__name__}"
        )
    framework = _framework(like)
    if framework == "torch":
        import torch

        # The raw handle without building a torch.cuda.Stream object (a few microseconds a
        # call; Triton reads it the same way), where this torch has the accessor.
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        if raw is not None:
            return raw(like.device.index)
        return torch.cuda.current_stream(like.device).cuda_stream
    if framework == "cupy":
        import cupy

        with like.device:
            return cupy.cuda.get_current_stream().ptr
    return None


def empty(like, shape, dtype):
    """A new, uninitialised array of ``like``'s framework on ``like``'s device.

    ``dtype``: numpy's name (``"float32"``, ``"bfloat16"``, ...). Raises ``TypeError`` for an
    array of another framework (pass ``out=``) or a dtype the framework lacks (CuPy has no
    ``bfloat16``).
    """
    framework = _framework(like)
    shape = tuple(int(d) for d in shape)
    if framework == "torch":
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    if framework == "cupy":
        import cupy

        if dtype == "bfloat16":
            raise TypeError("CuPy has no bfloat16 arrays: use torch tensors, or pass out=")
        with like.device:
            return cupy.empty(shape, dtype=dtype)
    raise TypeError(
        f"megabatch makes outputs for torch and CuPy CUDA arrays; for a {type(like).__module__}."
        f"{type(like).__name__} pass out= (arrays of the output shapes on the same device)"
    )
