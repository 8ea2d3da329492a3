#!/usr/bin/env python3
"""The peers of megabatch's CUDA bench, on the same GPU in the same run: torch.linalg.eigh,
cupy.linalg.eigh (cuSOLVER syevjBatched for batched input) and torch reductions, all on
device-resident inputs timed with CUDA events; plus the device's copy bandwidth and fp64
matmul rate as ceilings. Prints JSON lines like benches/cuda.rs.

Each (library, dtype) family runs in its own subprocess with a timeout, because a cuSOLVER
internal error can leave the CUDA context unusable; a failing case is reported with its error.

Usage: python3 benches/cuda_peers.py [--quick] [--only eigh|reduce|ceilings]
"""
import json
import subprocess
import sys
import time

NS = [4, 8, 12, 16, 24, 32, 48, 64, 128, 256]
NS_QUICK = [4, 12, 32, 64, 128]
BATCHES = [1, 1024, 16384, 131072]
MAX_BYTES = 12 << 30


def timed(fn, sync_budget=0.2):
    import torch
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    if time.perf_counter() - t0 > sync_budget:
        # Long cases: one timed call after the warm-up.
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps, elapsed = 0, 0.0
    start.record()
    t0 = time.perf_counter()
    while reps < 3 or time.perf_counter() - t0 < sync_budget:
        fn()
        reps += 1
        if reps % 8 == 0:
            torch.cuda.synchronize()
    end.record()
    torch.cuda.synchronize()
    elapsed = start.elapsed_time(end) / 1e3
    return elapsed / reps


def matrices(torch, n, batch, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.rand((batch, n, n), generator=g, device="cuda", dtype=dtype) * 2 - 1
    return (a + a.transpose(-1, -2)) / 2


def eigh_family(lib, dtype_name, quick):
    import torch
    dtype = {"f64": torch.float64, "f32": torch.float32}[dtype_name]
    for n in NS_QUICK if quick else NS:
        for batch in BATCHES:
            row = {"bench": "eigh", "lib": lib, "dtype": dtype_name, "n": n, "batch": batch}
            if n * n * batch * (8 if dtype_name == "f64" else 4) > MAX_BYTES:
                row["skipped"] = "input over 12 GiB"
                print(json.dumps(row), flush=True)
                continue
            try:
                a = matrices(torch, n, batch, dtype)
                if lib == "torch":
                    fn = lambda: torch.linalg.eigh(a)
                else:
                    import cupy
                    ac = cupy.asarray(a)
                    fn = lambda: cupy.linalg.eigh(ac)
                t = timed(fn, 0.05 if quick else 0.2)
                row.update(seconds=t, matrices_per_s=batch / t)
            except Exception as e:  # cuSOLVER errors, out of memory
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            print(json.dumps(row), flush=True)
            torch.cuda.empty_cache()


def reduce_family(quick):
    import torch
    for n in [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 67_108_864]:
        x = torch.arange(n, device="cuda", dtype=torch.float32).remainder(1000) * 1e-3
        y = x.clone()
        cases = {
            "sum": (lambda: x.sum(), 4 * n),
            "max_abs_diff": (lambda: (x - y).abs().max(), 8 * n),
        }
        rows = n // 7
        if rows:
            xs = x[: rows * 7].view(rows, 7)
            w = x[:rows].clone()
            cases["weighted_mean_rows7"] = (lambda: (w[:, None] * xs).sum(0) / w.sum(), rows * 32)
        lengths, k, total = [], 0, 0
        while total < n:
            l = min(37 + (k * 61) % 127, n - total)
            lengths.append(l)
            total += l
            k += 1
        lengths = torch.tensor(lengths, device="cuda")
        cases["segment_sum"] = (
            lambda: torch.segment_reduce(x, "sum", lengths=lengths), 4 * n)
        for name, (fn, bytes_) in cases.items():
            t = timed(fn, 0.05 if quick else 0.2)
            print(json.dumps({"bench": "reduce", "lib": "torch", "op": name, "dtype": "f32",
                              "len": n, "seconds": t, "gb_per_s": bytes_ / t / 1e9}), flush=True)
    # Latency of a 1,000-element sum read back to the host.
    x = torch.arange(1000, device="cuda", dtype=torch.float32)
    for _ in range(100):
        x.sum().item()
    times = []
    for _ in range(2000):
        t0 = time.perf_counter()
        x.sum().item()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"bench": "scalar_latency", "lib": "torch", "len": 1000,
                      "median_seconds": times[len(times) // 2], "min_seconds": times[0]}), flush=True)


def ceilings():
    import torch
    n = 1 << 28
    src = torch.empty(n, device="cuda", dtype=torch.float32)
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src))
    print(json.dumps({"bench": "ceiling", "what": "device_copy_gb_per_s", "value": 2 * 4 * n / t / 1e9}))
    for dtype, name in [(torch.float64, "fp64_matmul_tflops"), (torch.float32, "fp32_matmul_tflops")]:
        m = 8192
        a = torch.rand((m, m), device="cuda", dtype=dtype)
        b = torch.rand((m, m), device="cuda", dtype=dtype)
        torch.backends.cuda.matmul.allow_tf32 = False
        t = timed(lambda: a @ b)
        print(json.dumps({"bench": "ceiling", "what": name, "value": 2 * m ** 3 / t / 1e12}))
    print(json.dumps({"bench": "ceiling", "what": "versions", "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name()}), flush=True)


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    if "--family" in args:
        family = args[args.index("--family") + 1]
        if family == "reduce":
            reduce_family(quick)
        elif family == "ceilings":
            ceilings()
        else:
            lib, dtype = family.split(":")
            eigh_family(lib, dtype, quick)
        return
    only = args[args.index("--only") + 1] if "--only" in args else None
    families = []
    if only in (None, "ceilings"):
        families.append("ceilings")
    if only in (None, "reduce"):
        families.append("reduce")
    if only in (None, "eigh"):
        families += ["cupy:f64", "cupy:f32", "torch:f64", "torch:f32"]
    for fam in families:
        cmd = [sys.executable, __file__, "--family", fam] + (["--quick"] if quick else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=130)
            sys.stdout.write(p.stdout)
            if p.returncode != 0:
                print(json.dumps({"bench": "family_failed", "family": fam, "code": p.returncode,
                                  "stderr": p.stderr[-600:]}))
        except subprocess.TimeoutExpired as e:
            sys.stdout.write((e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""))
            print(json.dumps({"bench": "family_timeout", "family": fam}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
