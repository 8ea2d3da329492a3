"""megabatch.sum, max, max_abs_diff, weighted_mean and segment_sum against independent
references: math.fsum (correctly rounded sums) in float64, numpy's maxima and averages; NaN
propagation, empty inputs, determinism, every bad input, and the wgpu backend on lavapipe."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import megabatch

DTYPES = [np.float32, np.float64]


def fsum(x):
    """The correctly rounded float64 sum of ``x``'s values."""
    return math.fsum(np.asarray(x, dtype=np.float64).ravel().tolist())


def sum_bound(x, dtype):
    """The pairwise summation bound: log2(n) * eps * sum|x|, with slack for the final
    rounding into ``dtype``."""
    n = max(int(np.size(x)), 2)
    magnitude = fsum(np.abs(np.asarray(x, dtype=np.float64)))
    return (math.log2(n) + 2) * np.finfo(dtype).eps * magnitude


def values(rng, shape, dtype):
    """Mixed signs and magnitudes over six decades, in ``dtype``."""
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, size=shape)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (1000,), (100_003,), (3, 5), (4, 6, 250), (2, 1, 3, 1)])
def test_sum_is_within_the_pairwise_bound(shape, dtype, rng):
    x = values(rng, shape, dtype)
    s = megabatch.sum(x)
    assert isinstance(s, np.generic) and s.dtype == dtype
    assert abs(float(s) - fsum(x)) <= sum_bound(x, dtype), (float(s), fsum(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_is_deterministic(dtype, rng):
    x = values(rng, (50_001,), dtype)
    first = megabatch.sum(x)
    for _ in range(3):
        again = megabatch.sum(x.copy())  # another address, the same bits out
        assert again.tobytes() == first.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_matches_numpy(dtype, rng):
    for shape in [(1,), (9,), (10_000,), (3, 7, 11)]:
        x = values(rng, shape, dtype)
        m = megabatch.max(x)
        assert isinstance(m, np.generic) and m.dtype == dtype
        assert m == np.max(x)
    x = np.full(100, -np.inf, dtype=dtype)
    assert megabatch.max(x) == -np.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_abs_diff_matches_numpy(dtype, rng):
    for shape in [(1,), (5,), (10_007,), (6, 40)]:
        x, y = values(rng, shape, dtype), values(rng, shape, dtype)
        d = megabatch.max_abs_diff(x, y)
        assert isinstance(d, np.generic) and d.dtype == dtype
        # |x - y| rounded in the arrays' dtype, as numpy rounds it: the same bits.
        assert d == np.abs(x - y).max()
    x = values(rng, (100,), dtype)
    assert megabatch.max_abs_diff(x, x) == 0
    assert megabatch.max_abs_diff(x, x.copy()) == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols", [(1, 1), (1, 9), (17, 1), (64, 33), (1000, 7), (3, 5000)])
def test_weighted_mean_matches_numpy_average(rows, cols, dtype, rng):
    x = values(rng, (rows, cols), dtype)
    w = rng.uniform(0.1, 2.0, size=rows).astype(dtype)
    m = megabatch.weighted_mean(x, w)
    assert m.shape == (cols,) and m.dtype == dtype
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    reference = np.average(x64, axis=0, weights=w64)
    # Per column: the two pairwise sums' bounds, relative to the weight sum.
    scale = (np.abs(w64) @ np.abs(x64)) / w64.sum()
    tol = (math.log2(max(rows, 2)) + 4) * np.finfo(dtype).eps * scale
    assert np.all(np.abs(m.astype(np.float64) - reference) <= tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_sum_matches_fsum_per_segment(dtype, rng):
    sizes = rng.integers(0, 40, size=300)
    sizes[[0, 5, 6, -1]] = 0  # empty segments, first and last included
    sizes[10] = 5000
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    x = values(rng, (int(offsets[-1]),), dtype)
    for given in (offsets, offsets.tolist(), tuple(int(o) for o in offsets)):
        out = megabatch.segment_sum(x, given)
        assert out.shape == (len(sizes),) and out.dtype == dtype
        for s in range(len(sizes)):
            part = x[offsets[s] : offsets[s + 1]]
            assert abs(float(out[s]) - fsum(part)) <= sum_bound(part, dtype), s
    assert np.all(out[sizes == 0] == 0)


def test_segment_sum_skips_elements_before_the_first_offset():
    x = np.arange(10, dtype=np.float64)
    np.testing.assert_array_equal(megabatch.segment_sum(x, [3, 5, 10]), [3 + 4, 5 + 6 + 7 + 8 + 9])


def test_empty_inputs_give_identities():
    e = np.zeros(0)
    assert megabatch.sum(e) == 0
    assert megabatch.max(e) == -np.inf
    assert megabatch.max_abs_diff(e, e) == 0
    assert megabatch.segment_sum(e, [0]).shape == (0,)
    np.testing.assert_array_equal(megabatch.segment_sum(e, [0, 0, 0]), [0, 0])
    assert megabatch.weighted_mean(np.zeros((3, 0)), np.ones(3)).shape == (0,)
    assert np.all(np.isnan(megabatch.weighted_mean(np.ones((2, 3)), np.zeros(2))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", [0, 1, 4095, 4096, -1])
def test_nan_propagates(where, dtype, rng):
    x = values(rng, (8192,), dtype)
    bad = x.copy()
    bad[where] = np.nan
    assert np.isnan(megabatch.sum(bad))
    assert np.isnan(megabatch.max(bad))
    assert np.isnan(megabatch.max_abs_diff(x, bad))
    assert np.isnan(megabatch.max_abs_diff(bad, x))
    out = megabatch.segment_sum(bad, [0, 4096, 8192])
    assert np.isnan(out[0 if where in (0, 1, 4095) else 1])
    assert not np.isnan(out[1 if where in (0, 1, 4095) else 0])
    m = megabatch.weighted_mean(bad.reshape(64, 128), np.ones(64, dtype=dtype))
    column = where % 128
    assert np.isnan(m[column]) and np.count_nonzero(np.isnan(m)) == 1
    weights = np.ones(64, dtype=dtype)
    weights[3] = np.nan
    assert np.all(np.isnan(megabatch.weighted_mean(x.reshape(64, 128), weights)))


def test_inputs_that_are_not_arrays_go_through_numpy():
    assert megabatch.sum([1.0, 2.0, 3.5]) == 6.5
    assert megabatch.max_abs_diff([1.0, 2.0], [1.5, 0.0]) == 2.0


def test_bad_inputs():
    x = np.ones((4, 6))
    with pytest.raises(TypeError, match="int64"):
        megabatch.sum(np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="float32"):
        megabatch.max_abs_diff(np.ones(3), np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="__dlpack__|float"):
        megabatch.sum("abc")
    with pytest.raises(ValueError, match="no broadcasting"):
        megabatch.max_abs_diff(np.ones(3), np.ones((1, 3)))
    with pytest.raises(ValueError, match="not C-contiguous"):
        megabatch.sum(x[:, ::2])
    with pytest.raises(ValueError, match="not C-contiguous"):
        megabatch.max_abs_diff(x, x.T.copy().T)
    with pytest.raises(ValueError, match="not C-contiguous"):
        # 2^40 elements that share one: refused for the layout before anything is sized.
        megabatch.sum(np.broadcast_to(np.ones(1), (2**40,)))
    with pytest.raises(ValueError, match="2-D"):
        megabatch.weighted_mean(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        megabatch.weighted_mean(x, np.ones(6))
    with pytest.raises(ValueError, match="offsets\\[-1\\] is 5"):
        megabatch.segment_sum(np.ones(6), [0, 5])
    with pytest.raises(ValueError, match="at least one"):
        megabatch.segment_sum(np.ones(0), [])
    with pytest.raises(ValueError, match=">= 0"):
        megabatch.segment_sum(np.ones(2), [-1, 2])
    with pytest.raises(ValueError, match="index 2"):
        megabatch.segment_sum(np.ones(4), [0, 3, 1, 4])
    with pytest.raises(ValueError, match="1-D"):
        megabatch.segment_sum(x, [0, 24])
    with pytest.raises(ValueError, match="backend"):
        megabatch.sum(x, backend="tpu")


WGPU_CHECK = """
import math, sys
import numpy as np
import megabatch
info = megabatch.info()
if "wgpu" not in info["backends"]:
    print("no wgpu backend:", info["notes"])
    sys.exit(3)
rng = np.random.default_rng(1)
for dtype in (np.float32, np.float64):
    eps = np.finfo(dtype).eps
    x = (rng.standard_normal(300_001) * 10.0 ** rng.integers(-3, 3, 300_001)).astype(dtype)
    y = x + rng.standard_normal(x.size).astype(dtype)
    s = megabatch.sum(x, backend="wgpu")
    assert s.dtype == dtype
    exact = math.fsum(x.astype(np.float64).tolist())
    bound = 22 * eps * math.fsum(np.abs(x.astype(np.float64)).tolist())
    assert abs(float(s) - exact) <= bound, (dtype, float(s), exact)
    assert megabatch.sum(x, backend="wgpu").tobytes() == s.tobytes()
    assert megabatch.max(x, backend="wgpu") == x.max()
    assert megabatch.max_abs_diff(x, y, backend="wgpu") == np.abs(x - y).max()
    bad = x.copy(); bad[12345] = np.nan
    assert np.isnan(megabatch.sum(bad, backend="wgpu"))
    assert np.isnan(megabatch.max(bad, backend="wgpu"))
    m = x[: 1000 * 300].reshape(1000, 300)
    w = rng.uniform(0.1, 2.0, 1000).astype(dtype)
    got = megabatch.weighted_mean(m, w, backend="wgpu").astype(np.float64)
    ref = np.average(m.astype(np.float64), axis=0, weights=w.astype(np.float64))
    scale = (w.astype(np.float64) @ np.abs(m.astype(np.float64))) / w.astype(np.float64).sum()
    assert np.all(np.abs(got - ref) <= 16 * eps * scale), dtype
    offsets = np.concatenate([[0], np.cumsum(rng.integers(0, 3000, 200))])
    v = x[: offsets[-1]]
    got = megabatch.segment_sum(v, offsets, backend="wgpu")
    for s in range(200):
        part = v[offsets[s]:offsets[s + 1]].astype(np.float64)
        err = abs(float(got[s]) - math.fsum(part.tolist()))
        assert err <= 16 * eps * math.fsum(np.abs(part).tolist()), (dtype, s)
print("wgpu reductions ok on", info["wgpu"]["name"])
"""


def test_wgpu_backend():
    # As test_info's wgpu check: lavapipe named through MEGABATCH_WGPU_ADAPTER in a fresh
    # interpreter; MEGABATCH_REQUIRE_WGPU=1 (CI) fails instead of skipping without it.
    env = dict(os.environ, MEGABATCH_WGPU_ADAPTER=os.environ.get("MEGABATCH_WGPU_ADAPTER", "llvmpipe"))
    done = subprocess.run(
        [sys.executable, "-c", WGPU_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    if done.returncode == 3 and os.environ.get("MEGABATCH_REQUIRE_WGPU") != "1":
        pytest.skip(out.strip())
    assert done.returncode == 0, out
