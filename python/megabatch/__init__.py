"""megabatch: many small symmetric eigenproblems, reductions and block-sparse attention, from
numpy, torch and CuPy.

Python bindings of the `megabatch` Rust crate. One call hands a whole batch of matrices to a
backend (CPU threads, or a GPU through wgpu or CUDA when one is found); arrays are read and
written in place through DLPack, without copies.

Functions follow ``numpy.linalg``:

- :func:`eigh` / :func:`eigvalsh`: ``[..., n, n]`` float32 or float64 arrays.
- :func:`eigh_ragged` / :func:`eigvalsh_ragged`: matrices of different orders in one call.
- :class:`EighPlan`: a shape fixed once, then many calls without allocation (``out=``).
- :func:`sum`, :func:`max`, :func:`max_abs_diff` (whole arrays), :func:`weighted_mean` (over
  rows), :func:`segment_sum` (ragged segments): deterministic, NaN-propagating reductions;
  :class:`ReducePlan` for the hot path (``out=``).
- :func:`attention`: block-sparse attention over a FlexAttention ``BlockMask``, any
  ``mask_mod`` (float32, float16, bfloat16, ``[B, H, S, D]`` as ``flex_attention``);
  :class:`AttentionPlan` for many calls over one mask.
- :func:`info`: the backends this process found; :func:`calibrate`: measure them for the
  cost model; :func:`synchronize`: release the CUDA arrays kept for queued work.

Errors: ``TypeError`` for a wrong dtype or a non-array, ``ValueError`` for a wrong shape,
layout or device, :class:`LinAlgError` (a ``numpy.linalg.LinAlgError``, hence a
``ValueError``) for NaN/Inf input, ``MemoryError`` for sizes that do not fit,
``RuntimeError`` for device failures and unavailable backends.

Processes: the backends start on first use, once per process. A child forked after they
started (``multiprocessing``'s default on Linux) starts its own on its first call; an
:class:`EighPlan` made in the parent raises ``RuntimeError`` there (make a new one).

Arrays: CPU arrays (numpy, torch CPU tensors, anything with ``__dlpack__`` on the CPU) give
numpy results; CUDA arrays on device 0 (torch CUDA tensors, CuPy arrays, any DLPack producer
with ``out=``) run on the CUDA backend in place, queued on the caller's current stream (or
``stream=``) after the producer's work, without waiting, and give arrays of their framework.
megabatch keeps every CUDA array a call used alive until that call's work has finished.
"""

from ._attention import AttentionPlan, attention
from ._info import calibrate, info
from ._linalg import EighResult, eigh, eigvalsh
from ._megabatch import EighPlan, LinAlgError, ReducePlan, __version__, synchronize
from ._ragged import eigh_ragged, eigvalsh_ragged
from ._reduce import max, max_abs_diff, segment_sum, sum, weighted_mean  # noqa: A004

__all__ = [
    "AttentionPlan",
    "EighPlan",
    "EighResult",
    "LinAlgError",
    "ReducePlan",
    "__version__",
    "attention",
    "calibrate",
    "eigh",
    "eigh_ragged",
    "eigvalsh",
    "eigvalsh_ragged",
    "info",
    "max",
    "max_abs_diff",
    "segment_sum",
    "sum",
    "synchronize",
    "weighted_mean",
]
