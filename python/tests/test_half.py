"""float16 (and bfloat16) attention and reductions from Python: numpy float16 on the CPU and
on wgpu (lavapipe has SHADER_F16), against the float64 reference on the inputs as rounded;
what no backend runs (bfloat16 on wgpu) and float64 attention as exceptions."""

import os
import subprocess
import sys

import numpy as np
import pytest

import attention_ref as ref
import megabatch

TESTS = os.path.dirname(os.path.abspath(__file__))


def qkv16(rng, b, hq, hkv, sq, skv, d):
    q = rng.standard_normal((b, hq, sq, d)).astype(np.float16)
    k = rng.standard_normal((b, hkv, skv, d)).astype(np.float16)
    v = rng.standard_normal((b, hkv, skv, d)).astype(np.float16)
    return q, k, v


def check16(q, k, v, mask, **kw):
    o, lse = megabatch.attention(q, k, v, mask, return_lse=True, **kw)
    assert o.dtype == np.float16 and o.shape == q.shape
    assert lse.dtype == np.float32 and lse.shape == q.shape[:3]
    # The reference sees exactly the float16 values (widened exactly); the kernels keep
    # scores and sums in float32 and round O once to float16: half an ulp of |O| <= max|v|.
    o_ref, lse_ref = ref.attention(*(x.astype(np.float32) for x in (q, k, v)), mask)
    np.testing.assert_allclose(o.astype(np.float64), o_ref, rtol=2e-3, atol=2e-3)
    assert np.array_equal(np.isneginf(lse), np.isneginf(lse_ref))
    ok = np.isfinite(lse_ref)
    np.testing.assert_allclose(lse[ok], lse_ref[ok], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seq, block", [((128, 128), (32, 32)), ((100, 150), (16, 64)), ((77, 45), (64, 16))])
def test_float16_attention_on_the_cpu(seq, block, rng):
    q, k, v = qkv16(rng, 2, 4, 2, *seq, 64)
    mod = lambda b, h, qi, kv: (kv <= qi) | (kv < 19)  # noqa: E731 - prefix-LM
    mask = ref.create_block_mask(mod, (1, 1), seq, block)
    check16(q, k, v, mask, enable_gqa=True, backend="cpu")


def test_float16_plan_matches_the_one_shot_call(rng):
    q, k, v = qkv16(rng, 1, 2, 2, 96, 96, 32)
    mask = ref.create_block_mask(lambda b, h, qi, kv: qi >= kv, (1, 1), (96, 96), (32, 32))
    plan = megabatch.AttentionPlan(mask, q.shape, k.shape, dtype="float16", backend="cpu")
    out = np.empty_like(q)
    got = plan(q, k, v, out=out)
    assert got is out and plan.dtype == "float16"
    np.testing.assert_array_equal(out, megabatch.attention(q, k, v, mask, backend="cpu"))


def test_attention_dtype_errors(rng):
    q, k, v = qkv16(rng, 1, 1, 1, 32, 32, 32)
    mask = ref.create_block_mask(lambda b, h, qi, kv: qi >= kv, (1, 1), (32, 32), (32, 32))
    with pytest.raises(TypeError, match="float64: attention takes float32, float16 or bfloat16"):
        megabatch.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask)
    with pytest.raises(TypeError, match="share one dtype"):
        megabatch.attention(q, k.astype(np.float32), v, mask)
    plan = megabatch.AttentionPlan(mask, q.shape, k.shape, dtype=np.float16, backend="cpu")
    with pytest.raises(TypeError, match="`q` is float32, the plan is for float16"):
        plan(q.astype(np.float32), k, v)


def test_float16_reductions_accumulate_in_float32(rng):
    # Integers up to 64 are exact in float16, and their sums in float32: the results are
    # exact whatever the summation order.
    x = rng.integers(-64, 65, 5000).astype(np.float16)
    y = rng.integers(-64, 65, 5000).astype(np.float16)
    total = megabatch.sum(x)
    assert total.dtype == np.float32 and total == x.astype(np.float64).sum()
    assert megabatch.max(x) == x.max() and megabatch.max(x).dtype == np.float32
    assert megabatch.max_abs_diff(x, y) == np.abs(x.astype(np.float64) - y).max()
    w = megabatch.segment_sum(x, [0, 10, 10, 5000])
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [x[:10].astype(np.float64).sum(), 0, x[10:].astype(np.float64).sum()])


WGPU_CHECK = f"""
import sys
sys.path.insert(0, {TESTS!r})
import numpy as np
import megabatch
import attention_ref as ref
info = megabatch.info()
if "wgpu" not in info["backends"]:
    print("no wgpu backend:", info["notes"])
    sys.exit(3)
rng = np.random.default_rng(3)
seq, block = (100, 150), (16, 64)
q = rng.standard_normal((1, 2, seq[0], 64)).astype(np.float16)
k, v = (rng.standard_normal((1, 2, seq[1], 64)).astype(np.float16) for _ in range(2))
ids = np.sort(rng.integers(0, 3, (1, 150)), axis=1)
mod = lambda b, h, qi, kv: ids[b, np.minimum(qi, 149)] == ids[b, kv]
mask = ref.create_block_mask(mod, (1, 1), seq, block)
o, lse = megabatch.attention(q, k, v, mask, return_lse=True, backend="wgpu")
assert o.dtype == np.float16
o_ref, lse_ref = ref.attention(*(x.astype(np.float32) for x in (q, k, v)), mask)
np.testing.assert_allclose(o.astype(np.float64), o_ref, rtol=2e-3, atol=2e-3)
ok = np.isfinite(lse_ref)
np.testing.assert_allclose(lse[ok], lse_ref[ok], rtol=1e-4, atol=1e-4)
x = rng.integers(-64, 65, 3000).astype(np.float16)
assert megabatch.sum(x, backend="wgpu") == x.astype(np.float64).sum()
plan = megabatch.ReducePlan("sum", len=3000, dtype="float16", backend="wgpu")
assert plan.backend == "wgpu" and plan.out_dtype == "float32"
out = np.empty((), np.float32)
assert plan(x, out=out) is out and out == x.astype(np.float64).sum()
# bfloat16: WGSL has none, so a plan forced onto wgpu says so (numpy has no bfloat16: the
# dtype= of a plan names it).
try:
    megabatch.AttentionPlan(mask, q.shape, k.shape, dtype="bfloat16", backend="wgpu")
    raise AssertionError("bfloat16 on wgpu was accepted")
except (ValueError, RuntimeError) as e:
    assert "bf16" in str(e) or "bfloat16" in str(e), e
print("wgpu float16 ok on", info["wgpu"]["name"])
"""


def test_float16_on_wgpu():
    # lavapipe named through MEGABATCH_WGPU_ADAPTER in a fresh interpreter (as the other wgpu
    # checks); MEGABATCH_REQUIRE_WGPU=1 (CI) fails instead of skipping without an adapter.
    env = dict(os.environ, MEGABATCH_WGPU_ADAPTER=os.environ.get("MEGABATCH_WGPU_ADAPTER", "llvmpipe"))
    done = subprocess.run([sys.executable, "-c", WGPU_CHECK], env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    if done.returncode == 3 and os.environ.get("MEGABATCH_REQUIRE_WGPU") != "1":
        pytest.skip(out.strip())
    assert done.returncode == 0, out
