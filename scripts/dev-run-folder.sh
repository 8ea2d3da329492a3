#!/usr/bin/env bash
# Gathers what scripts/gpu-eigh-check.sh needs from a gpu-bundle folder into .dev-run (git-
# ignored, under the device tool's 64 MiB carry limit): the test binaries, the CUDA eigh bench,
# the example and its data, the peer and table scripts.
#
#   scripts/dev-run-folder.sh          # CUDA
#   scripts/dev-run-folder.sh wgpu     # also the wgpu tests and bench, and the Vulkan loader
#                                      # (.deb files in .gl, see the device README)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cuda}
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
