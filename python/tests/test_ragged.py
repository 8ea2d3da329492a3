"""eigh_ragged / eigvalsh_ragged: matrices of different orders in one call."""

import numpy as np
import pytest

import megabatch
from checks import TYPES, assert_accurate, make, symmetric_from


def matrices(sizes, dtype, rng):
    return [make(TYPES[i % len(TYPES)], n, dtype, rng).astype(dtype) for i, n in enumerate(sizes)]


SIZES = [4, 0, 1, 12, 7, 33, 2, 64, 12, 5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_list_form_is_accurate(dtype, rng):
    mats = matrices(SIZES, dtype, rng)
    w, v = megabatch.eigh_ragged(mats)
    assert len(w) == len(v) == len(SIZES)
    for i, (m, wi, vi) in enumerate(zip(mats, w, v)):
        assert wi.shape == (m.shape[0],) and vi.shape == m.shape and wi.dtype == dtype
        assert_accurate(symmetric_from(m), wi, vi, dtype, f"matrix {i} (n={m.shape[0]})")
    values = megabatch.eigvalsh_ragged(mats)
    for wi, vi in zip(w, values):
        np.testing.assert_array_equal(wi, vi)


def test_packed_form_matches_the_list_form(rng):
    mats = matrices(SIZES, np.float64, rng)
    values = np.concatenate([m.ravel() for m in mats])
    w, v = megabatch.eigh_ragged(values, SIZES)
    assert w.shape == (sum(SIZES),) and v.shape == values.shape
    w_list, v_list = megabatch.eigh_ragged(mats)
    np.testing.assert_array_equal(w, np.concatenate(w_list))
    np.testing.assert_array_equal(v, np.concatenate([x.ravel() for x in v_list]))
    np.testing.assert_array_equal(megabatch.eigvalsh_ragged(values, SIZES), w)


def test_uplo_u(rng):
    mats = matrices(SIZES, np.float64, rng)
    upper = [np.triu(m) + np.tril(np.full_like(m, np.nan), -1) for m in mats]
    lower = [np.tril(m) + np.triu(np.full_like(m, np.nan), 1) for m in mats]
    w_u, v_u = megabatch.eigh_ragged(upper, uplo="U")
    w_l, v_l = megabatch.eigh_ragged(lower)
    for a, b in zip(w_u + v_u, w_l + v_l):
        np.testing.assert_array_equal(a, b)
    packed = np.concatenate([m.ravel() for m in upper])
    w, v = megabatch.eigh_ragged(packed, SIZES, uplo="U")
    np.testing.assert_array_equal(w, np.concatenate(w_l))


def test_empty_batches():
    w, v = megabatch.eigh_ragged([])
    assert w == [] and v == []
    w, v = megabatch.eigh_ragged(np.zeros(0), [])
    assert w.shape == (0,) and v.shape == (0,)
    w, v = megabatch.eigh_ragged(np.zeros(0, np.float32), [0, 0])
    assert w.shape == (0,) and w.dtype == np.float32


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="matrix 1 has shape"):
        megabatch.eigh_ragged([np.eye(2), np.zeros((2, 3))])
    with pytest.raises(TypeError, match="several dtypes"):
        megabatch.eigh_ragged([np.eye(2), np.eye(3, dtype=np.float32)])
    with pytest.raises(TypeError, match="float32 or float64"):
        megabatch.eigh_ragged([np.eye(2, dtype=np.int64)])
    with pytest.raises(ValueError, match="the plan takes a 1-D array of 13 values"):
        megabatch.eigh_ragged(np.zeros(12), [2, 3])
    with pytest.raises(TypeError, match="without sizes"):
        megabatch.eigh_ragged(np.zeros(4))
    with pytest.raises(ValueError, match=">= 0"):
        megabatch.eigh_ragged(np.zeros(4), [-2])
    mats = matrices([3, 4, 5], np.float64, rng)
    mats[2][3, 1] = np.inf
    with pytest.raises(megabatch.LinAlgError, match="matrix 2"):
        megabatch.eigh_ragged(mats)
