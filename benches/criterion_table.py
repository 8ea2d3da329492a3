#!/usr/bin/env python3
"""Markdown table of a criterion run: matrices/s per implementation and megabatch's ratio to
the faster peer. Usage: criterion_table.py GROUP_PREFIX [target/criterion]."""
import json
import pathlib
import re
import sys

prefix = sys.argv[1]
root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "target/criterion")
rows = {}
for est in root.glob(f"{prefix}_*/*/*/new/estimates.json"):
    group = json.loads((est.parent / "benchmark.json").read_text())
    gid, impl, batch = group["group_id"], group["function_id"], int(group["value_str"])
    mean_ns = json.loads(est.read_text())["mean"]["point_estimate"]
    m = re.match(rf"{prefix}/(\w+)/n=(\d+)", gid)
    dtype, n = m.group(1), int(m.group(2))
    rows.setdefault((dtype, n), {"batch": batch})[impl] = batch / (mean_ns * 1e-9)

impls = ["megabatch", "nalgebra", "faer"]
print("| dtype | n | batch | " + " | ".join(f"{i} (matrices/s)" for i in impls) + " | ratio to faster peer |")
print("|---|---:|---:|" + "---:|" * len(impls) + "---:|")
for (dtype, n) in sorted(rows, key=lambda k: (k[0] != "f64", k[1])):
    r = rows[(dtype, n)]
    peer = max(r.get("nalgebra", 0), r.get("faer", 0))
    cells = " | ".join(f"{r[i]:,.0f}" if i in r else "-" for i in impls)
    ratio = r["megabatch"] / peer if peer else float("nan")
    print(f"| {dtype} | {n} | {r['batch']} | {cells} | {ratio:.2f}x |")
