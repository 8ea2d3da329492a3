#!/usr/bin/env bash
# Builds the CPU emulation of the eigh kernels and runs it: run.sh KERNEL DTYPE ORDERS...
# (e.g. run.sh warp:16:12 f64 9 10 11 12). See eigh_emu.cpp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${TMPDIR:-/tmp}/megabatch-eigh-emu
g++ -std=c++20 -O1 -g -Wno-unknown-pragmas -pthread -o "$bin" "$here/eigh_emu.cpp"
exec "$bin" "$@"
