#!/usr/bin/env python3
"""Joins benches/attention_cuda.rs and benches/attention_peers.py output (JSON lines) into the
markdown tables of docs/benchmarks/attention-h100.md: TFLOP/s per case and dtype with the
ratios to FlexAttention and SDPA, the schedule comparison, the tile-shape sweep and queries/s.

Usage: python3 benches/attention_table.py MEGABATCH.jsonl PEERS.jsonl
"""
import sys

from jsonl import load


def main():
    mine, peers = load(sys.argv[1]), load(sys.argv[2])
    peer = {(p["case"], p["dtype"], p["lib"]): p for p in peers if "tflops" in p and "dtype" in p}
    rows = [m for m in mine if m.get("schedule") == "LongestFirst"]
    print("| case | dtype | kept blocks | megabatch | FlexAttention | SDPA flash | vs Flex | vs SDPA |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for m in rows:
        flex = peer.get((m["case"], m["dtype"], "flex"))
        sdpa = peer.get((m["case"], m["dtype"], "sdpa_flash"))
        cell = lambda p: f"{p['tflops']:.1f}" if p else "-"
        ratio = lambda p: f"{m['tflops'] / p['tflops']:.2f}x" if p else "-"
        print(f"| B{m['B']} H{m['H']} S{m['S']} D{m['D']} density {m['density']} | {m['dtype']} | "
              f"{m['kept_blocks']} | {m['tflops']:.1f} | {cell(flex)} | {cell(sdpa)} | "
              f"{ratio(flex)} | {ratio(sdpa)} |")
    print()
    print("| case (f16) | longest first | natural order | gain |")
    print("|---|---:|---:|---:|")
    natural = {m["case"]: m for m in mine if m.get("schedule") == "Natural"}
    for m in rows:
        n = natural.get(m["case"])
        if n and m["dtype"] == "f16":
            print(f"| {m['case']} | {m['tflops']:.1f} | {n['tflops']:.1f} | "
                  f"{m['tflops'] / n['tflops'] - 1:+.0%} |")
    print()
    print("| D | density | warps x row tiles | key chunk | TFLOP/s |")
    print("|---:|---:|---|---:|---:|")
    for m in mine:
        if m.get("case") == "tune":
            print(f"| {m['D']} | {m['density']} | {m['warps']} x {m['m_tiles']} | "
                  f"{m['kv_tile']} | {m['tflops']:.1f} |")
    print()
    for m in mine:
        if m.get("case") == "qps":
            print(f"Queries/s: {m['qps']:.0f} ({m['queries']} queries in {m['seconds']} s from "
                  f"{m['threads']} threads, {m['gflop_per_query']} GFLOP each, "
                  f"{m['tflops']} TFLOP/s sustained; per thread {m['per_thread']})")
    for p in peers:
        if p.get("case") == "matmul_f16_8192":
            print(f"\nCeiling: torch f16 8192^3 matmul {p['tflops']} TFLOP/s.")


if __name__ == "__main__":
    main()
