"""ReducePlan and AttentionPlan: made once, called many times with out= written in place
(zero-copy by address), results equal to numpy and to the one-shot calls, and their errors."""

import numpy as np
import pytest

import attention_ref as ref
import megabatch


def address(x):
    return x.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_reductions_into_out(dtype, rng):
    x = rng.standard_normal((64, 50)).astype(dtype)
    y = rng.standard_normal((64, 50)).astype(dtype)
    out = np.full((), np.nan, dtype)
    for op, want in [
        ("sum", np.sum(x.astype(np.float64))),
        ("max", x.max()),
        ("mean", np.mean(x.astype(np.float64))),
        ("max_abs_diff", np.abs(x.astype(np.float64) - y).max()),
        ("dot", np.sum(x.astype(np.float64) * y)),
    ]:
        plan = megabatch.ReducePlan(op, len=x.size, dtype=dtype)
        assert plan.out_shape == [] and plan.out_dtype == np.dtype(dtype).name
        args = (x, y) if op in ("max_abs_diff", "dot") else (x,)
        for _ in range(2):
            got = plan(*args, out=out)
            assert got is out
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(x).sum())
        np.testing.assert_array_equal(plan(*args), out)  # a new array, same bits


def test_row_and_segment_plans(rng):
    x = rng.standard_normal((300, 7))
    w = rng.uniform(0.1, 1, 300)
    plan = megabatch.ReducePlan("weighted_mean", rows=300, cols=7)
    out = np.empty(7)
    assert plan(x, w, out=out) is out
    np.testing.assert_allclose(out, np.average(x, axis=0, weights=w), rtol=1e-12)
    np.testing.assert_allclose(megabatch.ReducePlan("max", rows=300, cols=7)(x), x.max(axis=0))
    values = rng.standard_normal(1000)
    offsets = [0, 10, 10, 400, 1000]
    seg = megabatch.ReducePlan("sum", offsets=offsets)
    out = np.empty(4)
    assert seg(values, out=out) is out
    want = [values[a:b].sum() for a, b in zip(offsets, offsets[1:])]
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_reduce_plan_errors(rng):
    plan = megabatch.ReducePlan("sum", len=10)
    with pytest.raises(ValueError, match="10"):
        plan(np.ones(11))
    with pytest.raises(TypeError, match="float32, the plan is for float64"):
        plan(np.ones(10, np.float32))
    with pytest.raises(ValueError, match="takes no `y`"):
        plan(np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="needs `y`"):
        megabatch.ReducePlan("max_abs_diff", len=10)(np.ones(10))
    with pytest.raises(ValueError, match="C-contiguous"):
        plan(np.ones(20)[::2])
    with pytest.raises(ValueError, match="read-only"):
        out = np.empty(())
        out.setflags(write=False)
        plan(np.ones(10), out=out)
    with pytest.raises(TypeError, match="`out` is float32"):
        plan(np.ones(10), out=np.empty((), np.float32))
    with pytest.raises(ValueError, match="unknown reduction"):
        megabatch.ReducePlan("median", len=3)
    with pytest.raises(ValueError, match="len="):
        megabatch.ReducePlan("sum")
    with pytest.raises(ValueError):
        megabatch.ReducePlan("sum", offsets=[0, 5, 3])  # decreasing
    with pytest.raises(ValueError, match="CUDA device 0"):
        megabatch.ReducePlan("sum", len=3, device="cuda:1")
    x = np.ones(10)
    with pytest.raises(ValueError, match="share memory"):
        megabatch.ReducePlan("sum", rows=10, cols=1)(x.reshape(10, 1), out=x[:1])


def test_attention_plan_reuses_its_mask_and_writes_out_in_place(rng):
    s, d = 128, 32
    ids = np.sort(rng.integers(0, 4, (2, s)), axis=1)
    mod = lambda b, h, qi, kv: (ids[b, qi] == ids[b, kv]) & (kv <= qi)  # noqa: E731
    mask = ref.create_block_mask(mod, (2, 1), (s, s), (32, 32))
    plan = megabatch.AttentionPlan(mask, (2, 4, s, d), (2, 2, s, d), enable_gqa=True, scale=0.2)
    out = np.empty((2, 4, s, d), np.float32)
    lse = np.empty((2, 4, s), np.float32)
    for _ in range(3):
        q = rng.standard_normal((2, 4, s, d)).astype(np.float32)
        k, v = (rng.standard_normal((2, 2, s, d)).astype(np.float32) for _ in range(2))
        got_o, got_lse = plan(q, k, v, out=out, lse=lse)
        assert got_o is out and got_lse is lse
        o_ref, lse_ref = ref.attention(q, k, v, mask, 0.2)
        np.testing.assert_allclose(out, o_ref, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(lse, lse_ref, rtol=1e-5, atol=1e-5)
        one = megabatch.attention(q, k, v, mask, scale=0.2, enable_gqa=True)
        np.testing.assert_array_equal(one, out)
    assert address(out) == address(got_o)
    with pytest.raises(ValueError, match="shape"):
        plan(q[:, :2], k, v)
    with pytest.raises(ValueError, match="enable_gqa"):
        megabatch.AttentionPlan(mask, (2, 4, s, d), (2, 2, s, d))
    with pytest.raises(ValueError, match="share memory"):
        plan(q, k, v, out=q)
