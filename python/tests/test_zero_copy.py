"""Zero-copy, proven by address: what the Rust side read and wrote (the addresses it handed
the crate, `_megabatch._last_pointers()`) is the callers' memory."""

import numpy as np
import pytest

import megabatch
from megabatch._megabatch import _last_pointers
from checks import batch


def address(x):
    return x.__array_interface__["data"][0]


def sym(n, count, dtype=np.float64):
    return batch(["random_dense"], n, count, dtype, np.random.default_rng(n * count))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eigh_reads_the_callers_array(dtype):
    a = sym(12, 100, dtype)
    w, v = megabatch.eigh(a)
    seen = _last_pointers()
    assert seen["a"] == address(a) and not seen["a_copied"]
    assert seen["w"] == address(w) and seen["v"] == address(v)
    w = megabatch.eigvalsh(a)
    seen = _last_pointers()
    assert seen["a"] == address(a) and seen["w"] == address(w) and seen["v"] is None


def test_views_with_an_offset_are_read_where_they_lie():
    base = sym(6, 10)
    a = base[3:7]  # C-contiguous, 3 matrices into base
    megabatch.eigh(a)
    assert _last_pointers()["a"] == address(base) + 3 * 36 * 8


def test_read_only_arrays_are_read_in_place():
    a = sym(5, 4)
    a.setflags(write=False)
    megabatch.eigh(a)
    assert _last_pointers()["a"] == address(a)


def test_plan_writes_out_in_place():
    a = sym(12, 1582)
    plan = megabatch.EighPlan(n=12, batch=1582, dtype="float64")
    w, v = np.empty((1582, 12)), np.empty((1582, 12, 12))
    for _ in range(3):
        rw, rv = plan(a, out=(w, v))
        assert rw is w and rv is v
        seen = _last_pointers()
        assert (seen["a"], seen["w"], seen["v"]) == (address(a), address(w), address(v))


def test_uplo_u_reads_transposed_input_in_place():
    a = sym(7, 5)
    t = np.swapaxes(a, -1, -2)  # every matrix transposed: its upper triangle is a's lower
    megabatch.eigh(t, uplo="U")
    seen = _last_pointers()
    assert seen["a"] == address(a) and not seen["a_copied"]


def test_uplo_u_on_c_contiguous_input_reads_a_copy():
    # The documented exception: the crate reads lower triangles, so the plan transposes.
    a = sym(7, 5)
    megabatch.eigh(a, uplo="U")
    seen = _last_pointers()
    assert seen["a_copied"] and seen["a"] != address(a)


def test_ragged_values_are_read_in_place():
    sizes = [3, 0, 5, 1, 4]
    values = np.random.default_rng(0).standard_normal(sum(n * n for n in sizes))
    w, v = megabatch.eigh_ragged(values, sizes)
    seen = _last_pointers()
    assert (seen["a"], seen["w"], seen["v"]) == (address(values), address(w), address(v))
