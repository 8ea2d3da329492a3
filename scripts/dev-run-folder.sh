#!/usr/bin/env bash
# Gathers what scripts/gpu-eigh-check.sh needs from a gpu-bundle folder into .dev-run (git-
# ignored, under the device tool's 64 MiB carry limit): the test binaries, the CUDA eigh bench,
# the example and its data, the peer and table scripts.
#
#   scripts/dev-run-folder.sh          # CUDA
#   scripts/dev-run-folder.sh wgpu     # also the wgpu tests and bench, and the Vulkan loader
#                                      # (.deb files in .gl, see the device README)
#   scripts/dev-run-folder.sh wgpu-eigh  # only what gpu-eigh-check.sh's wgpu mode runs: the
#                                      # eigh and contracts tests, eigh_wgpu and eigh_cuda, the
#                                      # .gl debs (a release build of those targets alone)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cuda}
if [[ $mode == wgpu-eigh ]]; then
  ls .gl/*.deb >/dev/null || { echo "no .gl/*.deb (the GL/Vulkan loader debs; see the device README)" >&2; exit 1; }
  rm -rf .dev-run && mkdir -p .dev-run/tests .dev-run/benches .dev-run/gl
  pick() { # $1: destination subfolder; stdin: cargo's JSON messages
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        shutil.copy2(m["executable"], sys.argv[1] + "/" + m["target"]["name"])
' "$1"
  }
  cargo test --release --features cuda,wgpu --no-run --test eigh --test contracts --message-format=json | pick .dev-run/tests
  cargo build --release --features cuda,wgpu --bench eigh_wgpu --bench eigh_cuda --message-format=json | pick .dev-run/benches
  strip .dev-run/tests/* .dev-run/benches/* 2>/dev/null || true
  cp .gl/*.deb .dev-run/gl/
  git rev-parse --short HEAD > .dev-run/COMMIT
  git diff --quiet || echo "+ uncommitted changes" >> .dev-run/COMMIT
  cp scripts/gpu-eigh-check.sh .dev-run/
  du -sh .dev-run
  exit 0
fi
features=cuda
[[ $mode == wgpu ]] && features=cuda,wgpu
scripts/gpu-bundle.sh .device-bin $features > /tmp/megabatch-bundle.log 2>&1
rm -rf .dev-run && mkdir -p .dev-run/tests .dev-run/benches .dev-run/examples
cp .device-bin/tests/{eigh,kernels,contracts,auto} .dev-run/tests/
cp .device-bin/benches/{eigh_cuda,cuda_peers.py,eigh_classes_table.py,jsonl.py} .dev-run/benches/
if [[ $mode == wgpu ]]; then
  cp .device-bin/benches/eigh_wgpu .dev-run/benches/
  mkdir -p .dev-run/gl && cp .gl/*.deb .dev-run/gl/
fi
cp .device-bin/examples/nuclear_shells .dev-run/examples/
cp -r .device-bin/data .device-bin/COMMIT .dev-run/
cp scripts/gpu-eigh-check.sh .dev-run/
du -sh .dev-run
