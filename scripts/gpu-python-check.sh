#!/usr/bin/env bash
# One GPU-host session for the Python bindings on CUDA (issue "pip install megabatch"): the
# wheel installed offline into the host's Python (torch 2.11, CuPy 14, CUDA 13; no network, no
# Rust), the CUDA pytest suite with MEGABATCH_REQUIRE_CUDA=1 (every CUDA test must run), the
# rest of the suite, then benches/python_peers.py (eigh against torch.linalg.eigh and
# cupy.linalg.eigh, per-call overhead against the Rust bench, attention against
# flex_attention). Most important first; each step is cut to what is left of BUDGET seconds
# (default 570), so one device call of 600 s suffices.
#
#   scripts/gpu-python-check.sh build   # here: the abi3 wheel (cuda, wgpu), the eigh_cuda bench,
#                                       # pytest's wheels and the Vulkan loader into .dev-py
#                                       # (git-ignored, ~14 MiB)
#   scripts/gpu-python-check.sh run     # on the GPU host, from the repository root (the device
#                                       # tool: carry .dev-py)
# Writes $OUT/{machine.txt,pytest_cuda.txt,pytest_cuda.xml,pytest_rest.txt,peers.jsonl}.
set -uo pipefail
case "${1:-}" in
build)
  set -e
  cd "$(dirname "$0")/.."
  rm -rf .dev-py && mkdir -p .dev-py/wheels .dev-py/gl
  # The wheel as `pip install ./python` builds it: release, both GPU features, abi3-py39.
  python3 -m maturin --version >/dev/null 2>&1 || python3 -m pip install --quiet "maturin>=1.9.4,<2"
  (cd python && python3 -m maturin build --release --out ../.dev-py/wheels)
  # The Rust bench whose 1-matrix call the Python overhead is measured against.
  cargo build --release --features cuda --bench eigh_cuda --message-format=json > /tmp/py-check-bench.json
  python3 - <<'PY'
import json, shutil
for line in open("/tmp/py-check-bench.json"):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "eigh_cuda":
        shutil.copy2(m["executable"], ".dev-py/eigh_cuda")
PY
  strip .dev-py/eigh_cuda
  # pytest for a host whose Python lacks it (installed offline only if missing).
  # (Named: pytest's backports for hosts older than 3.11, which a 3.11 resolver leaves out.)
  python3 -m pip download --quiet --only-binary=:all: --dest .dev-py/wheels pytest \
    exceptiongroup tomli typing_extensions
  cp .gl/*.deb .dev-py/gl/ 2>/dev/null || echo "no .gl/*.deb: the wgpu tests will skip on the GPU host"
  cp "$0" .dev-py/
  { git rev-parse --short HEAD; git diff --quiet || echo "+ uncommitted changes"; } > .dev-py/COMMIT
  du -sh .dev-py
  exit 0 ;;
run) ;;
*) echo "usage: $0 build|run"; exit 2 ;;
esac

cd "$(dirname "$0")/.."
D=.dev-py
[ -d "$D" ] || { echo "no $D: run '$0 build' here first and carry $D"; exit 2; }
O=${OUT:-/tmp/py-check-out}; mkdir -p "$O"
T0=$SECONDS
left() { echo $(( ${BUDGET:-570} - (SECONDS - T0) )); }
PY=${PYTHON:-python3}
for f in "$D"/gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" / ; done; ldconfig 2>/dev/null
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
# NVRTC 13: the toolkit's, else the nvidia-cuda-nvrtc wheel torch brings.
nvrtc_dir=$($PY - <<'PY' 2>/dev/null
import glob, site, os
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for hit in glob.glob(os.path.join(base, "nvidia", "cu13", "lib", "libnvrtc.so.13*")):
        print(os.path.dirname(hit)); raise SystemExit
PY
)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${nvrtc_dir:+:$nvrtc_dir}:${LD_LIBRARY_PATH:-}
export MEGABATCH_KERNEL_CACHE=/tmp/kc XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
{
  nvidia-smi --query-gpu=name,driver_version --format=csv; nproc; cat "$D/COMMIT"
  $PY -c "import sys, torch, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__)"
  $PY -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  echo "nvrtc from: ${nvrtc_dir:-/usr/local/cuda/lib64}"
} > "$O/machine.txt" 2>&1
# Into a folder of its own on PYTHONPATH: the host's environment (torch, CuPy) stays as it is,
# whether or not its Python is externally managed.
site=/tmp/megabatch-site; rm -rf "$site"
$PY -m pip install --quiet --no-deps --no-index --target "$site" "$D"/wheels/megabatch-*.whl >> "$O/machine.txt" 2>&1
$PY -c "import pytest" 2>/dev/null || $PY -m pip install --quiet --no-index --find-links "$D/wheels" --target "$site" pytest >> "$O/machine.txt" 2>&1
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import megabatch, json; print(json.dumps(megabatch.info()))" >> "$O/machine.txt" 2>&1

# The CUDA suite: every test must run (MEGABATCH_REQUIRE_CUDA=1 turns a skip into a failure).
# From the repository root, not python/ (whose megabatch/ has no compiled extension).
MEGABATCH_REQUIRE_CUDA=1 timeout $(( $(left) > 240 ? 200 : $(left) / 2 )) \
  $PY -m pytest -q -rs -p no:cacheprovider --junitxml="$O/pytest_cuda.xml" python/tests/test_cuda.py \
  > "$O/pytest_cuda.txt" 2>&1
echo "exit $?" >> "$O/pytest_cuda.txt"
# Everything else (CPU, wgpu on the NVIDIA Vulkan driver, the torch CPU tests): a regression
# check on the GPU host, cut short rather than the benchmarks.
MEGABATCH_WGPU_ADAPTER=NVIDIA timeout $(( $(left) > 420 ? 90 : 30 )) \
  $PY -m pytest -q -rs -p no:cacheprovider python/tests --ignore=python/tests/test_cuda.py \
  > "$O/pytest_rest.txt" 2>&1
echo "exit $?" >> "$O/pytest_rest.txt"
# The benchmarks, with what is left.
timeout $(( $(left) - 5 )) $PY benches/python_peers.py --budget $(( $(left) - 60 )) \
  --rust-bench "$D/eigh_cuda" > "$O/peers.jsonl" 2> "$O/peers.stderr.txt"
echo "total $((SECONDS - T0)) s" >> "$O/machine.txt"
