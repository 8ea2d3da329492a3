#!/usr/bin/env python3
"""Joins benches/eigh_cuda.rs and reduce_cuda.rs output (megabatch, in one file) and
benches/cuda_peers.py output (torch, cupy) into the markdown tables of
docs/benchmarks/cuda-h100.md.

Usage: python3 benches/cuda_table.py MEGABATCH.jsonl PEERS.jsonl
"""
import json
import sys

from jsonl import load


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.3g}"


def main():
    ours, peers = load(sys.argv[1]), load(sys.argv[2])
    eigh = {(r["dtype"], r["n"], r["batch"]): r for r in ours if r["bench"] == "eigh"}
    peer = {(r["lib"], r["dtype"], r["n"], r["batch"]): r for r in peers if r["bench"] == "eigh"}
    print("| dtype | n | batch | megabatch matrices/s | cupy (syevjBatched) | torch.linalg.eigh | megabatch / cupy |")
    print("|---|---|---|---|---|---|---|")
    for (dtype, n, batch), r in sorted(eigh.items(), key=lambda kv: (kv[0][0] != "f64", kv[0][1], kv[0][2])):
        ours_rate = r.get("matrices_per_s")
        cells = []
        for lib in ("cupy", "torch"):
            p = peer.get((lib, dtype, n, batch))
            if p is None:
                cells.append("not run")
            elif "matrices_per_s" in p:
                cells.append(fmt(p["matrices_per_s"]))
            else:
                cells.append((p.get("error") or p.get("skipped") or "-").split(",")[0][:60])
        cp = peer.get(("cupy", dtype, n, batch), {}).get("matrices_per_s")
        ratio = f"{ours_rate / cp:.2f}x" if ours_rate and cp else "-"
        print(f"| {dtype} | {n} | {batch} | {fmt(ours_rate) if ours_rate else r.get('skipped', '-')} | {cells[0]} | {cells[1]} | {ratio} |")
    print()
    red = {(r["op"], r["len"]): r for r in ours if r["bench"] == "reduce"}
    tred = {(r["op"], r["len"]): r for r in peers if r["bench"] == "reduce"}
    print("| operation (f32) | elements | megabatch GB/s | torch GB/s | megabatch / torch |")
    print("|---|---|---|---|---|")
    for (op, n), r in sorted(red.items()):
        # Row reductions report rows * 7 elements; the peer reports the array size it sliced.
        t = tred.get((op, n)) or next((v for (o, m), v in tred.items() if o == op and n <= m < n + 7), {})
        ratio = f"{t['seconds'] / r['seconds']:.2f}x" if t.get("seconds") else "-"
        print(f"| {op} | {n} | {r['gb_per_s']:.1f} | {fmt(t.get('gb_per_s'))} | {ratio} |")
    print()
    for r in ours + peers:
        if r["bench"] in ("seed", "scalar_latency", "ceiling"):
            print("-", json.dumps(r))


if __name__ == "__main__":
    main()
