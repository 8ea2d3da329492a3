#!/usr/bin/env python3
"""The peers of benches/attention_cuda.rs on the same GPU in the same run: FlexAttention
(torch.compile'd) on the identical block masks, read from the int32 tensors the Rust bench
wrote (kv_num_blocks / kv_indices / full_kv_num_blocks / full_kv_indices, broadcast over batch
and heads), and torch's SDPA with the flash backend (dense; is_causal for the causal masks).
Device-resident inputs, timed with CUDA events after a warm-up (and compilation). FLOPs are
counted on kept blocks, 4 * BQ * BK * D per kept block per (batch, head), as the Rust side
counts them. Prints one JSON object per line.

Usage: python3 benches/attention_peers.py MASKS_DIR [--quick]
"""
import json
import sys
import time

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, flex_attention


def timed(fn, budget):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = 0
    t0 = time.perf_counter()
    start.record()
    while reps < 3 or time.perf_counter() - t0 < budget:
        fn()
        reps += 1
        if reps % 4 == 0:
            torch.cuda.synchronize()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def causal(b, h, q, kv):
    return q >= kv


def main():
    masks = sys.argv[1]
    budget = 0.1 if "--quick" in sys.argv else 0.3
    print(json.dumps({"lib": "torch", "version": torch.__version__,
                      "device": torch.cuda.get_device_name()}), flush=True)
    with open(f"{masks}/cases.jsonl") as f:
        cases = [json.loads(line) for line in f]
    for c in cases:
        nb = (c["S"] + c["block"] - 1) // c["block"]

        def tensor(name, shape):
            a = np.fromfile(f"{masks}/{c['case']}.{name}.i32", dtype="<i4").reshape(shape)
            return torch.from_numpy(a.copy()).cuda()

        block_mask = BlockMask.from_kv_blocks(
            tensor("kv_num_blocks", (1, 1, nb)),
            tensor("kv_indices", (1, 1, nb, nb)),
            tensor("full_kv_num_blocks", (1, 1, nb)),
            tensor("full_kv_indices", (1, 1, nb, nb)),
            BLOCK_SIZE=c["block"],
            mask_mod=causal if c["causal"] else None,
        )
        flops = 4.0 * c["block"] * c["block"] * c["D"] * c["kept_blocks"]
        for dtype_name, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16)]:
            g = torch.Generator(device="cuda").manual_seed(0)
            q, k, v = (torch.rand((c["B"], c["H"], c["S"], c["D"]), generator=g, device="cuda",
                                  dtype=dtype) * 2 - 1 for _ in range(3))
            base = {"case": c["case"], "dtype": dtype_name, "B": c["B"], "H": c["H"],
                    "S": c["S"], "D": c["D"], "density": c["density"],
                    "kept_blocks": c["kept_blocks"]}
            # A fresh compile per case: past dynamo's recompile limit FlexAttention would fall
            # back to its unfused eager path and measure that instead.
            torch._dynamo.reset()
            flex = torch.compile(flex_attention, dynamic=False)
            try:
                secs = timed(lambda: flex(q, k, v, block_mask=block_mask), budget)
                print(json.dumps({**base, "lib": "flex", "seconds": secs,
                                  "tflops": round(flops / secs / 1e12, 2)}), flush=True)
            except Exception as e:  # report and go on: one failing case must not end the run
                print(json.dumps({**base, "lib": "flex", "error": repr(e)[:300]}), flush=True)
            if c["density"] in (1.0, 0.5):
                try:
                    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                        secs = timed(lambda: torch.nn.functional.scaled_dot_product_attention(
                            q, k, v, is_causal=c["causal"]), budget)
                    print(json.dumps({**base, "lib": "sdpa_flash", "seconds": secs,
                                      "tflops": round(flops / secs / 1e12, 2)}), flush=True)
                except Exception as e:
                    print(json.dumps({**base, "lib": "sdpa_flash", "error": repr(e)[:300]}),
                          flush=True)
    # Ceiling: a large f16 matrix product.
    a = torch.rand((8192, 8192), device="cuda", dtype=torch.float16)
    secs = timed(lambda: a @ a, budget)
    print(json.dumps({"lib": "torch", "case": "matmul_f16_8192", "seconds": secs,
                      "tflops": round(2 * 8192 ** 3 / secs / 1e12, 1)}), flush=True)


if __name__ == "__main__":
    main()
