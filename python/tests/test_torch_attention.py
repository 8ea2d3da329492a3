"""megabatch.attention on a BlockMask made by torch's own ``create_block_mask`` and CPU torch
tensors (skipped where torch, or its FlexAttention, is not installed: CI installs numpy and
pytest only; the file name keeps it among the skips CI allows)."""

import numpy as np
import pytest

import attention_ref as ref
import megabatch

torch = pytest.importorskip("torch", reason="torch is not installed")
fa = pytest.importorskip("torch.nn.attention.flex_attention", reason="this torch has no FlexAttention")


def mask_from_torch(mask):
    """torch's BlockMask as numpy attributes, its mask_mod called with ints (the reference's
    own per-pair calls)."""
    parts = [mask.kv_num_blocks, mask.kv_indices, mask.full_kv_num_blocks, mask.full_kv_indices]
    parts = [None if p is None else p.numpy() for p in parts]

    def mod(b, h, q, kv):
        return bool(mask.mask_mod(*(torch.tensor(x) for x in (b, h, q, kv))))

    return ref.BlockMask(*parts, tuple(mask.BLOCK_SIZE), mod)


def test_torch_create_block_mask(rng):
    s = 256
    ids = torch.from_numpy(np.sort(rng.integers(0, 4, s)))

    def mod(b, h, q_idx, kv_idx):
        return ((kv_idx <= q_idx) | (kv_idx < 37)) & (ids[q_idx] == ids[kv_idx])

    mask = fa.create_block_mask(mod, B=None, H=None, Q_LEN=s, KV_LEN=s, device="cpu")
    arrays = [rng.standard_normal((2, 2, s, 64)).astype(np.float32) for _ in range(3)]
    q, k, v = (torch.from_numpy(x) for x in arrays)
    o, lse = megabatch.attention(q, k, v, mask, return_lse=True)
    o_ref, lse_ref = ref.attention(*arrays, mask_from_torch(mask))
    np.testing.assert_allclose(o, o_ref, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(lse, lse_ref, rtol=1e-5, atol=1e-5)
