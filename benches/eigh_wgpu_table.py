#!/usr/bin/env python3
"""Joins benches/eigh_wgpu.rs output (size classes and, with --jacobi, the Jacobi shader) and
benches/eigh_cuda.rs output from the same GPU host into the wgpu table of
docs/benchmarks/eigh-wgpu-h200.md: per (dtype, n, batch) the wgpu rates, the CUDA backend's,
and CUDA / wgpu with vectors and values only (the target: at most 2 for f32, n <= 64).

Usage: python3 benches/eigh_wgpu_table.py WGPU.jsonl CUDA.jsonl
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl import load  # noqa: E402


def sci(x):
    return "-" if x is None else f"{x:.3e}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def main(wgpu_path, cuda_path):
    cuda = {}
    for r in load(cuda_path):
        if r.get("bench") == "eigh" and "matrices_per_s" in r:
            cuda[(r["dtype"], r["n"], r["batch"])] = r
    wgpu = {}
    for r in load(wgpu_path):
        if r.get("bench") == "eigh" and "wgpu_matrices_per_s" in r:
            wgpu[(r["dtype"], r["n"], r["batch"], r["algorithm"], r["vectors"])] = r
    keys = sorted({k[:3] for k in wgpu}, key=lambda k: (k[0] != "f32", k[1], k[2]))
    print("| dtype | n | batch | wgpu shader | wgpu matrices/s | wgpu Jacobi | CUDA | CUDA / wgpu "
          "| values only: CUDA / wgpu |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dtype, n, batch in keys:
        s = wgpu.get((dtype, n, batch, "SizeClasses", True))
        if s is None:
            continue
        sv = wgpu.get((dtype, n, batch, "SizeClasses", False))
        j = wgpu.get((dtype, n, batch, "Jacobi", True))
        c = cuda.get((dtype, n, batch))
        c_rate = c and c["matrices_per_s"]
        c_values = c and c.get("values_only_seconds") and batch / c["values_only_seconds"]
        shader = s["shader"].split("/")[0]
        print(f"| {dtype} | {n} | {batch} | `{shader}` | {sci(s['wgpu_matrices_per_s'])} "
              f"| {sci(j and j['wgpu_matrices_per_s'])} | {sci(c_rate)} "
              f"| {ratio(c_rate, s['wgpu_matrices_per_s'])} "
              f"| {ratio(c_values, sv and sv['wgpu_matrices_per_s'])} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
