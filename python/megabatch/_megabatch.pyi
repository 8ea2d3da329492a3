# Types of the extension module; the public API is documented in the package's modules.
from typing import Any, Optional, Sequence, Tuple, Union

__version__: str

class LinAlgError(ValueError): ...

class EighPlan:
    def __init__(
        self,
        n: Optional[int] = None,
        batch: Optional[int] = None,
        *,
        sizes: Optional[Sequence[int]] = None,
        dtype: Any = None,
        vectors: bool = True,
        uplo: str = "L",
        backend: str = "auto",
        device: str = "cpu",
    ) -> None: ...
    def __call__(self, a: Any, *, out: Any = None, stream: Any = None, check_errors: bool = False) -> Any: ...
    def info(self) -> Any: ...
    @property
    def n(self) -> Optional[int]: ...
    @property
    def batch(self) -> int: ...
    @property
    def sizes(self) -> Optional[list[int]]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def vectors(self) -> bool: ...
    @property
    def uplo(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def footprint(self) -> Tuple[int, int]: ...

class ReducePlan:
    def __init__(
        self,
        op: str,
        *,
        len: Optional[int] = None,
        rows: Optional[int] = None,
        cols: Optional[int] = None,
        offsets: Optional[Sequence[int]] = None,
        dtype: Any = None,
        backend: str = "auto",
        device: str = "cpu",
    ) -> None: ...
    def __call__(self, x: Any, y: Any = None, *, out: Any = None, stream: Any = None) -> Any: ...
    @property
    def dtype(self) -> str: ...
    @property
    def out_dtype(self) -> str: ...
    @property
    def out_shape(self) -> list[int]: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...

class _AttentionPlan:
    def __init__(
        self,
        mask: dict[str, Any],
        q_shape: Sequence[int],
        kv_shape: Sequence[int],
        dtype: Any,
        *,
        scale: Optional[float] = None,
        backend: str = "auto",
        device: str = "cpu",
    ) -> None: ...
    def __call__(
        self, q: Any, k: Any, v: Any, *, out: Any = None, lse: Any = None, return_lse: bool = False, stream: Any = None
    ) -> tuple[Any, Optional[Any]]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...

def _eigh(
    a: Any, *, uplo: str = "L", vectors: bool = True, backend: str = "auto", stream: Any = None, check_errors: bool = False
) -> Any: ...
def _eigh_ragged(
    values: Any,
    sizes: Sequence[int],
    *,
    uplo: str = "L",
    vectors: bool = True,
    backend: str = "auto",
    stream: Any = None,
    check_errors: bool = False,
) -> Any: ...
def _reduce(op: str, x: Any, y: Any = None, *, backend: str = "auto", stream: Any = None) -> Any: ...
def _reduce_rows(op: str, x: Any, y: Any = None, *, backend: str = "auto", stream: Any = None) -> Any: ...
def _reduce_segments(
    op: str, x: Any, offsets: Sequence[int], y: Any = None, *, backend: str = "auto", stream: Any = None
) -> Any: ...
def _attention(
    q: Any,
    k: Any,
    v: Any,
    mask: dict[str, Any],
    *,
    scale: Optional[float] = None,
    return_lse: bool = False,
    backend: str = "auto",
    stream: Any = None,
) -> tuple[Any, Optional[Any]]: ...
def _info() -> dict[str, Any]: ...
def _calibrate(*, quick: bool = False, path: Optional[str] = None) -> dict[str, Any]: ...
def synchronize() -> None: ...
def _pending() -> int: ...
def _last_pointers() -> Optional[dict[str, Union[int, bool, None]]]: ...
