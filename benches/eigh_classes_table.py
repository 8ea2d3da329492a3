#!/usr/bin/env python3
"""Joins benches/eigh_cuda.rs output (megabatch, with --jacobi/--cpu extras) and
benches/cuda_peers.py output (cupy = cuSOLVER syevjBatched, xsyev = cusolverDnXsyevBatched,
torch) into the table of docs/benchmarks/eigh-classes-h200.md: per (dtype, n, batch) the
megabatch rate, the best vendor and megabatch / best vendor with vectors and values only, and
where measured megabatch / CPU backend, size classes / Jacobi and (--groups) the chains classes
/ the group-computed QL of the warp classes, each forced (speed-up, > 1: chains faster), or the
split classes / the block classes (> 1: split faster), with vectors and values only; and where
the divide-and-conquer class was forced beside the block classes (--groups at n = 33..256
while A fits shared memory), the faster block layout / dc (> 1: dc faster) and dc / the best
vendor, with vectors (values only).

Usage: python3 benches/eigh_classes_table.py MEGABATCH.jsonl PEERS.jsonl
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl import load  # noqa: E402

VENDORS = ("cupy", "xsyev", "torch")


def sci(x):
    return "-" if x is None else f"{x:.3e}"


def ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def main():
    ours, peers = load(sys.argv[1]), load(sys.argv[2])
    peer = {(r["lib"], r["dtype"], r["n"], r["batch"]): r for r in peers if r.get("bench") == "eigh"}
    print("| dtype | n | batch | class | megabatch matrices/s | best vendor | megabatch / best | "
          "values only: megabatch / best | / CPU | / Jacobi | chains / group QL or split / block (values only) | "
          "block layouts / dc (values only) | dc / best vendor (values only) | "
          "plan device bytes / matrix bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [r for r in ours if r.get("bench") == "eigh" and "seconds" in r]
    rows.sort(key=lambda r: (r["dtype"] != "f64", r["n"], r["batch"]))
    for r in rows:
        key = (r["dtype"], r["n"], r["batch"])
        best, best_w = None, None
        for lib in VENDORS:
            p = peer.get((lib,) + key)
            if not p or "seconds" not in p:
                continue
            if best is None or p["seconds"] < best[1]:
                best = (lib, p["seconds"])
            if "values_only_seconds" in p and (best_w is None or p["values_only_seconds"] < best_w):
                best_w = p["values_only_seconds"]
        batch = r["batch"]
        rate = batch / r["seconds"]
        vendor = f"{sci(batch / best[1])} ({best[0]})" if best else "-"
        vs = best[1] / r["seconds"] if best else None
        vs_w = best_w / r["values_only_seconds"] if best_w else None
        cpu = r["cpu_seconds"] / r["seconds"] if "cpu_seconds" in r else None
        jac = r["jacobi_seconds"] / r["seconds"] if "jacobi_seconds" in r else None
        grp = "-"
        for slow, fast in (("group", "lane"), ("fused", "split")):
            if f"{fast}_seconds" in r:
                grp = (f"{ratio(r[slow + '_seconds'] / r[fast + '_seconds'])} "
                       f"({ratio(r[slow + '_values_only_seconds'] / r[fast + '_values_only_seconds'])})")
        dc, dc_vendor = "-", "-"
        if "dc_seconds" in r and "split_seconds" in r:
            block = min(r["fused_seconds"], r["split_seconds"])
            block_w = min(r["fused_values_only_seconds"], r["split_values_only_seconds"])
            dc = (f"{ratio(block / r['dc_seconds'])} "
                  f"({ratio(block_w / r['dc_values_only_seconds'])})")
            if best:
                dc_w = f"{ratio(best_w / r['dc_values_only_seconds'])}" if best_w else "-"
                dc_vendor = f"{ratio(best[1] / r['dc_seconds'])} ({dc_w})"
        mem = f"{r['device_bytes'] / max(r['matrix_bytes'], 1):.3f}" if "device_bytes" in r else "-"
        flag = "" if r.get("finite", True) else " (NaN output!)"
        print(f"| {r['dtype']} | {r['n']} | {batch} | {r.get('class', '-')} | {sci(rate)}{flag} | {vendor} | "
              f"{ratio(vs)} | {ratio(vs_w)} | {ratio(cpu)} | {ratio(jac)} | {grp} | {dc} | {dc_vendor} | {mem} |")
    for r in ours:
        if r.get("bench") in ("seed", "example"):
            print(r)


if __name__ == "__main__":
    main()
