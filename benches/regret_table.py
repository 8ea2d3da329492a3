#!/usr/bin/env python3
"""Markdown tables from `megabatch bench regret --format json` output.

regret        = Auto's own time / the fastest backend's time (what a user gets);
choice_regret = the time of the backend Auto chose, as measured when forced / the fastest
                backend's time (the decision alone, without timing noise between two runs of
                the same backend).

usage: python3 benches/regret_table.py regret.jsonl
"""
import json
import statistics
import sys


def fmt(x):
    return "-" if x is None else f"{x:.3g}"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cases = [r for r in rows if "regret" in r]
    backends = [k[:-2] for k in ("cpu_s", "cuda_s", "wgpu_s") if any(k in r for r in cases)]
    head = ["op", "dtype", "data", "size"] + [f"{b} s" for b in backends]
    head += ["Auto s", "Auto ran on", "fastest", "regret", "choice regret"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    by_op = {}
    for r in cases:
        times = {b: r.get(f"{b}_s") for b in backends}
        best = min(t for t in times.values() if t is not None)
        choice = times[r["auto_ran_on"]] / best
        by_op.setdefault(r["op"], []).append((r["regret"], choice))
        cells = [r["op"], r["dtype"], r["data"], r["size"]]
        cells += [fmt(times[b]) for b in backends]
        cells += [fmt(r["auto_s"]), r["auto_ran_on"], r["best"], f"{r['regret']:.2f}", f"{choice:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| op | cases | median regret | worst regret | median choice regret | worst choice regret |")
    print("|---|---|---|---|---|---|")
    by_op["all"] = [x for v in list(by_op.values()) for x in v]
    for op, v in by_op.items():
        reg = [a for a, _ in v]
        cho = [b for _, b in v]
        print(f"| {op} | {len(v)} | {statistics.median(reg):.3f} | {max(reg):.2f} | "
              f"{statistics.median(cho):.3f} | {max(cho):.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
