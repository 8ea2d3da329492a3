"""megabatch.attention against a float64 numpy reference (attention_ref: a dense softmax whose
element mask calls mask_mod per pair of every kept block): random mask_mods (prefix-LM,
document ids, sliding window, random per block, per head), GQA, empty rows, LSE, every bad
input, and wgpu on lavapipe (torch's own BlockMask: test_torch_attention.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import attention_ref as ref
import megabatch

TESTS = os.path.dirname(os.path.abspath(__file__))


def qkv(rng, b, hq, hkv, sq, skv, d):
    q = rng.standard_normal((b, hq, sq, d)).astype(np.float32)
    k = rng.standard_normal((b, hkv, skv, d)).astype(np.float32)
    v = rng.standard_normal((b, hkv, skv, d)).astype(np.float32)
    return q, k, v


def check(q, k, v, mask, scale=None, **kw):
    """megabatch.attention (with LSE) against the reference; returns the reference O."""
    o, lse = megabatch.attention(q, k, v, mask, scale=scale, return_lse=True, **kw)
    o_ref, lse_ref = ref.attention(q, k, v, mask, scale)
    assert o.dtype == np.float32 and o.shape == q.shape
    assert lse.dtype == np.float32 and lse.shape == q.shape[:3]
    np.testing.assert_allclose(o, o_ref, rtol=1e-4, atol=2e-5)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse_ref))
    finite = np.isfinite(lse_ref)
    np.testing.assert_allclose(lse[finite], lse_ref[finite], rtol=1e-5, atol=1e-5)
    return o_ref


def prefix_lm(prefix):
    return lambda b, h, q, kv: (kv <= q) | (kv < prefix)


def documents(ids):
    return lambda b, h, q, kv: ids[b, q] == ids[b, kv]


def sliding_window(w):
    return lambda b, h, q, kv: (q >= kv) & (q - kv < w)


def scrambled(seed):
    # Pseudo-random per pair, per batch and head: exercises every bit position.
    return lambda b, h, q, kv: (q * 7919 + kv * 104729 + b * 31 + h * 17 + seed) % 7 < 3


SEQS = [(128, 128), (100, 150), (77, 45)]
BLOCKS = [(32, 32), (16, 64), (64, 16), (128, 128), (32, 128)]


@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("block", BLOCKS)
def test_prefix_lm(seq, block, rng):
    q, k, v = qkv(rng, 2, 2, 2, *seq, 32)
    mask = ref.create_block_mask(prefix_lm(19), (1, 1), seq, block)
    check(q, k, v, mask)


@pytest.mark.parametrize("block", BLOCKS)
def test_documents_per_batch(block, rng):
    s = 160
    ids = np.sort(rng.integers(0, 5, (2, s)), axis=1)
    mod = documents(ids)
    q, k, v = qkv(rng, 2, 3, 3, s, s, 64)
    mask = ref.create_block_mask(mod, (2, 1), (s, s), block)
    check(q, k, v, mask, scale=0.3)


@pytest.mark.parametrize("seq", SEQS)
def test_sliding_window(seq, rng):
    q, k, v = qkv(rng, 1, 2, 2, *seq, 32)
    mask = ref.create_block_mask(sliding_window(23), (1, 1), seq, (32, 32))
    check(q, k, v, mask)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("seq", SEQS)
def test_random_blocks_and_bits_in_random_order(block, seq, rng):
    # Random block states (absent, partial, full) per (b, h) with a scrambled mask_mod: full
    # blocks keep every pair whatever mask_mod says (FlexAttention skips it there), and the
    # lists are shuffled, so tiles follow kv_indices order, not key order.
    qb, kb = -(-seq[0] // block[0]), -(-seq[1] // block[1])
    states = rng.integers(0, 3, (2, 2, qb, kb)).astype(np.int8)
    mask = ref.from_states(states, block, scrambled(int(rng.integers(100))), rng=rng)
    q, k, v = qkv(rng, 2, 2, 2, *seq, 32)
    check(q, k, v, mask)


def test_broadcast_mask_sees_each_heads_own_index(rng):
    # One (1, 1) row set of blocks, a mask_mod that depends on b and h: flex_attention calls
    # it with each row's b and h, so the bits differ per (b, h).
    s = 96
    mod = lambda b, h, q, kv: (q >= kv) & (q - kv <= 4 + 9 * h + 5 * b)  # noqa: E731
    states = np.tril(np.ones((3, 3), dtype=np.int8))[None, None]
    mask = ref.from_states(states, 32, mod)
    q, k, v = qkv(rng, 2, 3, 3, s, s, 32)
    check(q, k, v, mask)


def test_gqa(rng):
    q, k, v = qkv(rng, 2, 8, 2, 96, 128, 64)
    mask = ref.create_block_mask(prefix_lm(40), (1, 8), (96, 128), (32, 64))
    check(q, k, v, mask, enable_gqa=True)
    with pytest.raises(ValueError, match="enable_gqa"):
        megabatch.attention(q, k, v, mask)


def test_no_mask_mod_keeps_every_pair_of_partial_blocks(rng):
    # FlexAttention's default mask_mod is noop_mask: a listed block keeps all its pairs.
    seq = (100, 70)
    states = rng.integers(0, 3, (1, 1, 4, 3)).astype(np.int8)
    mask = ref.from_states(states, 32, None)
    q, k, v = qkv(rng, 1, 2, 2, *seq, 32)
    check(q, k, v, mask)
    full = ref.from_states(np.where(states > 0, 2, 0).astype(np.int8), 32, None)
    o, o_full = megabatch.attention(q, k, v, mask), megabatch.attention(q, k, v, full)
    np.testing.assert_allclose(o, o_full, rtol=1e-6, atol=1e-6)


def test_empty_rows_are_zero_with_lse_minus_inf(rng):
    # Query block 1 lists nothing; block 2 lists a partial block whose mask_mod keeps
    # nothing for odd queries: both give O = 0, LSE = -inf.
    states = np.array([[[[2, 1], [0, 0], [1, 0]]]], dtype=np.int8)
    mod = lambda b, h, q, kv: (q % 2 == 0) & (q < 64) | (q < 64) & (kv > 3) | (q >= 64) & (q % 2 == 0)  # noqa: E731
    mask = ref.from_states(states, 32, mod)
    q, k, v = qkv(rng, 1, 1, 1, 96, 64, 32)
    check(q, k, v, mask)
    o, lse = megabatch.attention(q, k, v, mask, return_lse=True)
    assert np.all(o[0, 0, 32:64] == 0) and np.all(np.isneginf(lse[0, 0, 32:64]))
    assert np.all(o[0, 0, 65::2] == 0) and np.all(np.isneginf(lse[0, 0, 65::2]))
    assert np.all(np.isfinite(lse[0, 0, 64::2]))


def test_mask_mod_that_does_not_broadcast_is_called_per_element(rng):
    # `if` on an array raises: the per-element fallback must give the same mask.
    def mod(b, h, q, kv):
        if q % 3 == 0:
            return kv <= q
        return kv % 2 == 0

    vectorised = lambda b, h, q, kv: np.where(q % 3 == 0, kv <= q, kv % 2 == 0)  # noqa: E731
    mask = ref.create_block_mask(vectorised, (1, 1), (64, 64), (32, 32))
    q, k, v = qkv(rng, 1, 1, 1, 64, 64, 32)
    mask.mask_mod = mod
    o = megabatch.attention(q, k, v, mask)
    mask.mask_mod = vectorised
    np.testing.assert_array_equal(o, megabatch.attention(q, k, v, mask))
    check(q, k, v, mask)


def test_lse_only_when_asked_and_scale(rng):
    q, k, v = qkv(rng, 1, 1, 1, 64, 64, 32)
    mask = ref.create_block_mask(prefix_lm(10), (1, 1), (64, 64), 32)
    o = megabatch.attention(q, k, v, mask)
    assert isinstance(o, np.ndarray)
    np.testing.assert_array_equal(o, megabatch.attention(q, k, v, mask, scale=1 / np.sqrt(32)))
    check(q, k, v, mask, scale=2.5)


def test_bad_inputs(rng):
    q, k, v = qkv(rng, 1, 2, 2, 64, 64, 32)
    mask = ref.create_block_mask(prefix_lm(10), (1, 1), (64, 64), (32, 32))
    attn = megabatch.attention
    with pytest.raises(ValueError, match="4-D"):
        attn(q[0], k, v, mask)
    with pytest.raises(ValueError, match="k and v must be equal"):
        attn(q, k, v[:, :, :32], mask)
    with pytest.raises(ValueError, match="B and D"):
        attn(q, k[..., :16].copy(), v[..., :16].copy(), mask)
    with pytest.raises(ValueError, match="multiple of Hkv"):
        attn(q, k[:, :1].repeat(3, axis=1), v[:, :1].repeat(3, axis=1), mask, enable_gqa=True)
    with pytest.raises(TypeError, match="float32"):
        attn(q.astype(np.float64), k, v, mask)
    with pytest.raises(TypeError, match="int32"):
        attn(q, k.astype(np.int32), v, mask)
    wide = rng.standard_normal((1, 2, 64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        attn(q, k, wide[..., ::2], mask)
    with pytest.raises(ValueError, match="C-contiguous"):
        attn(np.swapaxes(np.swapaxes(q, 1, 2).copy(), 1, 2), k, v, mask)
    odd = qkv(rng, 1, 1, 1, 64, 64, 48)
    with pytest.raises(ValueError, match="head_dim"):
        attn(*odd, mask)
    with pytest.raises(ValueError, match="backend"):
        attn(q, k, v, mask, backend="tpu")


def test_inconsistent_block_masks(rng):
    q, k, v = qkv(rng, 1, 2, 2, 64, 64, 32)

    def mask(**changes):
        m = ref.create_block_mask(prefix_lm(10), (1, 1), (64, 64), (32, 32))
        for name, value in changes.items():
            setattr(m, name, value)
        return m

    attn = megabatch.attention
    with pytest.raises(TypeError, match="kv_num_blocks"):
        attn(q, k, v, object())
    with pytest.raises(ValueError, match="other lengths"):
        attn(q, k, v, mask(kv_indices=np.zeros((1, 1, 2, 3), np.int32)))
    with pytest.raises(ValueError, match="kv_num_blocks has shape"):
        attn(q, k, v, mask(kv_num_blocks=np.zeros((1, 3, 2), np.int32)))
    with pytest.raises(ValueError, match="other lengths"):
        attn(q[:, :, :32].copy(), k, v, mask())
    with pytest.raises(ValueError, match="count outside"):
        attn(q, k, v, mask(kv_num_blocks=np.full((1, 1, 2), 3, np.int32)))
    with pytest.raises(ValueError, match="outside 0..2"):
        attn(q, k, v, mask(kv_indices=np.full((1, 1, 2, 2), 5, np.int32)))
    with pytest.raises(ValueError, match="listed twice"):
        m = mask()
        m.full_kv_indices = m.kv_indices.copy()
        m.full_kv_num_blocks = m.kv_num_blocks.copy()
        attn(q, k, v, m)
    with pytest.raises(ValueError, match="without the other"):
        attn(q, k, v, mask(full_kv_indices=None))
    with pytest.raises(TypeError, match="integer"):
        attn(q, k, v, mask(kv_indices=np.zeros((1, 1, 2, 2), np.float32)))
    with pytest.raises(TypeError, match="BLOCK_SIZE"):
        attn(q, k, v, mask(BLOCK_SIZE="32"))
    def broken(b, h, q, kv):
        raise KeyError("no such token")

    with pytest.raises(TypeError, match="KeyError"):
        attn(q, k, v, mask(mask_mod=broken))


def test_block_size_48_is_refused(rng):
    q, k, v = qkv(rng, 1, 1, 1, 96, 96, 32)
    m = ref.create_block_mask(prefix_lm(10), (1, 1), (96, 96), 48)
    with pytest.raises(ValueError, match="block sizes must be 16, 32, 64 or 128"):
        megabatch.attention(q, k, v, m)


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
rng = np.random.default_rng(7)
for seq, block, gqa in [((128, 128), (32, 32), 1), ((100, 150), (16, 64), 2), ((77, 45), (64, 16), 1)]:
    qb, kb = -(-seq[0] // block[0]), -(-seq[1] // block[1])
    states = rng.integers(0, 3, (2, 2, qb, kb)).astype(np.int8)
    states[0, 0, 0] = 0  # an empty query block
    mod = lambda b, h, q, kv: (q * 7919 + kv * 104729 + b * 31 + h * 17) % 7 < 3
    mask = ref.from_states(states, block, mod, rng=rng)
    q = rng.standard_normal((2, 2 * gqa, seq[0], 64)).astype(np.float32)
    k, v = (rng.standard_normal((2, 2, seq[1], 64)).astype(np.float32) for _ in range(2))
    if gqa > 1:
        mask = ref.from_states(states[:, :1], block, mod, rng=rng)
    o, lse = megabatch.attention(q, k, v, mask, return_lse=True, enable_gqa=True, backend="wgpu")
    o_ref, lse_ref = ref.attention(q, k, v, mask)
    np.testing.assert_allclose(o, o_ref, rtol=1e-4, atol=3e-5)
    assert np.array_equal(np.isneginf(lse), np.isneginf(lse_ref))
    ok = np.isfinite(lse_ref)
    np.testing.assert_allclose(lse[ok], lse_ref[ok], rtol=1e-5, atol=1e-5)
print("wgpu attention ok on", info["wgpu"]["name"])
"""


def test_wgpu_backend():
    # As test_reduce's wgpu check: lavapipe named through MEGABATCH_WGPU_ADAPTER in a fresh
    # interpreter; MEGABATCH_REQUIRE_WGPU=1 (CI) fails instead of skipping without it.
    env = dict(os.environ, MEGABATCH_WGPU_ADAPTER=os.environ.get("MEGABATCH_WGPU_ADAPTER", "llvmpipe"))
    done = subprocess.run(
        [sys.executable, "-c", WGPU_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    if done.returncode == 3 and os.environ.get("MEGABATCH_REQUIRE_WGPU") != "1":
        pytest.skip(out.strip())
    assert done.returncode == 0, out
