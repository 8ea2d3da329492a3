#!/usr/bin/env python3
"""Markdown table of a `reduce_cpu` criterion run: GB/s per implementation, and megabatch's
fraction of the copy bandwidth. Usage: reduce_table.py [target/criterion]."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = {}
for est in root.glob("reduce_cpu_sum_*/*/*/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    n = int(bench["value_str"])
    seconds = json.loads(est.read_text())["mean"]["point_estimate"] * 1e-9
    gbps = n * 8 / seconds / 1e9
    if bench["function_id"] == "copy_1t":
        gbps *= 2  # read + write
    rows.setdefault(n, {})[bench["function_id"]] = gbps

impls = ["megabatch_1t", "iter_1t", "megabatch_all", "rayon_all"]
copy = max((r.get("copy_1t", 0) for r in rows.values()), default=0)
print("| elements | " + " | ".join(f"{i} (GB/s)" for i in impls) + " | megabatch_1t / iter | megabatch_all / rayon |")
print("|---:|" + "---:|" * (len(impls) + 2))
for n in sorted(rows):
    r = rows[n]
    cells = " | ".join(f"{r[i]:.2f}" if i in r else "-" for i in impls)
    print(f"| {n:,} | {cells} | {r['megabatch_1t'] / r['iter_1t']:.2f}x | {r['megabatch_all'] / r['rayon_all']:.2f}x |")
if copy:
    print(f"\nMeasured copy bandwidth (1 thread, read + write, {max(rows):,} f64): {copy:.2f} GB/s")
