#!/usr/bin/env bash
# One GPU-host session for the eigh size classes: tests, compute-sanitizer, megabatch's bench
# and the vendor peers in the same run. Runs in a folder made by
#   scripts/gpu-bundle.sh .device-bin cuda
# (only the binaries named below are needed) with benches/cuda_peers.py beside them.
#
#   scripts/gpu-eigh-check.sh BUNDLE OUT [quick|full|tests|bench|check|peers|verify|wgpu|chains|split|dc|large]
# (check: the CUDA eigh tests and the quick bench, no sanitizers; verify: the CUDA eigh tests,
# every kernel, no allocation, memcheck; wgpu: the wgpu eigh tests over Vulkan, then the wgpu and the CUDA eigh
# grids in one run, with the Vulkan loader unpacked from BUNDLE/gl/*.deb: n = 4..64 (WGPU_NS),
# batches 1024 and 16384 (WGPU_BATCHES), f32 and f64, every wgpu layout side by side (size
# classes, workgroup, rows, subgroup; WGPU_JACOBI=1 adds Jacobi) and the CUDA classes, and at
# n = 64, 96, 128, 192, 256 (WGPU_MEDIUM_NS; 0 skips them) the size classes beside the global
# layout forced (issue 26 step 4) and CUDA, then OUT/wgpu-vs-cuda.txt, within 600 s
# (WGPU_TESTS=0 skips the tests; without the medium orders the small grid gets their time);
# chains: the tests,
# sanitizers, the n = 8..32 grid with --groups, the peers there and the example under Auto;
# split: the tests, the n = 48..256 grid with --groups (block and split layouts) and the
# peers there; sanitizers with SPLIT_SANITIZE=1; dc: issue 26 step 2 in one 600 s lease, the
# divide-and-conquer class's tests and every CUDA eigh test, memcheck and racecheck of its
# kernels, the n = 64..512 grid at batches 1024 and 16384 with the block, split and dc layouts
# side by side, and the vendors there; large: issue 26 step 3 within 540 s, the
# divide-and-conquer class's tests with its GPU-only orders 1024-4096, compute-sanitizer memcheck
# of its kernels on one order above 512 in each layout of its per-order vectors, megabatch's
# eigh at n = 1024, 2048, 4096 (batches 512, 128, 32 and 1) with plan device bytes, and
# cusolverDnXsyevBatched at the same batches, a per-matrix cusolverDnXsyevd loop and
# torch.linalg.eigh at batch 1 beside it, then OUT/large.txt)
# Writes OUT/tests.log, OUT/sanitizer.log, OUT/megabatch.jsonl, OUT/peers.jsonl, OUT/example.txt.
set -uo pipefail
bundle=$1
out=$2
mode=${3:-quick}
export MEGABATCH_REQUIRE_CUDA=1
# libnvrtc: the CUDA toolkit's or the nvidia-cuda-nvrtc wheel's.
nvrtc=$(ls /usr/local/cuda*/lib64/libnvrtc.so.13 2>/dev/null | head -1)
if [ -z "$nvrtc" ]; then
  nvrtc=$(python3 -c 'import glob,sys; print(next(iter(sorted(p for b in sys.path for p in glob.glob(b + "/nvidia/*/lib/libnvrtc.so.1*"))), ""))')
fi
export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MEGABATCH_KERNEL_CACHE=/tmp/megabatch-kernel-cache
mkdir -p "$MEGABATCH_KERNEL_CACHE"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$out/gpu.txt"
echo "nvrtc: $nvrtc" | tee -a "$out/gpu.txt"
git_rev=$(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)
echo "commit: $git_rev" | tee -a "$out/gpu.txt"

# run_tests SECONDS BINARY:MODULE...: each module's tests (`eigh:cuda` runs `tests/eigh cuda::`)
# when its binary is in the bundle, their result lines; divide and conquer's orders 1024-4096
# (cuda::dc_large, minutes) only in the `large` mode.
run_tests() {
  local limit=$1
  shift
  for t in "$@"; do
    [ -x "$bundle/tests/${t%%:*}" ] || continue
    echo "=== $t"
    timeout "$limit" "$bundle/tests/${t%%:*}" "${t#*:}::" --skip dc_large 2>&1 | grep -E "^test |test result|panicked|FAILED|Error" | head -40
  done
}
# run_sanitizers SECONDS: memcheck and racecheck on every eigh kernel variant.
run_sanitizers() {
  command -v compute-sanitizer >/dev/null || return 0
  echo "=== memcheck every_eigh_variant"
  timeout "$1" compute-sanitizer --tool memcheck "$bundle/tests/kernels" cuda::every_kernel::every_eigh_variant 2>&1 | tail -4
  echo "=== racecheck every_eigh_variant (MEGABATCH_SANITIZE_SMALL=1)"
  MEGABATCH_SANITIZE_SMALL=1 timeout "$1" compute-sanitizer --tool racecheck "$bundle/tests/kernels" cuda::every_kernel::every_eigh_variant 2>&1 | tail -4
}

if [[ $mode == wgpu ]]; then
  for f in "$bundle"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json MEGABATCH_REQUIRE_WGPU=1
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
  [[ ${WGPU_TESTS:-1} == 1 ]] && run_tests 150 eigh:wgpu contracts:wgpu::no_alloc 2>&1 | tee "$out/tests.log"
  ns=${WGPU_NS:-4,5,8,12,16,24,31,32,33,48,63,64}
  batches=${WGPU_BATCHES:-1024,16384}
  medium=${WGPU_MEDIUM_NS:-64,96,128,192,256}
  : > "$out/wgpu.jsonl"
  small_limit=280
  cuda_ns=$ns
  if [[ $medium != 0 ]]; then
    # The global-memory layout: the size classes and it forced (--global; the forced workgroup
    # layouts would fall to Jacobi here), first, in 130 s; CUDA at these orders below.
    small_limit=160
    cuda_ns=$(echo "$ns,$medium" | tr , '\n' | sort -nu | paste -sd,)
    timeout 130 "$bundle/benches/eigh_wgpu" --quick --only eigh --ns $medium --batches $batches --global >> "$out/wgpu.jsonl" 2>> "$out/wgpu.err"
  fi
  # --layouts: the size classes and each tridiagonal layout forced (workgroup, rows, subgroup);
  # WGPU_JACOBI=1 adds the Jacobi shader (slow at n = 64, batch 16384: may not fit the time).
  jacobi=""
  [[ ${WGPU_JACOBI:-0} == 1 ]] && jacobi=--jacobi
  timeout $small_limit "$bundle/benches/eigh_wgpu" --quick --only eigh --ns $ns --batches $batches $jacobi --layouts >> "$out/wgpu.jsonl" 2>> "$out/wgpu.err"
  timeout 150 "$bundle/benches/eigh_cuda" --quick --only eigh --ns $cuda_ns --batches $batches > "$out/megabatch.jsonl" 2> "$out/bench.err"
  # wgpu over CUDA per (dtype, n, batch, vectors): the size classes, each layout forced.
  python3 - "$out/wgpu.jsonl" "$out/megabatch.jsonl" <<'PY' | tee "$out/wgpu-vs-cuda.txt"
import json, sys
def rows(path):
    for line in open(path):
        try:
            yield json.loads(line)
        except ValueError:
            pass
cuda = {}
for r in rows(sys.argv[2]):
    if r.get("bench") == "eigh" and "matrices_per_s" in r:
        cuda[(r["dtype"], r["n"], r["batch"], True)] = r["matrices_per_s"]
        if r.get("values_only_seconds"):
            cuda[(r["dtype"], r["n"], r["batch"], False)] = r["batch"] / r["values_only_seconds"]
wg = {}
for r in rows(sys.argv[1]):
    if r.get("bench") == "eigh" and "wgpu_matrices_per_s" in r:
        wg.setdefault((r["dtype"], r["n"], r["batch"], r["vectors"]), {})[r["algorithm"]] = (r["wgpu_matrices_per_s"], r["shader"])
print("dtype n batch vectors | cuda/s | size-classes/s (shader) | subgroup/s | rows/s | workgroup/s | global/s | cuda / size-classes | cuda / global")
for k in sorted(wg):
    a = wg[k]
    c = cuda.get(k)
    sc = a.get("SizeClasses", (None, ""))
    gl = a.get("TridiagGlobal", (None,))[0]
    f = lambda x: "-" if x is None else f"{x:.3g}"
    ratio = lambda x: f"{c / x:.2f}" if c and x else "-"
    print(*k, "|", f(c), "|", f(sc[0]), sc[1], "|", f(a.get("TridiagSubgroup", (None,))[0]),
          "|", f(a.get("TridiagRows", (None,))[0]), "|", f(a.get("TridiagWorkgroup", (None,))[0]),
          "|", f(gl), "|", ratio(sc[0]), "|", ratio(gl))
PY
  exit 0
fi
if [[ $mode == chains ]]; then
  # The chains classes (n = 9..32) against the group-computed QL they replace and the
  # vendors, with tests and sanitizers, in one lease.
  run_tests 200 eigh:cuda kernels:cuda::every_kernel contracts:cuda::no_alloc auto:cuda kernels:cuda::nvrtc 2>&1 | tee "$out/tests.log"
  run_sanitizers 120 2>&1 | tee "$out/sanitizer.log"
  ns=${CHAINS_NS:-8,12,16,24,32}
  timeout 120 "$bundle/benches/eigh_cuda" --quick --only seed,example,eigh --ns $ns --batches 1,1024,16384,131072 --groups --cpu > "$out/megabatch.jsonl" 2> "$out/bench.err"
  MEGABATCH_CUDA_STAGING=direct timeout 30 "$bundle/benches/eigh_cuda" --quick --only seed >> "$out/megabatch.jsonl" 2>> "$out/bench.err"
  timeout 150 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs xsyev,cupy --ns 12,16,24,32 --batches 1,1024,16384,131072 --timeout 40 > "$out/peers.jsonl" 2> "$out/peers.err"
  (cd "$bundle" && for b in auto cuda cpu; do
     echo "--- MEGABATCH_BACKEND=$b"
     if [[ $b == auto ]]; then timeout 60 examples/nuclear_shells 2>&1 | head -3
     else MEGABATCH_BACKEND=$b timeout 60 examples/nuclear_shells 2>&1 | head -3; fi
   done) > "$out/example.txt" 2>&1
  python3 "$bundle/benches/eigh_classes_table.py" "$out/megabatch.jsonl" "$out/peers.jsonl" 2>&1 | tail -60
  exit 0
fi
if [[ $mode == split ]]; then
  run_tests 240 eigh:cuda kernels:cuda::every_kernel contracts:cuda::no_alloc auto:cuda 2>&1 | tee "$out/tests.log"
  [[ ${SPLIT_SANITIZE:-0} == 1 ]] && run_sanitizers 200 2>&1 | tee "$out/sanitizer.log"
  ns=${SPLIT_NS:-48,64,96,128,160,256}
  batches=${SPLIT_BATCHES:-1,1024,16384}
  timeout 200 "$bundle/benches/eigh_cuda" --quick --only eigh --ns $ns --batches $batches --groups --cpu > "$out/megabatch.jsonl" 2> "$out/bench.err"
  [[ ${SPLIT_PEERS:-1} == 1 ]] && timeout 200 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs xsyev,cupy --ns $ns --batches $batches --timeout 60 > "$out/peers.jsonl" 2> "$out/peers.err"
  [ -f "$out/peers.jsonl" ] && python3 "$bundle/benches/eigh_classes_table.py" "$out/megabatch.jsonl" "$out/peers.jsonl" 2>&1 | tail -60
  exit 0
fi
if [[ $mode == dc ]]; then
  # At most 540 s in all, each step under its own timeout so a hung kernel costs only its
  # step: tests 140, sanitizers 2 x 45, megabatch's grid 2 x 100 (the new class's orders
  # first, then 64-160 with the block, split and dc layouts side by side), peers 110.
  run_tests 140 eigh:cuda contracts:cuda::no_alloc 2>&1 | tee "$out/tests.log"
  if command -v compute-sanitizer >/dev/null; then
    # The dc kernels only (kernel-name filter) in every_eigh_variant's small set: orders
    # 33-70 forced onto divide and conquer, vectors and values.
    # A compute-sanitizer that does not know the filter option checks every kernel instead.
    for tool in memcheck racecheck; do
      echo "=== $tool eigh_dc kernels of every_eigh_variant (MEGABATCH_SANITIZE_SMALL=1)"
      log=$(MEGABATCH_SANITIZE_SMALL=1 timeout 45 compute-sanitizer --tool $tool --kernel-name kns=eigh_dc "$bundle/tests/kernels" cuda::every_kernel::every_eigh_variant 2>&1)
      if grep -qiE "unrecognized|unknown option|invalid (option|value)" <<< "$log"; then
        echo "(no --kernel-name filter: every kernel)"
        log=$(MEGABATCH_SANITIZE_SMALL=1 timeout 45 compute-sanitizer --tool $tool "$bundle/tests/kernels" cuda::every_kernel::every_eigh_variant 2>&1)
      fi
      tail -4 <<< "$log"
    done 2>&1 | tee "$out/sanitizer.log"
  fi
  batches=${DC_BATCHES:-1024,16384}
  timeout 100 "$bundle/benches/eigh_cuda" --quick --only eigh --ns ${DC_NS_HIGH:-192,256,384,512} --batches $batches > "$out/megabatch.jsonl" 2> "$out/bench.err"
  timeout 100 "$bundle/benches/eigh_cuda" --quick --only eigh --ns ${DC_NS_LOW:-64,96,128,160} --batches $batches --groups >> "$out/megabatch.jsonl" 2>> "$out/bench.err"
  timeout 110 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs xsyev,cupy --ns 64,96,128,160,192,256,384,512 --batches $batches --timeout 50 > "$out/peers.jsonl" 2> "$out/peers.err"
  python3 "$bundle/benches/eigh_classes_table.py" "$out/megabatch.jsonl" "$out/peers.jsonl" 2>&1 | tail -60
  exit 0
fi
if [[ $mode == large ]]; then
  # At most 515 s of steps (each under its own timeout, so a hung or slow kernel costs only its
  # step): tests 140, memcheck 45, megabatch 35 + 40 + 110 (n = 4096's batch 1 last: each
  # matrix is one block for seconds), vendors 80 + 40 + 25.
  # --nocapture: each large matrix's ratios as it is checked (a timeout keeps those so far).
  timeout 140 "$bundle/tests/eigh" cuda::dc --nocapture 2>&1 | grep -E "^test |test result|panicked|FAILED|Error|SKIPPED|residual" | head -120 | tee "$out/tests.log"
  if command -v compute-sanitizer >/dev/null; then
    # dc_large_sanitizer_case: f64 n = 600 (per-order vectors in shared memory) and f32 700
    # (forced into the slots), vectors and values; the dc kernels only where the filter exists.
    echo "=== memcheck eigh_dc kernels of dc_large_sanitizer_case"
    log=$(timeout 45 compute-sanitizer --tool memcheck --kernel-name kns=eigh_dc "$bundle/tests/eigh" cuda::dc_large::dc_large_sanitizer_case 2>&1)
    if grep -qiE "unrecognized|unknown option|invalid (option|value)" <<< "$log"; then
      echo "(no --kernel-name filter: every kernel)"
      log=$(timeout 45 compute-sanitizer --tool memcheck "$bundle/tests/eigh" cuda::dc_large::dc_large_sanitizer_case 2>&1)
    fi
    grep -E "ERROR SUMMARY|test result|Invalid|out of bounds" <<< "$log" | head -20 | tee "$out/sanitizer.log"
  fi
  : > "$out/megabatch.jsonl"
  for case in "35 1024 512,1" "40 2048 128,1" "110 4096 32,1"; do
    read -r limit n batches <<< "$case"
    timeout "$limit" "$bundle/benches/eigh_cuda" --quick --only eigh --ns "$n" --batches "$batches" >> "$out/megabatch.jsonl" 2>> "$out/bench.err"
  done
  # XsyevBatched at megabatch's batches (under its cap of n * lda * batch < 2^31); the
  # Xsyevd loop's rate is per matrix, so a few matrices give it; torch at batch 1.
  timeout 80 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs xsyev --pairs 1024:512,2048:128,4096:32,1024:1,2048:1,4096:1 --timeout 39 > "$out/peers.jsonl" 2> "$out/peers.err"
  timeout 40 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs xsyevd --pairs 1024:32,2048:8,4096:2,1024:1,2048:1,4096:1 --timeout 19 >> "$out/peers.jsonl" 2>> "$out/peers.err"
  timeout 25 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh --libs torch --pairs 1024:1,2048:1,4096:1 --timeout 12 >> "$out/peers.jsonl" 2>> "$out/peers.err"
  # One line per (dtype, n, batch): megabatch with and without vectors, its plan's device bytes
  # over the matrices', and each vendor's rate and megabatch's ratio to it.
  python3 - "$out/megabatch.jsonl" "$out/peers.jsonl" <<'PY' | tee "$out/large.txt"
import json, sys
def rows(path):
    for line in open(path):
        try:
            yield json.loads(line)
        except ValueError:
            pass
peers = {}
for r in rows(sys.argv[2]):
    if r.get("bench") == "eigh" and "matrices_per_s" in r:
        peers[(r["lib"], r["dtype"], r["n"], r["batch"])] = r["matrices_per_s"]
    elif r.get("bench") == "eigh" and "error" in r:
        print("peer error:", r["lib"], r["dtype"], r["n"], r["batch"], r["error"])
print("dtype n batch | megabatch/s vectors | values only/s | plan bytes / matrices (vectors, values) | xsyevBatched/s (ratio) | xsyevd loop/s (ratio) | torch/s (ratio) | class")
for r in rows(sys.argv[1]):
    if r.get("bench") != "eigh" or "matrices_per_s" not in r:
        if r.get("bench") == "eigh":
            print("megabatch:", r)
        continue
    k = (r["dtype"], r["n"], r["batch"])
    mb = r["matrices_per_s"]
    vo = r["batch"] / r["values_only_seconds"]
    mat = r["matrix_bytes"]
    def peer(lib):
        # The loop's and torch's rates are per matrix: any batch of theirs compares.
        p = peers.get((lib,) + k)
        if p is None:
            p = next((v for (l, d, n, b), v in peers.items() if l == lib and (d, n) == k[:2] and (lib != "xsyev" or b == k[2])), None)
        return "-" if p is None else f"{p:.3g} ({mb / p:.2f}x)"
    print(*k, "|", f"{mb:.3g}", "|", f"{vo:.3g}", "|", f"{r['device_bytes'] / mat:.2f} {r['values_only_device_bytes'] / mat:.2f}",
          "|", peer("xsyev"), "|", peer("xsyevd"), "|", peer("torch"), "|", r["class"], "" if r["finite"] else "NOT FINITE")
PY
  exit 0
fi
if [[ $mode == check || $mode == verify ]]; then
  timeout 300 "$bundle/tests/eigh" cuda:: --skip dc_large 2>&1 | grep -E "^test |test result|panicked|FAILED|Error" | head -40 | tee "$out/tests.log"
fi
if [[ $mode == verify ]]; then
  for t in kernels:cuda::every_kernel contracts:cuda::no_alloc; do
    timeout 120 "$bundle/tests/${t%%:*}" "${t#*:}::" 2>&1 | grep -E "^test |test result|panicked" | head -10
  done 2>&1 | tee -a "$out/tests.log"
  timeout 120 compute-sanitizer --tool memcheck "$bundle/tests/kernels" cuda::every_kernel::every_eigh_variant 2>&1 | tail -2 | tee "$out/sanitizer.log"
fi
if [[ $mode == quick || $mode == full || $mode == tests ]]; then
  run_tests 300 eigh:cuda kernels:cuda::every_kernel contracts:cuda::no_alloc auto:cuda 2>&1 | tee "$out/tests.log"
  run_sanitizers 300 2>&1 | tee "$out/sanitizer.log"
fi

if [[ $mode == quick || $mode == bench || $mode == check ]]; then
  ns=4,8,12,16,24,32,48,64,128
  batches=1024,16384
  timeout 240 "$bundle/benches/eigh_cuda" --only seed,example,eigh --ns $ns --batches $batches --jacobi --cpu > "$out/megabatch.jsonl" 2> "$out/bench.err"
  timeout 200 python3 "$bundle/benches/cuda_peers.py" --only eigh --libs cupy,xsyev --ns $ns --batches $batches --timeout 90 > "$out/peers.jsonl" 2> "$out/peers.err"
elif [[ $mode == full || $mode == peers ]]; then
  # The whole grid in one lease: 50 ms per case (--quick), torch left out (it calls
  # XsyevBatched itself for n <= 32, measured as xsyev here).
  ns=4,8,12,16,24,32,48,64,96,128,160,256
  batches=1,1024,16384,131072
  [[ $mode == full ]] && timeout 210 "$bundle/benches/eigh_cuda" --quick --only seed,example,eigh --ns $ns --batches $batches --cpu > "$out/megabatch.jsonl" 2> "$out/bench.err"
  timeout 230 python3 "$bundle/benches/cuda_peers.py" --quick --only eigh,ceilings --libs xsyev,cupy --ns $ns --batches $batches --timeout 52 > "$out/peers.jsonl" 2> "$out/peers.err"
fi
if [ -x "$bundle/examples/nuclear_shells" ] && [[ $mode != peers ]]; then
  (cd "$bundle" && for b in cuda cpu; do MEGABATCH_BACKEND=$b timeout 60 examples/nuclear_shells 2>&1 | head -3; done) > "$out/example.txt" 2>&1
fi
if [ -f "$out/megabatch.jsonl" ] && [ -f "$out/peers.jsonl" ]; then
  python3 "$bundle/benches/eigh_classes_table.py" "$out/megabatch.jsonl" "$out/peers.jsonl" 2>&1 | tail -60
fi
