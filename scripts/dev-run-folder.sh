#!/usr/bin/env bash
# Gathers what scripts/gpu-eigh-check.sh needs from a gpu-bundle folder into .dev-run (git-
# ignored, under the device tool's 64 MiB carry limit): the eigh test binaries, the CUDA bench,
# the example and its data, the peer and table scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/gpu-bundle.sh .device-bin cuda > /tmp/megabatch-bundle.log 2>&1
rm -rf .dev-run && mkdir -p .dev-run/tests .dev-run/benches .dev-run/examples
cp .device-bin/tests/{cuda_eigh,cuda_every_kernel,cuda_no_alloc,cuda_auto} .dev-run/tests/
cp .device-bin/benches/{cuda,cuda_peers.py,eigh_classes_table.py,jsonl.py} .dev-run/benches/
cp .device-bin/examples/nuclear_shells .dev-run/examples/
cp -r .device-bin/data .device-bin/COMMIT .dev-run/
cp scripts/gpu-eigh-check.sh .dev-run/
du -sh .dev-run
