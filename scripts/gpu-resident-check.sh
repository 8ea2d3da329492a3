#!/usr/bin/env bash
# One GPU-host session for the GPU-resident iterations (issue "GPU-resident iterations"): the
# seed workload with the chunked host path against the single pass, the chunked path's test,
# scf_nuclei's backend table and basis sweep, its GPU tests, the CUDA eigh suite and
# compute-sanitizer on the interop and graph contracts. Most important first; each step is
# cut to what is left of BUDGET seconds (default 570), so one device call of 600 s suffices.
#
#   scripts/gpu-resident-check.sh build      # here: binaries into .dev-run (git-ignored,
#                                            # ~46 MiB with the Vulkan loader from .gl/*.deb)
#   .dev-run/gpu-resident-check.sh run       # on the GPU host (the device tool: carry .dev-run)
# Writes $OUT/{machine,seed,scf_table,scf_sweep,scf_tests,eigh_tests,sanitizer}.txt.
set -uo pipefail
case "${1:-}" in
build)
  set -e
  cd "$(dirname "$0")/.."
  cargo build --release --features cuda,wgpu --example scf_nuclei --bench eigh_cuda \
    --message-format=json > /tmp/resident-build.json
  cargo test --release --features cuda,wgpu,fault-injection --example scf_nuclei --test eigh \
    --test contracts --no-run --message-format=json > /tmp/resident-tests.json
  rm -rf .dev-run && mkdir -p .dev-run/gl
  python3 - <<'PY'
import json, shutil
want = {("scf_nuclei", "example", "b"): "scf_nuclei", ("eigh_cuda", "bench", "b"): "eigh_cuda",
        ("scf_nuclei", "example", "t"): "scf_tests", ("eigh", "test", "t"): "eigh_tests",
        ("contracts", "test", "t"): "contracts"}
for tag, f in (("b", "/tmp/resident-build.json"), ("t", "/tmp/resident-tests.json")):
    for line in open(f):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m.get("executable"):
            for kind in m["target"]["kind"]:
                dest = want.get((m["target"]["name"], kind, tag))
                if dest:
                    shutil.copy2(m["executable"], ".dev-run/" + dest)
PY
  strip .dev-run/scf_nuclei .dev-run/eigh_cuda .dev-run/scf_tests .dev-run/eigh_tests .dev-run/contracts
  cp .gl/*.deb .dev-run/gl/ 2>/dev/null || echo "no .gl/*.deb: the wgpu runs will fail on the GPU host"
  cp "$0" .dev-run/
  { git rev-parse --short HEAD; git diff --quiet || echo "+ uncommitted changes"; } > .dev-run/COMMIT
  du -sh .dev-run
  exit 0 ;;
run|seed) ;;
*) echo "usage: $0 build|run|seed"; exit 2 ;;
esac

cd "$(dirname "$0")"
O=${OUT:-/tmp/resident-out}; mkdir -p "$O"
T0=$SECONDS
left() { echo $(( ${BUDGET:-570} - (SECONDS - T0) )); }
for f in gl/*.deb; do dpkg -x "$f" / ; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export MEGABATCH_REQUIRE_CUDA=1 MEGABATCH_REQUIRE_WGPU=1 MEGABATCH_KERNEL_CACHE=/tmp/kc
{ nvidia-smi --query-gpu=name,driver_version --format=csv; nproc; cat COMMIT; } > "$O/machine.txt"
if [ "$1" = seed ]; then
  # The seed workload's host path across its knobs (staging, chunk size, copy threads, spin),
  # then the chunked path's test and memcheck of the interop and graph contracts.
  seed() { timeout 30 ./eigh_cuda --quick --only seed 2>/dev/null | grep '"seed"' | sed "s/^/$* /"; }
  {
    MEGABATCH_CUDA_STAGING=pinned MEGABATCH_CUDA_COPY_SPIN_US=0 seed pinned spin0
    MEGABATCH_CUDA_STAGING=chunked MEGABATCH_CUDA_COPY_SPIN_US=0 seed chunked spin0
    MEGABATCH_CUDA_STAGING=chunked seed chunked kib384 threads8 spin250
    MEGABATCH_CUDA_STAGING=pinned seed pinned spin250
    MEGABATCH_CUDA_STAGING=chunked MEGABATCH_CUDA_CHUNK_KIB=768 seed chunked kib768 threads8 spin250
    MEGABATCH_CUDA_STAGING=chunked MEGABATCH_CUDA_COPY_THREADS=16 seed chunked kib384 threads16 spin250
    [ "$(left)" -gt 150 ] && MEGABATCH_CUDA_STAGING=chunked MEGABATCH_CUDA_CHUNK_KIB=192 seed chunked kib192 threads8 spin250
  } > "$O/seed_tune.txt" 2>&1
  timeout 30 ./eigh_tests --test-threads 1 chunked 2>&1 | tail -4 > "$O/chunked_test.txt"
  timeout 40 compute-sanitizer --tool memcheck ./contracts --test-threads 1 cuda::interop cuda::graph \
    2>&1 | grep -v "Host Frame" | tail -30 > "$O/sanitizer.txt"
  echo "total $((SECONDS - T0)) s" >> "$O/machine.txt"
  exit 0
fi
{
  for r in 1 2 3; do
    for st in chunked pinned; do
      MEGABATCH_CUDA_STAGING=$st timeout 60 ./eigh_cuda --quick --only seed | sed "s/^/$st /"
    done
  done
  MEGABATCH_CUDA_STAGING=chunked MEGABATCH_CUDA_COPY_THREADS=1 timeout 60 ./eigh_cuda --quick --only seed \
    | sed "s/^/chunked-1thread /"
  timeout 30 ./eigh_tests --test-threads 1 chunked 2>&1 | tail -8
} > "$O/seed.txt" 2>&1
scf() { echo "=== $*"; timeout 60 ./scf_nuclei "$@" 2>&1 | head -"${KEEP:-14}"; }
{
  for args in "--backend cpu" "--backend cuda" "--backend cuda --step-times" "--backend cuda --graph" \
      "--backend wgpu" "--backend wgpu --step-times"; do
    KEEP=30 scf $args
  done
} > "$O/scf_table.txt" 2>&1
{
  for n in 6 8 10 12 14 18 20; do
    [ "$(left)" -lt 300 ] && break
    for args in "--backend cpu" "--backend cuda" "--backend cuda --graph" "--backend wgpu"; do
      KEEP=4 scf --n-max $n $args
    done
  done
} > "$O/scf_sweep.txt" 2>&1
{ timeout $(( $(left) - 200 )) ./scf_tests --test-threads 1 tests_cuda:: wgpu:: 2>&1 | tail -30; } > "$O/scf_tests.txt" 2>&1
{ timeout $(( $(left) - 80 )) ./eigh_tests --test-threads 1 cuda:: 2>&1 | tail -40; } > "$O/eigh_tests.txt" 2>&1
{ timeout $(( $(left) - 5 )) compute-sanitizer --tool memcheck ./contracts --test-threads 1 cuda::interop cuda::graph 2>&1 | tail -30; } > "$O/sanitizer.txt" 2>&1
echo "total $((SECONDS - T0)) s" >> "$O/machine.txt"
