"""Reductions: ``sum``, ``max``, ``max_abs_diff`` of whole arrays, ``weighted_mean`` over
rows, ``segment_sum`` over ragged segments.

Every one is deterministic and NaN-propagating, on every backend: sums follow one fixed
pairwise tree (NumPy's blocked ``pairwise_sum`` form) that depends only on the lengths, so
the same input gives the same bits whatever the thread count; a NaN anywhere in what an
operation reads makes its result NaN, maxima included (a NaN never reads as converged).
"""

from . import _megabatch
from ._linalg import as_array

_COMMON = """
    Inputs are float32, float64, float16 or bfloat16 arrays, C-contiguous, read in place
    without a copy; several inputs share one dtype. The result has that dtype (float32 for
    the half types, which accumulate in float32). CPU arrays (numpy, anything with
    ``__dlpack__`` on the CPU) give numpy results; CUDA arrays (torch, CuPy) run on the CUDA
    backend on ``stream`` (default: the current stream of their framework), without waiting,
    and give arrays of their framework on their device (a 0-d array where a CPU call gives a
    scalar). ``backend``: ``"auto"`` (the cost model picks; the environment variable
    ``MEGABATCH_BACKEND`` overrides it), or ``"cpu"``, ``"wgpu"``, ``"cuda"``.

    Raises
    ------
    TypeError
        An input that is not float32 or float64, or inputs of different dtypes.
    ValueError
        Shapes that do not fit together, a non-contiguous input, inputs on different
        devices, an unknown ``backend``.
    MemoryError
        Inputs too large for the chosen backend.
    RuntimeError
        A forced backend this machine does not have, or a device failure.
"""


def _doc(f):
    f.__doc__ = f.__doc__.rstrip() + "\n" + _COMMON
    return f


def _scalar(out):
    """A host result's one element as a numpy scalar (as ``numpy.sum``); a device 0-d array
    as it is (reading it would wait for the device)."""
    return out[()] if type(out).__module__ == "numpy" else out


@_doc
def sum(x, *, backend="auto", stream=None):  # noqa: A001 - numpy's name
    """The sum of every element of ``x`` (any shape), as ``numpy.sum(x)``.

    Returns a numpy scalar of ``x``'s dtype: 0 for an empty array, NaN if ``x`` holds a
    NaN. Summed pairwise: the error is at most about ``log2(x.size) * eps * sum(|x|)``.
    """
    return _scalar(_megabatch._reduce("sum", as_array(x), backend=backend, stream=stream))


@_doc
def max(x, *, backend="auto", stream=None):  # noqa: A001 - numpy's name
    """The largest element of ``x`` (any shape), as ``numpy.max(x)``.

    Returns a numpy scalar of ``x``'s dtype: NaN if ``x`` holds a NaN (as numpy), ``-inf``
    for an empty array (numpy raises).
    """
    return _scalar(_megabatch._reduce("max", as_array(x), backend=backend, stream=stream))


@_doc
def max_abs_diff(x, y, *, backend="auto", stream=None):
    """``max(|x - y|)`` over every element: the convergence measure of an iteration.

    ``x`` and ``y``: the same shape (no broadcasting) and dtype. Returns a numpy scalar of
    their dtype: 0 for empty arrays, NaN if either holds a NaN (``numpy.abs(x - y).max()``
    gives the same, without allocating ``x - y`` here).
    """
    return _scalar(_megabatch._reduce("max-abs-diff", as_array(x), as_array(y), backend=backend, stream=stream))


@_doc
def weighted_mean(x, weights, *, backend="auto", stream=None):
    """The weighted mean over the rows of a ``(rows, cols)`` matrix, one value per column:
    ``sum_i weights[i] * x[i, j] / sum_i weights[i]``, as
    ``numpy.average(x, axis=0, weights=weights)``.

    ``weights``: shape ``(rows,)``. Returns a new ``(cols,)`` array (NaN in every column
    when the weights sum to 0; numpy raises ``ZeroDivisionError``).
    """
    return _megabatch._reduce_rows("weighted-mean", as_array(x), as_array(weights), backend=backend, stream=stream)


@_doc
def segment_sum(values, offsets, *, backend="auto", stream=None):
    """Sums of ragged segments of a 1-D array: ``out[s] = values[offsets[s]:offsets[s + 1]].sum()``.

    ``offsets``: a non-decreasing sequence of ``segments + 1`` non-negative integers (CSR row
    pointers, ``torch.segment_reduce``'s ``offsets``), ``offsets[-1] == len(values)``; elements
    before ``offsets[0]`` are ignored. Returns a new ``(len(offsets) - 1,)`` array; an empty
    segment sums to 0. Decreasing offsets raise ``ValueError`` naming the first bad index.
    """
    if hasattr(offsets, "tolist"):
        offsets = offsets.tolist()
    return _megabatch._reduce_segments("sum", as_array(values), offsets, backend=backend, stream=stream)


__all__ = ["max", "max_abs_diff", "segment_sum", "sum", "weighted_mean"]
