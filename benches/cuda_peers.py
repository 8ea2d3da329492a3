#!/usr/bin/env python3
"""The peers of megabatch's CUDA bench, on the same GPU in the same run: torch.linalg.eigh,
cupy.linalg.eigh (cuSOLVER syevjBatched for batched input), cuSOLVER's cusolverDnXsyevBatched
and a per-matrix loop of cusolverDnXsyevd (divide and conquer, one matrix per call: the vendor
route for orders above XsyevBatched's) called directly through ctypes (their output checked by
a residual, so a wrong call cannot look fast) and torch reductions, all on
device-resident inputs timed with CUDA events; plus the device's copy bandwidth and fp64
matmul rate as ceilings. Prints JSON lines like benches/eigh_cuda.rs and reduce_cuda.rs.

Each (library, dtype) family runs in its own subprocess with a timeout, because a cuSOLVER
internal error can leave the CUDA context unusable; a failing case is reported with its error.

Usage: python3 benches/cuda_peers.py [--quick] [--only eigh|reduce|ceilings] [--ns 4,8]
       [--batches 1,1024,max] [--pairs 1024:512,4096:1] [--libs cupy,xsyev,xsyevd,torch]
       [--timeout SECONDS]
(batch `max`: the largest batch cusolverDnXsyevBatched accepts, n * lda * batch < 2^31, within
the 12 GiB input cap; for every library. --pairs: these (n, batch) cases instead of every n of
--ns with every batch of --batches.)
"""
import json
import subprocess
import sys
import time

NS = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 256]
NS_QUICK = [4, 12, 32, 64, 128]
BATCHES = [1, 1024, 16384, 131072]
MAX_BYTES = 12 << 30
# cusolverDnXsyevBatched refuses n * lda * batch from 2^31 on.
XSYEV_BATCHED_ELEMENTS = 1 << 31


def max_batch(n, elem):
    """The largest batch XsyevBatched accepts at order n, within the input cap."""
    return max(1, min((XSYEV_BATCHED_ELEMENTS - 1) // (n * n), MAX_BYTES // (n * n * elem)))


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


class Xsyev:
    """cusolverDnXsyevBatched (CUDA >= 12.6.2) through ctypes: uniform batch, lower triangle,
    column-major (a symmetric matrix is its own transpose), on torch's current stream."""

    def __init__(self, torch):
        import ctypes
        import glob
        import os
        self.ct = ctypes
        paths = []
        for base in sys.path:
            paths += glob.glob(os.path.join(base, "nvidia", "*", "lib", "libcusolver.so*"))
            paths += glob.glob(os.path.join(base, "nvidia", "cusolver", "lib", "libcusolver.so*"))
        paths += glob.glob("/usr/local/cuda*/lib64/libcusolver.so*")
        last = None
        for path in paths + ["libcusolver.so.12", "libcusolver.so.11"]:
            try:
                self.lib = ctypes.CDLL(path)
                self.path = path
                break
            except OSError as e:
                last = e
        else:
            raise RuntimeError(f"libcusolver not found: {last}")
        self.handle = ctypes.c_void_p()
        self.params = ctypes.c_void_p()
        self.check(self.lib.cusolverDnCreate(ctypes.byref(self.handle)), "cusolverDnCreate")
        self.check(self.lib.cusolverDnCreateParams(ctypes.byref(self.params)), "CreateParams")
        stream = torch.cuda.current_stream().cuda_stream
        self.check(self.lib.cusolverDnSetStream(self.handle, ctypes.c_void_p(stream)), "SetStream")
        self.torch = torch

    @staticmethod
    def check(status, what):
        if status != 0:
            raise RuntimeError(f"{what}: cusolverStatus {status}")

    def operands(self, a, vectors):
        """The 64-bit API's arguments for a [batch, n, n] tensor: batch, n, the CUDA data type,
        a copy of a to overwrite, w, info, the two workspace-size outputs and jobz."""
        torch, ct = self.torch, self.ct
        batch, n = a.shape[0], a.shape[1]
        dtype = 1 if a.dtype == torch.float64 else 0  # CUDA_R_64F / CUDA_R_32F
        w = torch.empty((batch, n), device="cuda", dtype=a.dtype)
        info = torch.zeros(batch, device="cuda", dtype=torch.int32)
        return batch, n, dtype, a.clone(), w, info, ct.c_size_t(), ct.c_size_t(), 1 if vectors else 0

    def prepare(self, a, vectors):
        """Workspace for a [batch, n, n] tensor; returns a callable that overwrites a copy of a
        with the eigenvectors and fills w, and the device workspace in bytes."""
        torch, ct = self.torch, self.ct
        batch, n, dtype, work, w, info, dev_bytes, host_bytes, jobz = self.operands(a, vectors)
        i64 = ct.c_int64
        self.check(self.lib.cusolverDnXsyevBatched_bufferSize(
            self.handle, self.params, jobz, 0, i64(n), dtype, ct.c_void_p(work.data_ptr()), i64(n),
            dtype, ct.c_void_p(w.data_ptr()), dtype, ct.byref(dev_bytes), ct.byref(host_bytes),
            i64(batch)), "XsyevBatched_bufferSize")
        if dev_bytes.value > 60 << 30:
            raise RuntimeError(f"workspace query asks {dev_bytes.value / 2**30:.1f} GiB")
        dwork = torch.empty(max(dev_bytes.value, 1), device="cuda", dtype=torch.uint8)
        hwork = ct.create_string_buffer(max(host_bytes.value, 1))

        def call():
            work.copy_(a)
            self.check(self.lib.cusolverDnXsyevBatched(
                self.handle, self.params, jobz, 0, i64(n), dtype, ct.c_void_p(work.data_ptr()),
                i64(n), dtype, ct.c_void_p(w.data_ptr()), dtype, ct.c_void_p(dwork.data_ptr()),
                ct.c_size_t(dev_bytes.value), hwork, ct.c_size_t(host_bytes.value),
                ct.c_void_p(info.data_ptr()), i64(batch)), "XsyevBatched")
            return w, work, info

        return call, dev_bytes.value


class Xsyevd(Xsyev):
    """cusolverDnXsyevd (64-bit API, divide and conquer) through ctypes, one call per matrix of
    a [batch, n, n] tensor, one workspace for all: the per-matrix loop a cuSOLVER user writes
    where XsyevBatched stops."""

    def prepare(self, a, vectors):
        torch, ct = self.torch, self.ct
        batch, n, dtype, work, w, info, dev_bytes, host_bytes, jobz = self.operands(a, vectors)
        i64 = ct.c_int64
        self.check(self.lib.cusolverDnXsyevd_bufferSize(
            self.handle, self.params, jobz, 0, i64(n), dtype, ct.c_void_p(work.data_ptr()), i64(n),
            dtype, ct.c_void_p(w.data_ptr()), dtype, ct.byref(dev_bytes), ct.byref(host_bytes)),
            "Xsyevd_bufferSize")
        dwork = torch.empty(max(dev_bytes.value, 1), device="cuda", dtype=torch.uint8)
        hwork = ct.create_string_buffer(max(host_bytes.value, 1))
        elem = a.element_size()

        def call():
            work.copy_(a)
            for i in range(batch):
                self.check(self.lib.cusolverDnXsyevd(
                    self.handle, self.params, jobz, 0, i64(n), dtype,
                    ct.c_void_p(work.data_ptr() + i * n * n * elem), i64(n), dtype,
                    ct.c_void_p(w.data_ptr() + i * n * elem), dtype, ct.c_void_p(dwork.data_ptr()),
                    ct.c_size_t(dev_bytes.value), hwork, ct.c_size_t(host_bytes.value),
                    ct.c_void_p(info.data_ptr() + 4 * i)), "Xsyevd")
            return w, work, info

        return call, dev_bytes.value


def residual_ok(torch, a, w, v):
    """max over matrices of ||A V - V diag(w)|| / (n ||A|| eps) < 100 (a loose bound: it only
    has to tell a working call from a broken one)."""
    n = a.shape[-1]
    eps = torch.finfo(a.dtype).eps
    k = min(a.shape[0], 256)
    a64, w64, v64 = a[:k].double(), w[:k].double(), v[:k].double()
    r = torch.linalg.matrix_norm(a64 @ v64 - v64 * w64[:, None, :], ord=1)
    an = torch.linalg.matrix_norm(a64, ord=1).clamp_min(1e-300)
    return float((r / (n * an * eps)).max())


def eigh_family(lib, dtype_name, quick, ns=None, batches=None, pairs=None):
    import torch
    dtype = {"f64": torch.float64, "f32": torch.float32}[dtype_name]
    xs = None
    elem = 8 if dtype_name == "f64" else 4
    if pairs is None:
        pairs = [(n, b) for n in ns or (NS_QUICK if quick else NS) for b in batches or BATCHES]
    for n, batch in pairs:
        if batch == "max":
            batch = max_batch(n, elem)
        row = {"bench": "eigh", "lib": lib, "dtype": dtype_name, "n": n, "batch": batch}
        if n * n * batch * (8 if dtype_name == "f64" else 4) > MAX_BYTES:
            row["skipped"] = "input over 12 GiB"
            print(json.dumps(row), flush=True)
            continue
        try:
            a = matrices(torch, n, batch, dtype)
            if lib == "torch":
                fn = lambda: torch.linalg.eigh(a)
            elif lib in ("xsyev", "xsyevd"):
                xs = xs or (Xsyev(torch) if lib == "xsyev" else Xsyevd(torch))
                fn, ws = xs.prepare(a, True)
                w, v, info = fn()
                torch.cuda.synchronize()
                # Column-major output: the eigenvectors are the rows of each block.
                row["residual_ratio"] = residual_ok(torch, a, w, v.transpose(-1, -2))
                row["info_nonzero"] = int((info != 0).sum())
                row["workspace_bytes"] = ws
                if not row["residual_ratio"] < 100:
                    raise RuntimeError(f"{lib} residual {row['residual_ratio']}")
                fw, _ = xs.prepare(a, False)
                row["values_only_seconds"] = timed(fw, 0.05 if quick else 0.2)
                del fw
            else:
                import cupy
                ac = cupy.asarray(a)
                fn = lambda: cupy.linalg.eigh(ac)
                if batch <= 16384:
                    wc, vc = cupy.linalg.eigh(ac)
                    row["residual_ratio"] = residual_ok(
                        torch, a, torch.as_tensor(wc, device="cuda"),
                        torch.as_tensor(vc, device="cuda"))
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
            ns = [int(x) for x in args[args.index("--ns") + 1].split(",")] if "--ns" in args else None
            bs = ([x if x == "max" else int(x) for x in args[args.index("--batches") + 1].split(",")]
                  if "--batches" in args else None)
            pairs = None
            if "--pairs" in args:
                pairs = []
                for p in args[args.index("--pairs") + 1].split(","):
                    n, b = p.split(":")
                    pairs.append((int(n), b if b == "max" else int(b)))
            eigh_family(lib, dtype, quick, ns, bs, pairs)
        return
    only = args[args.index("--only") + 1].split(",") if "--only" in args else None
    families = []
    if only is None or "ceilings" in only:
        families.append("ceilings")
    if only is None or "reduce" in only:
        families.append("reduce")
    if only is None or "eigh" in only:
        libs = args[args.index("--libs") + 1].split(",") if "--libs" in args else ["cupy", "xsyev", "torch"]
        families += [f"{lib}:{t}" for lib in libs for t in ["f64", "f32"]]
    passthrough = []
    for flag in ["--ns", "--batches", "--pairs"]:
        if flag in args:
            passthrough += [flag, args[args.index(flag) + 1]]
    timeout = int(args[args.index("--timeout") + 1]) if "--timeout" in args else 130
    for fam in families:
        cmd = [sys.executable, __file__, "--family", fam] + (["--quick"] if quick else []) + passthrough
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
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
