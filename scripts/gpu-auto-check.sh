#!/usr/bin/env bash
# One GPU-host session for Auto over every backend (CPU, CUDA, wgpu over Vulkan): the Auto
# tests, `megabatch info`, a calibration, the main example through Auto and on each backend,
# and the regret sweep. Runs in a folder BUNDLE holding bin/megabatch,
# examples/nuclear_shells, data/, tests/auto, benches/regret_table.py and
# the Vulkan loader's .deb files in gl/ (see the device notes in docs/benchmarks/auto-h200.md).
#
#   scripts/gpu-auto-check.sh BUNDLE OUT [REGRET_ARGS...]
# Writes OUT/info.txt, OUT/tests.log, OUT/calibrate.txt, OUT/calibration.json,
# OUT/example.txt, OUT/regret.jsonl.
set -uo pipefail
bundle=$(cd "$1" && pwd)
out=$2
shift 2
for f in "$bundle"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export MEGABATCH_REQUIRE_CUDA=1 MEGABATCH_REQUIRE_WGPU=1
export LD_LIBRARY_PATH="$(dirname "$(ls /usr/local/cuda*/lib64/libnvrtc.so.13 | head -1)")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MEGABATCH_KERNEL_CACHE=/tmp/megabatch-kernel-cache MEGABATCH_CALIBRATION="$out/calibration.json"
mkdir -p "$MEGABATCH_KERNEL_CACHE"
tool="$bundle/bin/megabatch"
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; echo "commit: $(cat "$bundle/COMMIT")"; "$tool" info; } > "$out/info.txt" 2>&1
for t in cuda wgpu; do
  echo "=== auto $t::"
  timeout 120 "$bundle/tests/auto" "$t::" 2>&1 | grep -E "^test |test result|panicked|FAILED"
done > "$out/tests.log" 2>&1
timeout 120 "$tool" calibrate > "$out/calibrate.txt" 2>&1
(cd "$bundle" && for b in auto auto cpu cuda wgpu; do
   echo "--- MEGABATCH_BACKEND=$b"
   MEGABATCH_BACKEND=$b timeout 60 examples/nuclear_shells 2>&1 | head -4
 done) > "$out/example.txt" 2>&1
timeout "${REGRET_TIMEOUT:-360}" "$tool" bench regret --format json "$@" > "$out/regret.jsonl" 2> "$out/regret.err"
echo "regret exit $?" >> "$out/regret.err"
