"""torch CPU tensors through DLPack (skipped where torch is not installed: CI installs
numpy and pytest only; run locally with torch to cover these)."""

import numpy as np
import pytest

import megabatch
from megabatch._megabatch import _last_pointers
from checks import assert_accurate, batch, symmetric_from

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_inputs_and_outputs_in_place(dtype, rng):
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    a = torch.from_numpy(batch(["random_dense", "graded"], 10, 64, np_dtype, rng))
    w, v = megabatch.eigh(a)
    assert _last_pointers()["a"] == a.data_ptr()
    assert_accurate(symmetric_from(a.numpy()), w, v, np_dtype, str(dtype))
    w_t = torch.linalg.eigvalsh(a.double()).numpy()
    np.testing.assert_allclose(w, w_t, atol=100 * np.finfo(np_dtype).eps * np.abs(w_t).max())
    plan = megabatch.EighPlan(n=10, batch=64, dtype=np_dtype)
    tw, tv = torch.empty(64, 10, dtype=dtype), torch.empty(64, 10, 10, dtype=dtype)
    rw, rv = plan(a, out=(tw, tv))
    assert rw is tw and rv is tv
    seen = _last_pointers()
    assert (seen["w"], seen["v"]) == (tw.data_ptr(), tv.data_ptr())
    np.testing.assert_array_equal(tw.numpy(), w)


def test_torch_transposed_input_with_uplo_u(rng):
    a = torch.from_numpy(batch(["random_dense"], 6, 5, np.float64, rng))
    megabatch.eigh(a.mT, uplo="U")
    seen = _last_pointers()
    assert seen["a"] == a.data_ptr() and not seen["a_copied"]


def test_torch_bad_inputs():
    with pytest.raises(TypeError, match="bfloat16"):
        megabatch.eigh(torch.zeros(2, 3, 3, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="int64"):
        megabatch.eigh(torch.zeros(2, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="not contiguous"):
        megabatch.eigh(torch.zeros(2, 6, 6, dtype=torch.float64)[:, ::2, ::2])
    # torch refuses to export a tensor that requires grad (BufferError): its reason, as a
    # TypeError like every export refusal.
    with pytest.raises(TypeError, match="gradient"):
        megabatch.eigh(torch.zeros(2, 3, 3, dtype=torch.float64, requires_grad=True))
    nan = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1)
    nan[2, 1, 1] = float("nan")
    with pytest.raises(megabatch.LinAlgError, match="matrix 2"):
        megabatch.eigh(nan)
