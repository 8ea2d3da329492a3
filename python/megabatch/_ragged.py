"""Ragged batches: matrices of different orders in one call."""

import numpy

from . import _megabatch
from ._linalg import EighResult, as_array


def eigh_ragged(a, sizes=None, *, uplo="L", backend="auto", stream=None, check_errors=False):
    """Eigenvalues and eigenvectors of matrices of different orders, in one call.

    Two forms:

    ``eigh_ragged(values, sizes)``: packed, read in place
        ``values``: a 1-D float32 or float64 array holding the matrices row-major one after
        another (matrix ``i`` takes ``sizes[i] ** 2`` elements); ``sizes``: their orders (0
        allowed). Returns ``EighResult(w, v)`` packed the same way: ``w`` 1-D with
        ``sum(sizes)`` eigenvalues (matrix ``i``'s ascending, after those of the matrices
        before it), ``v`` 1-D like ``values``, each matrix's eigenvectors as columns
        row-major. ``values`` is read without a copy when ``uplo="L"``.
    ``eigh_ragged(matrices)``: a sequence of square 2-D arrays
        Packed into one array first (one copy, transposing for ``uplo="U"``), then as above.
        Returns ``EighResult`` of two lists: ``w[i]`` of shape ``[n_i]`` and ``v[i]`` of shape
        ``[n_i, n_i]``, views into the packed results.

    ``values`` may be a CUDA array (torch, CuPy): then the results are arrays of its framework
    on its device and ``stream`` and ``check_errors`` act as for :func:`eigh` (``uplo="U"``
    is a ``ValueError`` there: megabatch does not transpose CUDA arrays).

    ``uplo``, ``backend``, the sign convention and the exceptions are :func:`eigh`'s;
    ``LinAlgError`` names the matrix by its index in the batch. All matrices must share one
    dtype (``TypeError`` otherwise); an empty list gives float64 results.
    """
    return _ragged(a, sizes, uplo, backend, True, stream, check_errors)


def eigvalsh_ragged(a, sizes=None, *, uplo="L", backend="auto", stream=None, check_errors=False):
    """Eigenvalues of matrices of different orders, in one call.

    As :func:`eigh_ragged` without eigenvectors: returns the packed ``w`` for
    ``(values, sizes)``, or a list of ``w[i]`` for a sequence of matrices.
    """
    return _ragged(a, sizes, uplo, backend, False, stream, check_errors)


def _ragged(a, sizes, uplo, backend, vectors, stream=None, check_errors=False):
    if sizes is not None:
        return _call(as_array(a), sizes, uplo, backend, vectors, stream, check_errors)
    if hasattr(a, "__dlpack__"):
        raise TypeError(
            "eigh_ragged takes (values, sizes) or a sequence of square matrices; "
            "got one array without sizes"
        )
    values, sizes, uplo = _pack(list(a), uplo)
    out = _call(values, sizes, uplo, backend, vectors)
    if vectors:
        w, v = out
        return EighResult(_split(w, sizes, square=False), _split(v, sizes, square=True))
    return _split(out, sizes, square=False)


def _call(values, sizes, uplo, backend, vectors, stream=None, check_errors=False):
    out = _megabatch._eigh_ragged(
        values,
        [int(n) for n in sizes],
        uplo=uplo,
        vectors=vectors,
        backend=backend,
        stream=stream,
        check_errors=check_errors,
    )
    return EighResult(*out) if vectors else out


def _pack(matrices, uplo):
    """The matrices packed row-major into one array, and their orders. For ``uplo="U"`` the
    transposes are packed, read with ``uplo="L"``: the copy made anyway does the transposing."""
    arrays = [numpy.asarray(m) for m in matrices]
    for i, m in enumerate(arrays):
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"matrix {i} has shape {m.shape}: eigh_ragged takes square 2-D arrays")
    dtypes = {m.dtype for m in arrays}
    if len(dtypes) > 1:
        names = sorted(str(d) for d in dtypes)
        raise TypeError(f"matrices of several dtypes ({', '.join(names)}): convert them to one")
    dtype = dtypes.pop() if dtypes else numpy.dtype(numpy.float64)
    if uplo in ("U", "u"):
        arrays, uplo = [m.T for m in arrays], "L"
    values = numpy.empty(sum(m.size for m in arrays), dtype=dtype)
    start = 0
    for m in arrays:
        values[start : start + m.size].reshape(m.shape)[...] = m
        start += m.size
    return values, [m.shape[0] for m in arrays], uplo


def _split(packed, sizes, square):
    """Views of each matrix's part of a packed result."""
    parts, start = [], 0
    for n in sizes:
        size = n * n if square else n
        part = packed[start : start + size]
        parts.append(part.reshape(n, n) if square else part)
        start += size
    return parts
