"""megabatch: many small symmetric eigenproblems, reductions and block-sparse attention, from numpy.

Python bindings of the `megabatch` Rust crate. One call hands a whole batch of matrices to a
backend (CPU threads, or a GPU through wgpu or CUDA when one is found); arrays are read and
written in place through DLPack, without copies.

Functions follow ``numpy.linalg``:

- :func:`eigh` / :func:`eigvalsh`: ``[..., n, n]`` float32 or float64 arrays.
- :func:`eigh_ragged` / :func:`eigvalsh_ragged`: matrices of different orders in one call.
- :class:`EighPlan`: a shape fixed once, then many calls without allocation (``out=``).
- :func:`sum`, :func:`max`, :func:`max_abs_diff` (whole arrays), :func:`weighted_mean` (over
  rows), :func:`segment_sum` (ragged segments): deterministic, NaN-propagating reductions.
- :func:`attention`: block-sparse attention over a FlexAttention ``BlockMask``, any
  ``mask_mod`` (float32, ``[B, H, S, D]`` as ``flex_attention``).
- :func:`info`: the backends this process found.

Errors: ``TypeError`` for a wrong dtype or a non-array, ``ValueError`` for a wrong shape,
layout or device, :class:`LinAlgError` (a ``numpy.linalg.LinAlgError``, hence a
``ValueError``) for NaN/Inf input, ``MemoryError`` for sizes that do not fit,
``RuntimeError`` for device failures and unavailable backends.

Processes: the backends start on first use, once per process. A child forked after they
started (``multiprocessing``'s default on Linux) starts its own on its first call; an
:class:`EighPlan` made in the parent raises ``RuntimeError`` there (make a new one).

This release reads and writes CPU arrays (numpy, torch CPU tensors, anything with
``__dlpack__`` on the CPU); GPU arrays come later.
"""

from ._attention import attention
from ._info import info
from ._linalg import EighResult, eigh, eigvalsh
from ._megabatch import EighPlan, LinAlgError, __version__
from ._ragged import eigh_ragged, eigvalsh_ragged
from ._reduce import max, max_abs_diff, segment_sum, sum, weighted_mean  # noqa: A004

__all__ = [
    "EighPlan",
    "EighResult",
    "LinAlgError",
    "__version__",
    "attention",
    "eigh",
    "eigh_ragged",
    "eigvalsh",
    "eigvalsh_ragged",
    "info",
    "max",
    "max_abs_diff",
    "segment_sum",
    "sum",
    "weighted_mean",
]
