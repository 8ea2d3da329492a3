#!/usr/bin/env python3
"""megabatch from Python on CUDA tensors against its peers: one JSON object per line.

Cases (GPU host: torch 2.11 and CuPy 14 on CUDA 13; megabatch's wheel installed):

- ``eigh``: values and vectors of 16,384 matrices at n = 12, 32, 64, 128, float32 and float64,
  on torch CUDA tensors: a megabatch ``EighPlan(device="cuda")`` call with ``out=``, the
  one-shot ``megabatch.eigh``, ``torch.linalg.eigh`` and ``cupy.linalg.eigh`` (same matrices,
  as CuPy arrays); seconds per call and the peers' time over megabatch's.
- ``overhead``: one 4 x 4 float64 matrix: seconds per call of the plan call, the one-shot call
  (which makes its outputs with ``torch.empty``) and ``torch.linalg.eigh`` from Python, and,
  with ``--rust-bench PATH`` (the ``eigh_cuda`` bench binary, run first at n = 4, 12, 32, 64,
  128 and batch 1 and 16,384: its lines are emitted as ``rust_eigh``), the Rust call of the
  same size; the Python overhead is the difference. The ``eigh`` records then carry the Rust
  call's time too (``python_plan_over_rust``).
- ``attention``: a custom ``mask_mod`` (prefix-LM, documents) through FlexAttention's
  ``create_block_mask`` on B4 H16 S4096 D64 and B1 H8 S16384 (documents at density about
  0.05), bfloat16: a megabatch ``AttentionPlan(device="cuda")`` call with ``out=`` (wall time
  per call from Python, and device time by CUDA events around the same loop) against
  ``torch.compile(flex_attention)`` on the same ``BlockMask``, and the maximum difference.

Timing: a warm-up call, then calls repeated until ``--min-time`` seconds (default 0.3) with
one synchronisation at the end; the figure is the mean per call. A peer whose warm-up takes
longer than 5 s is reported by that one call. ``--budget`` seconds (default 330) bound the
whole run (the eigh cases at most 55% of it): cases past it print ``"skipped": "budget"``.

Usage: ``python benches/python_peers.py [--quick] [--budget 330] [--rust-bench PATH]
[--only eigh,overhead,attention] > out.jsonl``.
"""

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np


def emit(record):
    print(json.dumps(record), flush=True)


def timed(call, sync, min_time):
    """Mean seconds per call: one warm-up, then repeats until `min_time` (one sync at the end).
    A warm-up over 5 s is the measurement."""
    sync()
    start = time.perf_counter()
    call()
    sync()
    first = time.perf_counter() - start
    if first > 5.0:
        return first, 1
    count, start = 0, time.perf_counter()
    while True:
        call()
        count += 1
        if count >= 3 and time.perf_counter() - start >= min_time:
            break
        if count % 16 == 0:
            sync()
    sync()
    return (time.perf_counter() - start) / count, count


def symmetric(torch, n, batch, dtype, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.rand(batch, n, n, device="cuda", dtype=dtype, generator=gen) * 2 - 1
    return (a + a.mT) / 2


def eigh_cases(torch, cupy, megabatch, args, deadline):
    sync = torch.cuda.synchronize
    for dtype_name in ("float32", "float64"):
        dtype = getattr(torch, dtype_name)
        for n in (12, 32, 64, 128):
            batch = 16384
            record = {"bench": "eigh", "dtype": dtype_name, "n": n, "batch": batch}
            # megabatch's own calls take well under a second: timed even past the deadline,
            # which only the peers respect.
            a = symmetric(torch, n, batch, dtype)
            plan = megabatch.EighPlan(n=n, batch=batch, dtype=dtype_name, device="cuda")
            w = torch.empty(batch, n, device="cuda", dtype=dtype)
            v = torch.empty(batch, n, n, device="cuda", dtype=dtype)
            t_plan, reps = timed(lambda: plan(a, out=(w, v)), sync, min(args.min_time, 0.2))
            t_once, _ = timed(lambda: megabatch.eigh(a), sync, min(args.min_time, 0.2))
            # Accuracy of what was timed: residual of the last plan call.
            resid = ((a @ v - v * w[:, None, :]).abs().amax() / a.abs().amax()).item()
            record.update(
                megabatch_plan_s=t_plan, megabatch_oneshot_s=t_once, reps=reps, residual=resid, finite=bool(torch.isfinite(w).all())
            )
            rust = args.rust.get((dtype_name, n, batch))
            if rust is not None:
                record.update(rust_s=rust, python_plan_over_rust=t_plan / rust)
            if time.monotonic() < deadline:
                t_torch, _ = timed(lambda: torch.linalg.eigh(a), sync, args.min_time)
                record.update(torch_s=t_torch, torch_over_megabatch=t_torch / t_plan)
            else:
                record["torch_s"] = "skipped: budget"
            if cupy is not None and time.monotonic() < deadline:
                c = cupy.from_dlpack(a)
                t_cupy, _ = timed(lambda: cupy.linalg.eigh(c), lambda: cupy.cuda.Device().synchronize(), args.min_time)
                record.update(cupy_s=t_cupy, cupy_over_megabatch=t_cupy / t_plan)
                del c
            elif cupy is None:
                record["cupy_s"] = "skipped: no cupy"
            else:
                record["cupy_s"] = "skipped: budget"
            emit(record)
            del a, w, v, plan
            torch.cuda.empty_cache()


def rust_cases(args):
    """The Rust bench's device-buffer eigh calls (`eigh_cuda --quick --only eigh`) at the sizes
    the Python cases time: seconds per call by (dtype, n, batch); each line is also emitted."""
    if not args.rust_bench:
        return {}
    try:
        out = subprocess.run(
            [args.rust_bench, "--quick", "--only", "eigh", "--ns", "4,12,32,64,128", "--batches", "1,16384"],
            capture_output=True,
            text=True,
            timeout=180,
        ).stdout
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        emit({"bench": "rust", "failed": str(e)})
        return {}
    found = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        emit({**r, "bench": "rust_" + r.get("bench", "?")})
        if "seconds" in r:
            dtype = {"f32": "float32", "f64": "float64"}.get(r["dtype"], r["dtype"])
            found[(dtype, r["n"], r["batch"])] = r["seconds"]
    return found


def overhead_cases(torch, megabatch, args):
    sync = torch.cuda.synchronize
    n = 4
    a = symmetric(torch, n, 1, torch.float64)
    plan = megabatch.EighPlan(n=n, batch=1, dtype="float64", device="cuda")
    w = torch.empty(1, n, device="cuda", dtype=torch.float64)
    v = torch.empty(1, n, n, device="cuda", dtype=torch.float64)
    min_time = max(args.min_time, 0.5)
    t_plan, reps = timed(lambda: plan(a, out=(w, v)), sync, min_time)
    t_once, _ = timed(lambda: megabatch.eigh(a), sync, min_time)
    t_torch, _ = timed(lambda: torch.linalg.eigh(a), sync, min_time)
    t_empty, _ = timed(lambda: (torch.empty(1, n, device="cuda"), torch.empty(1, n, n, device="cuda")), sync, min_time)
    record = {
        "bench": "overhead",
        "n": n,
        "batch": 1,
        "dtype": "float64",
        "python_plan_s": t_plan,
        "python_oneshot_s": t_once,
        "torch_linalg_eigh_s": t_torch,
        "two_torch_empty_s": t_empty,
        "reps": reps,
    }
    rust = args.rust.get(("float64", n, 1))
    if rust is not None:
        record["rust_s"] = rust
        record["plan_overhead_over_rust_s"] = t_plan - rust
        record["oneshot_overhead_over_rust_s"] = t_once - rust
    emit(record)


def attention_cases(torch, megabatch, args, deadline):
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except ImportError as e:
        emit({"bench": "attention", "skipped": f"no FlexAttention: {e}"})
        return
    flex = torch.compile(flex_attention, dynamic=False)
    sync = torch.cuda.synchronize
    cases = [(4, 16, 4096, "prefix_lm"), (4, 16, 4096, "documents"), (1, 8, 16384, "documents")]
    for b, h, s, kind in cases:
        d = 64
        record = {"bench": "attention", "mask": kind, "B": b, "H": h, "S": s, "D": d, "dtype": "bfloat16"}
        if time.monotonic() > deadline:
            emit({**record, "skipped": "budget"})
            continue
        gen = torch.Generator(device="cuda").manual_seed(s + b)
        if kind == "prefix_lm":
            prefix = s // 4

            def mask_mod(b_, h_, q_idx, kv_idx):
                return (kv_idx <= q_idx) | (kv_idx < prefix)
        else:
            # Documents of equal length: density about 1 / docs (0.05 at S = 16384: 20 docs).
            docs = 20 if s >= 16384 else 8
            doc = torch.arange(s, device="cuda") * docs // s

            def mask_mod(b_, h_, q_idx, kv_idx):
                return doc[q_idx] == doc[kv_idx]

        block = create_block_mask(mask_mod, B=None, H=None, Q_LEN=s, KV_LEN=s, device="cuda")
        q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
        start = time.perf_counter()
        plan = megabatch.AttentionPlan(block, q.shape, k.shape, dtype=torch.bfloat16, device="cuda")
        record["plan_s"] = time.perf_counter() - start
        out = torch.empty_like(q)
        t_mb, reps = timed(lambda: plan(q, k, v, out=out), sync, args.min_time)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(reps):
            plan(q, k, v, out=out)
        end.record()
        sync()
        device_per_call = begin.elapsed_time(end) / 1e3 / reps
        kept = block.kv_num_blocks.sum().item() + (block.full_kv_num_blocks.sum().item() if block.full_kv_num_blocks is not None else 0)
        total = block.kv_num_blocks.shape[-1] * math.ceil(s / block.BLOCK_SIZE[1]) * block.kv_num_blocks.shape[0] * block.kv_num_blocks.shape[1]
        record.update(
            megabatch_s=t_mb,
            megabatch_device_s=device_per_call,
            python_wall_over_device=t_mb / device_per_call,
            block_density=kept / total,
            reps=reps,
        )
        if time.monotonic() < deadline:
            start = time.perf_counter()
            o_ref = flex(q, k, v, block_mask=block)
            sync()
            record["flex_compile_s"] = time.perf_counter() - start
            t_flex, _ = timed(lambda: flex(q, k, v, block_mask=block), sync, args.min_time)
            record.update(flex_s=t_flex, flex_over_megabatch=t_flex / t_mb)
            record["max_abs_diff_vs_flex"] = (out.float() - o_ref.float()).abs().max().item()
        else:
            record["flex_s"] = "skipped: budget"
        emit(record)
        del q, k, v, out, plan
        torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=330.0)
    parser.add_argument("--min-time", type=float, default=None)
    parser.add_argument("--rust-bench", default=None)
    parser.add_argument("--only", default="eigh,overhead,attention")
    args = parser.parse_args()
    if args.min_time is None:
        args.min_time = 0.1 if args.quick else 0.3
    deadline = time.monotonic() + args.budget
    import torch

    import megabatch

    try:
        import cupy
    except ImportError:
        cupy = None
    info = megabatch.info()
    emit(
        {
            "bench": "machine",
            "gpu": torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "cupy": getattr(cupy, "__version__", None),
            "megabatch": megabatch.__version__,
            "backends": info["backends"],
            "python": sys.version.split()[0],
        }
    )
    only = set(args.only.split(","))
    args.rust = rust_cases(args) if only & {"overhead", "eigh"} else {}
    if "overhead" in only:
        overhead_cases(torch, megabatch, args)
    if "eigh" in only:
        # The peers' eigh above n = 32 may loop over matrices for tens of seconds: eigh gets
        # at most 55% of what is left, so the attention cases keep theirs.
        share = 0.55 if "attention" in only else 1.0
        eigh_deadline = time.monotonic() + share * max(0.0, deadline - time.monotonic())
        eigh_cases(torch, cupy, megabatch, args, eigh_deadline)
    if "attention" in only:
        attention_cases(torch, megabatch, args, deadline)


if __name__ == "__main__":
    main()
