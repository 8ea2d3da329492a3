#!/usr/bin/env bash
# Builds megabatch's release test, example and bench binaries with the GPU features and
# gathers them, with a runner, into one folder that a GPU host without a Rust toolchain (an
# HPC node, a cloud GPU box) can run.
#
#   scripts/gpu-bundle.sh [OUT_DIR] [FEATURES]     (defaults: gpu-bundle, cuda)
#   # then on the GPU host, in the copied folder:
#   ./run.sh tests [FILTER...]      # every test binary, MEGABATCH_REQUIRE_CUDA=1 (cuda:: for
#                                   # the CUDA modules only: tests/eigh cuda:: and so on)
#   ./run.sh bench NAME [ARGS...]   # a bench binary, e.g. eigh_cuda (JSON lines on stdout)
#   ./run.sh example                # the nuclear_shells example (reads data/ next to it)
#   ./run.sh megabatch ARGS         # the command-line tool (when FEATURES include cli)
#
# Needs on the GPU host: the NVIDIA driver (libcuda) and libnvrtc (CUDA toolkit or the
# nvidia-cuda-nvrtc wheel) on LD_LIBRARY_PATH; nothing else.
set -euo pipefail
out=${1:-gpu-bundle}
features=${2:-cuda}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rm -rf "$out"
mkdir -p "$out/tests" "$out/benches" "$out/examples" "$out/bin"

collect() { # $1: destination subfolder; stdin: cargo's JSON messages
  python3 -c '
import json, shutil, sys
dest = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        kinds = m["target"]["kind"]
        name = m["target"]["name"]
        sub = ("examples" if "example" in kinds else "benches" if "bench" in kinds
               else "bin" if "bin" in kinds else "tests")
        if sub == dest:
            shutil.copy2(m["executable"], f"{sys.argv[2]}/{sub}/{name}")
' "$1" "$out"
}

cargo test --release --features "$features" --no-run --message-format=json | collect tests
cargo build --release --features "$features" --examples --message-format=json | collect examples
# The main example is a package of its own (examples/nuclear_shells) with the library's GPU
# features; it goes beside the others.
shells_features=$( (tr ',' '\n' <<< "$features" | grep -xE 'cuda|wgpu' || true) | paste -sd, -)
cargo build --release -p nuclear_shells --features "$shells_features" --message-format=json | collect bin
mv "$out/bin/nuclear_shells" "$out/examples/nuclear_shells"
cargo build --release --features "$features" --benches --message-format=json | collect benches
if [[ ",$features," == *",cli,"* ]]; then
  cargo build --release --features "$features" --bins --message-format=json | collect bin
fi
strip "$out"/tests/* "$out"/examples/* "$out"/benches/* "$out"/bin/* 2>/dev/null || true
cp -r data "$out/data"
cp benches/cuda_peers.py benches/cuda_table.py benches/eigh_classes_table.py benches/jsonl.py "$out/benches/" 2>/dev/null || true
git rev-parse --short HEAD > "$out/COMMIT" 2>/dev/null || true
git diff --quiet 2>/dev/null || echo "+ uncommitted changes" >> "$out/COMMIT"

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the bundled megabatch binaries; see scripts/gpu-bundle.sh in the repository.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export MEGABATCH_REQUIRE_CUDA=${MEGABATCH_REQUIRE_CUDA:-1}
case "${1:-tests}" in
  tests)
    shift || true
    status=0
    for t in tests/*; do
      # The CLI tests find the tool by its build-machine path (CARGO_BIN_EXE_megabatch).
      [[ $(basename "$t") == cli ]] && continue
      echo "=== $t"
      "$t" "$@" || status=1
    done
    exit $status ;;
  bench) shift; b=${1:?which bench: $(ls benches | grep -v "\.py$" | tr "\n" " ")}; shift; exec "benches/$b" "$@" ;;
  megabatch) shift; exec bin/megabatch "$@" ;;
  example) shift; exec examples/nuclear_shells "$@" ;;
  *) echo "usage: run.sh tests [FILTER...]|bench NAME [ARGS]|megabatch ARGS|example"; exit 2 ;;
esac
RUN
chmod +x "$out/run.sh"
echo "bundle in $out: $(ls "$out"/tests | wc -l) test binaries, $(ls "$out"/benches | wc -l) bench files"
