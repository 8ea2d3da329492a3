"""CUDA arrays from Python: torch CUDA tensors and CuPy arrays in place (zero-copy proven by
data pointer), results of the same kind on the same device, ordered on the caller's stream
without host synchronisation, arrays kept alive while queued, errors as exceptions.

Skipped (with the reason in pytest's -rs summary) where torch or CuPy with a GPU, or
megabatch's CUDA backend, is missing; MEGABATCH_REQUIRE_CUDA=1 (the GPU host's check,
scripts/gpu-python-check.sh) makes every such skip a failure instead. Written for torch 2.11
and CuPy 14 on CUDA 13."""

import os

import numpy as np
import pytest

import megabatch
from megabatch._megabatch import _last_pointers, _pending
from checks import assert_accurate, batch, symmetric_from

REQUIRE = os.environ.get("MEGABATCH_REQUIRE_CUDA") == "1"


def _unavailable(reason):
    if REQUIRE:
        pytest.fail(f"MEGABATCH_REQUIRE_CUDA=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED (no CUDA): {reason}")


def _megabatch_cuda():
    info = megabatch.info()
    if "cuda" not in info["backends"]:
        _unavailable(f"megabatch found no CUDA backend ({'; '.join(info['notes'])})")


@pytest.fixture
def torch():
    try:
        import torch
    except ImportError:
        _unavailable("torch is not installed")
    if not torch.cuda.is_available():
        _unavailable("torch sees no CUDA device")
    _megabatch_cuda()
    return torch


@pytest.fixture
def cupy():
    try:
        import cupy
    except ImportError:
        _unavailable("CuPy is not installed")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001 - CuPy raises its own runtime errors
        _unavailable(f"CuPy sees no CUDA device ({e})")
    _megabatch_cuda()
    return cupy


def sym(n, count, dtype, seed=0):
    return batch(["random_dense", "graded", "clustered"], n, count, dtype, np.random.default_rng(seed))


def spin(torch, ms):
    """Queues at least about `ms` milliseconds of busy device work on the current stream (2 GHz
    assumed when torch does not report the clock: slower clocks spin longer)."""
    khz = getattr(torch.cuda.get_device_properties(0), "clock_rate", 2_000_000)
    torch.cuda._sleep(int(khz * ms))


# --- eigh ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [3, 12, 33, 70])
def test_torch_eigh_in_place_same_kind_out(torch, dtype, n):
    host = sym(n, 40, np.dtype(dtype))
    a = torch.from_numpy(host).cuda()
    w, v = megabatch.eigh(a)
    seen = _last_pointers()
    assert isinstance(w, torch.Tensor) and w.is_cuda and v.is_cuda
    assert w.dtype == a.dtype and w.shape == (40, n) and v.shape == (40, n, n)
    assert (seen["a"], seen["w"], seen["v"]) == (a.data_ptr(), w.data_ptr(), v.data_ptr())
    assert not seen["a_copied"]
    assert_accurate(symmetric_from(host), w.cpu().numpy(), v.cpu().numpy(), np.dtype(dtype), f"cuda n={n}")
    values = megabatch.eigvalsh(a)
    eps = np.finfo(np.dtype(dtype)).eps
    scale = float(w.abs().max())
    np.testing.assert_allclose(values.cpu().numpy(), w.cpu().numpy(), rtol=0, atol=100 * n * eps * scale)


def test_torch_transposed_input_with_uplo_u_is_read_in_place(torch):
    host = sym(9, 16, np.float64)
    a = torch.from_numpy(host).cuda()
    w, _ = megabatch.eigh(a.mT, uplo="U")
    assert _last_pointers()["a"] == a.data_ptr()
    np.testing.assert_allclose(w.cpu().numpy(), np.linalg.eigvalsh(symmetric_from(host)), atol=1e-12)
    with pytest.raises(ValueError, match="does not transpose"):
        megabatch.eigh(a, uplo="U")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plan_writes_out_in_place_on_cuda(torch, dtype):
    n, count = 12, 1582
    host = sym(n, count, np.dtype(dtype))
    a = torch.from_numpy(host).cuda()
    plan = megabatch.EighPlan(n=n, batch=count, dtype=dtype, device="cuda")
    assert plan.device == "cuda" and plan.backend == "cuda"
    w = torch.empty(count, n, dtype=a.dtype, device="cuda")
    v = torch.empty(count, n, n, dtype=a.dtype, device="cuda")
    for _ in range(3):
        rw, rv = plan(a, out=(w, v))
        assert rw is w and rv is v
        seen = _last_pointers()
        assert (seen["a"], seen["w"], seen["v"]) == (a.data_ptr(), w.data_ptr(), v.data_ptr())
    assert_accurate(symmetric_from(host), w.cpu().numpy(), v.cpu().numpy(), np.dtype(dtype), "plan")
    ragged = megabatch.eigh_ragged(torch.from_numpy(np.eye(3).ravel()).cuda(), [3])
    assert ragged.eigenvalues.is_cuda
    np.testing.assert_allclose(ragged.eigenvalues.cpu().numpy(), [1.0, 1.0, 1.0], atol=1e-14)


def test_stream_ordering_without_host_synchronisation(torch):
    """A torch kernel on a side stream produces the input after a long spin; megabatch queues
    on that stream (the current one inside the `with`), torch consumes the output there: no
    synchronize anywhere, and the call returns while the spin still runs."""
    n, count = 16, 4096
    host = sym(n, count, np.float64, seed=5)
    base = torch.from_numpy(host).cuda()
    megabatch.eigh(base)  # compiles and caches the plan of this shape
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        spin(torch, 200)
        a = base * 2.0  # written after the spin, on `side`
        w, v = megabatch.eigh(a)
        busy = not side.query()
        recon = (v * w[..., None, :]) @ v.mT  # torch on `side`, after megabatch's work
    assert busy, "megabatch's call waited for the stream (it must only queue)"
    side.synchronize()
    np.testing.assert_allclose(recon.cpu().numpy(), 2.0 * symmetric_from(host), atol=1e-10)


def test_dlpack_handshake_orders_another_stream(torch):
    """The input is produced on the current stream; megabatch runs on another (`stream=`):
    the producer makes that stream wait for its work by an event (DLPack's stream argument),
    and the results are consumed on that stream."""
    host = sym(10, 2048, np.float32, seed=6)
    base = torch.from_numpy(host).cuda()
    megabatch.eigvalsh(base)
    torch.cuda.synchronize()
    other = torch.cuda.Stream()
    spin(torch, 100)
    a = base + 0.0  # on the current stream, after the spin
    w = megabatch.eigvalsh(a, stream=other)
    with torch.cuda.stream(other):
        total = w.sum(dim=-1)  # trace of each matrix
    other.synchronize()
    np.testing.assert_allclose(total.cpu().numpy(), np.trace(host, axis1=1, axis2=2), rtol=1e-4, atol=1e-4)


def test_freed_tensor_while_queued_stays_alive(torch):
    """The caller drops its input while megabatch's work on it is still queued (behind a
    spin): megabatch's reference keeps the memory, so a new tensor on the input's allocation
    stream cannot take its block, and the results are right."""
    host = sym(8, 8192, np.float64, seed=7)
    base = torch.from_numpy(host).cuda()
    megabatch.eigvalsh(base)
    torch.cuda.synchronize()
    alloc, worker = torch.cuda.Stream(), torch.cuda.Stream()
    with torch.cuda.stream(alloc):
        a = base.clone()
    worker.wait_stream(alloc)
    with torch.cuda.stream(worker):
        spin(torch, 200)
        w = megabatch.eigvalsh(a)
    ptr = a.data_ptr()
    del a
    assert _pending() >= 1
    with torch.cuda.stream(alloc):
        junk = torch.full_like(base, float("nan"))  # would reuse a's block had it been freed
    assert junk.data_ptr() != ptr
    torch.cuda.synchronize()
    np.testing.assert_allclose(w.cpu().numpy(), np.linalg.eigvalsh(symmetric_from(host)), atol=1e-12)
    megabatch.synchronize()
    assert _pending() == 0


def test_non_finite_matrices_on_cuda(torch):
    a = torch.eye(4, dtype=torch.float64, device="cuda").repeat(5, 1, 1)
    a[3, 2, 1] = float("nan")
    w, v = megabatch.eigh(a)  # does not wait: the bad matrix comes out NaN
    torch.cuda.synchronize()
    assert torch.isnan(w[3]).all() and torch.isnan(v[3]).all()
    assert torch.allclose(w[[0, 1, 2, 4]], torch.ones(4, 4, dtype=torch.float64, device="cuda"))
    with pytest.raises(megabatch.LinAlgError, match="matrix 3"):
        megabatch.eigh(a, check_errors=True)
    plan = megabatch.EighPlan(n=4, batch=5, device="cuda")
    plan(a)
    assert plan.info().tolist() == [0, 0, 0, 1, 0]


def test_cuda_bad_inputs_are_exceptions(torch):
    a = torch.from_numpy(sym(6, 4, np.float64)).cuda()
    with pytest.raises(ValueError, match="non-contiguous"):
        megabatch.eigh(torch.zeros(4, 12, 12, dtype=torch.float64, device="cuda")[:, ::2, ::2])
    with pytest.raises(TypeError, match="float16"):
        megabatch.eigh(a.half())
    cpu_plan = megabatch.EighPlan(n=6, batch=4)
    with pytest.raises(ValueError, match='device="cuda"'):
        cpu_plan(a)
    plan = megabatch.EighPlan(n=6, batch=4, device="cuda")
    with pytest.raises(ValueError, match="CPU array"):
        plan(a.cpu())
    with pytest.raises(ValueError, match="CPU array"):
        plan(a, out=(torch.empty(4, 6, dtype=torch.float64), torch.empty(4, 6, 6, dtype=torch.float64)))
    with pytest.raises(ValueError, match="shape"):
        plan(a, out=(torch.empty(4, 5, dtype=torch.float64, device="cuda"), torch.empty_like(a)))
    with pytest.raises(TypeError, match="float32"):
        plan(a.float())
    with pytest.raises(ValueError, match="share memory"):
        plan(a, out=(torch.empty(4, 6, dtype=torch.float64, device="cuda"), a))
    with pytest.raises(ValueError, match="backend"):
        megabatch.eigh(a, backend="cpu")
    with pytest.raises(TypeError, match="stream"):
        megabatch.eigh(a, stream="fast")


# --- reductions ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_torch_reductions(torch, dtype):
    rng = np.random.default_rng(8)
    ints = rng.integers(-64, 65, (512, 33))  # exact in every dtype, and their sums in float32
    x = torch.from_numpy(ints).to(device="cuda", dtype=getattr(torch, dtype))
    y = torch.from_numpy(rng.integers(-64, 65, (512, 33))).to(device="cuda", dtype=x.dtype)
    acc = torch.float32 if dtype in ("float16", "bfloat16") else x.dtype
    total = megabatch.sum(x)
    assert isinstance(total, torch.Tensor) and total.is_cuda and total.shape == () and total.dtype == acc
    assert total.item() == ints.sum()
    assert megabatch.max(x).item() == ints.max()
    assert megabatch.max_abs_diff(x, y).item() == np.abs(ints - y.cpu().double().numpy()).max()
    wm = megabatch.weighted_mean(x, torch.ones(512, device="cuda", dtype=x.dtype))
    np.testing.assert_allclose(wm.cpu().double().numpy(), ints.mean(axis=0), rtol=1e-3)
    flat = x.reshape(-1)
    seg = megabatch.segment_sum(flat, [0, 100, 100, flat.numel()])
    assert seg.cpu().double().tolist() == [ints.ravel()[:100].sum(), 0, ints.ravel()[100:].sum()]
    plan = megabatch.ReducePlan("sum", len=x.numel(), dtype=dtype, device="cuda")
    out = torch.empty((), device="cuda", dtype=acc)
    assert plan(x, out=out) is out and out.item() == ints.sum()


# --- attention -------------------------------------------------------------------------------


def _flex(torch):
    try:
        from torch.nn.attention import flex_attention as fa
    except ImportError:
        _unavailable("this torch has no FlexAttention")
    return fa


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_torch_attention_against_flex_attention(torch, dtype):
    fa = _flex(torch)
    s, d = 1024, 64
    dt = getattr(torch, dtype)
    gen = torch.Generator(device="cuda").manual_seed(9)
    q, k, v = (torch.randn(2, 4, s, d, device="cuda", dtype=dt, generator=gen) for _ in range(3))
    doc = torch.sort(torch.randint(0, 5, (s,), device="cuda", generator=gen)).values

    def prefix_doc(b, h, q_idx, kv_idx):
        return ((kv_idx <= q_idx) | (kv_idx < 100)) & (doc[q_idx] == doc[kv_idx])

    mask = fa.create_block_mask(prefix_doc, B=None, H=None, Q_LEN=s, KV_LEN=s, device="cuda")
    o, lse = megabatch.attention(q, k, v, mask, return_lse=True)
    assert o.is_cuda and o.dtype == dt and lse.dtype == torch.float32
    o_ref, lse_ref = fa.flex_attention(q.float(), k.float(), v.float(), block_mask=mask, return_lse=True)
    tol = {"float32": 2e-4, "float16": 5e-3, "bfloat16": 3e-2}[dtype]
    torch.testing.assert_close(o.float(), o_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(lse, lse_ref, rtol=1e-3, atol=1e-3)
    plan = megabatch.AttentionPlan(mask, q.shape, k.shape, dtype=dt, device="cuda")
    out, lse_out = torch.empty_like(q), torch.empty_like(lse)
    got = plan(q, k, v, out=out, lse=lse_out)
    assert got[0] is out and got[1] is lse_out
    torch.testing.assert_close(out, o, rtol=0, atol=0)


# --- CuPy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_eigh_and_reductions(cupy, dtype):
    host = sym(20, 64, np.dtype(dtype), seed=10)
    a = cupy.asarray(host)
    w, v = megabatch.eigh(a)
    assert isinstance(w, cupy.ndarray) and w.dtype == a.dtype and w.shape == (64, 20)
    seen = _last_pointers()
    assert (seen["a"], seen["w"], seen["v"]) == (a.data.ptr, w.data.ptr, v.data.ptr)
    assert_accurate(symmetric_from(host), cupy.asnumpy(w), cupy.asnumpy(v), np.dtype(dtype), "cupy")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.arange(1000, dtype=dtype)
        total = megabatch.sum(x)  # on CuPy's current stream: `stream`
        doubled = total * 2
    stream.synchronize()
    assert float(doubled) == 2 * 999 * 1000 / 2
