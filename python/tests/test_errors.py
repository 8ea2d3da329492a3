"""Every bad input gives the documented exception, never a crash of the interpreter."""

import ctypes

import numpy as np
import pytest

import megabatch
from checks import batch


def sym(n=4, count=3, dtype=np.float64, seed=0):
    return batch(["random_dense"], n, count, dtype, np.random.default_rng(seed))


# --- dtypes: TypeError ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.int32, np.complex128, np.bool_])
def test_unsupported_dtypes(dtype):
    a = np.zeros((2, 3, 3), dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        megabatch.eigh(a)
    with pytest.raises(TypeError, match="float32 or float64"):
        megabatch.eigvalsh(a)


def test_plan_dtype_mismatch():
    plan = megabatch.EighPlan(n=4, batch=3, dtype="float64")
    with pytest.raises(TypeError, match="float32, the plan is for float64"):
        plan(sym(dtype=np.float32))
    w, v = np.empty((3, 4), np.float32), np.empty((3, 4, 4))
    with pytest.raises(TypeError, match="`w` is float32"):
        plan(sym(), out=(w, v))


@pytest.mark.parametrize("dtype", ["int32", "float16", "bfloat16", np.complex64, 3])
def test_plan_bad_dtype_argument(dtype):
    with pytest.raises(TypeError, match="float32,? or float64|float32, float64"):
        megabatch.EighPlan(n=2, batch=1, dtype=dtype)


def test_not_an_array():
    plan = megabatch.EighPlan(n=2, batch=1)
    with pytest.raises(TypeError, match="__dlpack__"):
        plan({"a": 1})
    with pytest.raises(TypeError):
        megabatch.eigh({"a": 1})
    with pytest.raises(TypeError, match="DLPack"):
        megabatch.eigh("not an array")
    with pytest.raises(TypeError, match="DLPack"):
        megabatch.eigh(np.array([[None, 1.0], [1.0, None]]))


# --- shapes and ranks: ValueError ----------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (4,), (3, 4), (2, 3, 4), (5, 4, 1)])
def test_wrong_rank_or_not_square(shape):
    with pytest.raises(ValueError, match="shape"):
        megabatch.eigh(np.zeros(shape))


def test_plan_shape_mismatch():
    plan = megabatch.EighPlan(n=4, batch=3)
    with pytest.raises(ValueError, match=r"the plan takes \[\.\.\., 4, 4\]"):
        plan(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="2 matrices, the plan takes 3"):
        plan(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"`w` has shape \(3, 5\), expected \(3, 4\)"):
        plan(sym(), out=(np.empty((3, 5)), np.empty((3, 4, 4))))
    with pytest.raises(ValueError, match="`v` has shape"):
        plan(sym(), out=(np.empty((3, 4)), np.empty((12, 4))))


def test_plan_out_forms():
    plan = megabatch.EighPlan(n=4, batch=3)
    with pytest.raises(ValueError, match=r"tuple \(w, v\)"):
        plan(sym(), out=np.empty((3, 4)))
    values = megabatch.EighPlan(n=4, batch=3, vectors=False)
    with pytest.raises(ValueError, match="one array w"):
        values(sym(), out=(np.empty((3, 4)), np.empty((3, 4, 4))))


def test_plan_constructor_arguments():
    with pytest.raises(ValueError, match="either n and batch"):
        megabatch.EighPlan(n=4)
    with pytest.raises(ValueError, match="either n and batch"):
        megabatch.EighPlan(n=4, batch=2, sizes=[1, 2])
    with pytest.raises(ValueError, match="n must be >= 0"):
        megabatch.EighPlan(n=-1, batch=2)
    with pytest.raises(ValueError, match=">= 0"):
        megabatch.EighPlan(sizes=[3, -2])
    with pytest.raises(ValueError, match="uplo"):
        megabatch.EighPlan(n=2, batch=2, uplo="X")


def test_bad_uplo_and_backend():
    with pytest.raises(ValueError, match="uplo must be 'L' or 'U'"):
        megabatch.eigh(sym(), uplo="upper")
    with pytest.raises(ValueError, match="backend must be one of"):
        megabatch.eigh(sym(), backend="tpu")


def test_missing_backend_is_a_runtime_error():
    if "cuda" in megabatch.info()["backends"]:
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="cuda"):
        megabatch.eigh(sym(), backend="cuda")


# --- layouts: ValueError -------------------------------------------------------------------


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::2, ::2],
        lambda a: a[::2],
        lambda a: a[:, :4, :4],
        lambda a: np.broadcast_to(a[:1], a.shape),
        lambda a: np.moveaxis(a, 0, -1),  # square matrices, but not a's
    ],
    ids=["step", "batch-step", "sub-block", "broadcast", "moved-axis"],
)
def test_non_contiguous_input(view):
    a = view(batch(["random_dense"], 8, 8, np.float64, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="not contiguous"):
        megabatch.eigh(a)


def test_huge_broadcast_is_refused_for_its_layout():
    # 2^40 matrices that share one: refused as non-contiguous before any plan is sized.
    a = np.broadcast_to(np.eye(3), (2**40, 3, 3))
    with pytest.raises(ValueError, match="not contiguous"):
        megabatch.eigh(a)
    with pytest.raises(ValueError, match="not contiguous"):
        megabatch.eigh_ragged(np.broadcast_to(np.ones(1), (2**40,)), [1] * 3)


def test_bad_outputs():
    a = sym()
    plan = megabatch.EighPlan(n=4, batch=3)
    w, v = np.empty((3, 4)), np.empty((3, 4, 4))
    ro = np.empty((3, 4))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        plan(a, out=(ro, v))
    strided = np.empty((3, 8))[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        plan(a, out=(strided, v))
    with pytest.raises(ValueError, match="share memory"):
        plan(a, out=(w, a))
    with pytest.raises(ValueError, match="share memory"):
        plan(a, out=(v.reshape(-1)[:12].reshape(3, 4), v))


# --- devices: ValueError -------------------------------------------------------------------


class CudaArray:
    """Claims to live on CUDA device 0 (or another device type); must be refused before
    __dlpack__ is called where it cannot run."""

    dlpack_called = False

    def __init__(self, device=(2, 0)):
        self.device = device
        self.shape, self.dtype = (2, 2), "float64"

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        CudaArray.dlpack_called = True
        raise AssertionError("__dlpack__ called for an array that cannot run")


def test_device_arrays_are_refused_before_export_where_they_cannot_run():
    plan = megabatch.EighPlan(n=2, batch=1)
    # A CPU plan names the device= it would need.
    with pytest.raises(ValueError, match='CUDA array.*device="cuda"'):
        plan(CudaArray())
    # Devices megabatch has no backend for.
    with pytest.raises(ValueError, match="ROCm device"):
        megabatch.eigh(CudaArray((10, 0)))
    with pytest.raises(ValueError, match="ROCm device"):
        megabatch.sum(CudaArray((10, 0)))
    if "cuda" not in megabatch.info()["backends"]:
        # No CUDA backend here: the reason, before any export.
        for call in (megabatch.eigh, megabatch.sum, lambda a: megabatch.EighPlan(n=2, batch=1, device="cuda")(a)):
            with pytest.raises(RuntimeError, match="(?i)cuda"):
                call(CudaArray())
    assert not CudaArray.dlpack_called


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [
    ("dl_tensor", _DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", _DELETER),
]


class LyingProducer:
    """No __dlpack_device__; its legacy capsule describes a tensor on `device_type`."""

    def __init__(self, device_type):
        self.device_type = device_type
        self.deleted = 0
        self.shape = (ctypes.c_int64 * 3)(1, 2, 2)
        self.data = np.zeros(4)
        self._deleter = _DELETER(self._delete)
        self.managed = _DLManagedTensor()

    def _delete(self, _ptr):
        self.deleted += 1

    def __dlpack__(self, **kwargs):
        if kwargs:
            raise TypeError("legacy producer: no keyword arguments")
        t = self.managed.dl_tensor
        t.data = self.data.ctypes.data
        t.device = _DLDevice(self.device_type, 0)
        t.ndim = 3
        t.dtype = _DLDataType(2, 64, 1)
        t.shape = self.shape
        t.strides = None
        t.byte_offset = 0
        self.managed.deleter = self._deleter
        new = ctypes.pythonapi.PyCapsule_New
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(self.managed), b"dltensor", None)


def test_capsule_on_another_device_is_refused_and_released():
    producer = LyingProducer(device_type=2)
    with pytest.raises(ValueError, match="CUDA device"):
        megabatch.eigh(producer)
    assert producer.deleted == 1


def test_legacy_cpu_capsule_is_read():
    producer = LyingProducer(device_type=1)
    producer.data[:] = [2.0, 0.0, 0.0, 5.0]
    w, v = megabatch.eigh(producer)
    np.testing.assert_array_equal(w, [[2.0, 5.0]])
    assert producer.deleted == 1


# --- numerics: LinAlgError -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_the_matrix(bad):
    a = sym(n=5, count=6)
    a[3, 4, 1] = bad
    with pytest.raises(megabatch.LinAlgError, match="matrix 3"):
        megabatch.eigh(a)
    with pytest.raises(megabatch.LinAlgError, match="matrix 3"):
        megabatch.eigvalsh(a)
    with pytest.raises(megabatch.LinAlgError, match=r"matrix 3 \(batch index \(1, 0\)\)"):
        megabatch.eigh(a.reshape(2, 3, 5, 5))


def test_linalg_error_is_numpys_and_a_value_error():
    assert issubclass(megabatch.LinAlgError, np.linalg.LinAlgError)
    assert issubclass(megabatch.LinAlgError, ValueError)
    a = sym()
    a[0, 2, 2] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        megabatch.eigh(a)


def test_non_finite_in_the_other_triangle_is_ignored():
    a = sym(n=5, count=2)
    a[1, 0, 4] = np.nan  # upper triangle: not read with uplo="L"
    megabatch.eigh(a)
    with pytest.raises(megabatch.LinAlgError, match="matrix 1"):
        megabatch.eigh(a, uplo="U")


def test_non_finite_leaves_outputs_unwritten():
    a = sym(n=4, count=3)
    a[2, 1, 0] = np.nan
    plan = megabatch.EighPlan(n=4, batch=3)
    w, v = np.full((3, 4), 7.0), np.full((3, 4, 4), 7.0)
    with pytest.raises(megabatch.LinAlgError):
        plan(a, out=(w, v))
    assert np.all(w == 7.0) and np.all(v == 7.0)


# --- sizes: MemoryError --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=2**20, batch=2**20),  # 2^60 elements, 2^63 bytes: past isize::MAX
        dict(n=200_000, batch=1),  # 320 GB for one matrix's A: more than the machine
        dict(sizes=[2**31, 2**31]),
    ],
)
def test_too_large_is_a_memory_error(kwargs):
    with pytest.raises(MemoryError):
        megabatch.EighPlan(**kwargs)


def test_too_large_with_uplo_u_is_a_memory_error():
    with pytest.raises(MemoryError):
        megabatch.EighPlan(n=2**16, batch=2**16, uplo="U")
