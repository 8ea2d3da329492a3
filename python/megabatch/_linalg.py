"""Uniform batches: ``eigh`` and ``eigvalsh`` in numpy.linalg conventions."""

from collections import namedtuple

import numpy

from . import _megabatch

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
EighResult.__doc__ = """\
``(eigenvalues, eigenvectors)`` of :func:`eigh`, as ``numpy.linalg.eigh`` returns them: it
unpacks as ``w, v = megabatch.eigh(a)``."""


def as_array(a):
    """``a`` itself if it speaks DLPack (numpy, torch, ...), else ``numpy.asarray(a)``."""
    return a if hasattr(a, "__dlpack__") else numpy.asarray(a)


def eigh(a, *, uplo="L", backend="auto", stream=None, check_errors=False):
    """Eigenvalues and eigenvectors of a batch of real symmetric matrices.

    Parameters
    ----------
    a : array of shape ``[..., n, n]``, float32 or float64, on the CPU or CUDA device 0
        Any number of batch dimensions (none: one matrix). Read in place, without a copy,
        when C-contiguous (``uplo="L"``) or when every matrix is transposed, as ``a.mT`` of a
        C-contiguous array (``uplo="U"``); on the CPU the other combination costs one
        transposing copy, on CUDA it is a ``ValueError``. Objects without ``__dlpack__``
        (lists) go through ``numpy.asarray`` first. CUDA arrays (torch CUDA tensors, CuPy
        arrays) run on the CUDA backend, in place, on ``stream``.
    uplo : {"L", "U"}
        The triangle read, as numpy's ``UPLO``: the other one is ignored (it may hold NaN).
    backend : {"auto", "cpu", "wgpu", "cuda"}
        ``"auto"``: the backend megabatch's cost model predicts fastest for this batch (the
        environment variable ``MEGABATCH_BACKEND`` overrides it); a name forces one. CUDA
        arrays always run on ``"cuda"``.
    stream : int, torch.cuda.Stream or cupy Stream, optional
        CUDA arrays only: the stream the work is queued on; default the current stream of
        ``a``'s framework. The producer's pending work on ``a`` is ordered before it (DLPack's
        stream handshake) and the call returns without waiting: use the results on the same
        stream (the default for torch and CuPy code) or synchronise it. The plan of each
        shape is kept between calls (no allocation after the first call of a shape).
    check_errors : bool
        CUDA arrays only: wait for the call and raise :class:`LinAlgError` if a matrix had
        NaN/Inf (or did not converge). Without it such a matrix's results are NaN, as the call
        does not wait. CPU calls always raise.

    Returns
    -------
    EighResult ``(eigenvalues, eigenvectors)``
        ``eigenvalues``: ``[..., n]``, ascending. ``eigenvectors``: ``[..., n, n]``, the
        normalised eigenvector of ``eigenvalues[..., k]`` in column ``[..., :, k]``, so that
        ``a @ v == v * w[..., None, :]``. New arrays of ``a``'s dtype: numpy arrays for CPU
        input, arrays of ``a``'s framework on its device for CUDA input. Sign convention:
        each eigenvector's component of largest magnitude is positive (the first such one if
        several tie), on every backend; LAPACK (numpy) fixes no sign, so compare columns up
        to sign.

    Raises
    ------
    TypeError
        ``a`` is not float32 or float64, or its producer refuses to export it through DLPack
        (numpy: strings, objects; torch: tensors that require grad).
    ValueError
        ``a`` has fewer than 2 dimensions, non-square matrices, a layout other than the two
        above (sliced with steps, broadcast), or lives on a device other than the CPU and CUDA
        device 0; an unknown ``uplo`` or ``backend``.
    LinAlgError
        NaN or Inf in the triangle read; the message names the first such matrix by its
        index in the batch. Also a ``ValueError``.
    MemoryError
        The batch does not fit in memory.
    RuntimeError
        A forced backend this machine does not have (a CUDA array without a CUDA backend),
        or a device failure.
    """
    w, v = _megabatch._eigh(
        as_array(a), uplo=uplo, vectors=True, backend=backend, stream=stream, check_errors=check_errors
    )
    return EighResult(w, v)


def eigvalsh(a, *, uplo="L", backend="auto", stream=None, check_errors=False):
    """Eigenvalues of a batch of real symmetric matrices.

    As :func:`eigh` without the eigenvectors (which it does not compute): ``a`` of shape
    ``[..., n, n]``, float32 or float64, on the CPU or CUDA; returns the ascending
    eigenvalues, ``[..., n]``, as a new array of ``a``'s dtype and kind. Raises what
    :func:`eigh` raises.
    """
    return _megabatch._eigh(
        as_array(a), uplo=uplo, vectors=False, backend=backend, stream=stream, check_errors=check_errors
    )
