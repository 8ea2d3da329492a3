#!/usr/bin/env python3
"""Compiles the shared kernel translation unit (backends/cuda/nvrtc.rs's KERNEL_SOURCES, in its
order) with NVRTC for one architecture and prints ptxas's resource report: registers, shared
memory, stack frame and spills per kernel. A development aid that needs no GPU, only libnvrtc
(the nvidia-cuda-nvrtc wheel that .ci/run installs into target/ci-nvrtc).

Usage: scripts/nvrtc-check.py [--arch sm_90] [--filter eigh_warp] [--time]
"""
import ctypes
import glob
import os
import re
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_nvrtc():
    candidates = glob.glob(os.path.join(root, "target/ci-nvrtc/nvidia/cu13/lib/libnvrtc.so.13"))
    candidates.append("libnvrtc.so.13")
    for c in candidates:
        try:
            return ctypes.CDLL(c)
        except OSError:
            pass
    sys.exit("libnvrtc not found (pip install --target target/ci-nvrtc nvidia-cuda-nvrtc==13.0.*)")


def joined_source():
    rs = open(os.path.join(root, "backends/cuda/nvrtc.rs")).read()
    block = rs[rs.index("pub const KERNEL_SOURCES"):]
    block = block[: block.index("];")]
    out = []
    for name, path in re.findall(r'\(\s*"([^"]+)",\s*include_str!\("\.\./\.\./([^"]+)"\)', block):
        out.append(f"// ---- {name}\n" + open(os.path.join(root, path)).read() + "\n")
    return "".join(out)


def main():
    args = sys.argv[1:]
    arch = args[args.index("--arch") + 1] if "--arch" in args else "sm_90"
    filt = args[args.index("--filter") + 1] if "--filter" in args else None
    lib = load_nvrtc()
    prog = ctypes.c_void_p()
    src = joined_source().encode()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"megabatch.cu", 0, None, None) == 0
    opts = [f"--gpu-architecture={arch}", "--std=c++17", "--device-as-default-execution-space",
            "--ptxas-options=-v"]
    copts = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    t0 = time.time()
    rc = lib.nvrtcCompileProgram(prog, len(opts), copts)
    elapsed = time.time() - t0
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace")
    if rc != 0:
        print(text)
        sys.exit(f"NVRTC failed ({rc})")
    # ptxas prints "Compiling entry function 'x'" then "Used N registers, ..." lines.
    current = None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = m.group(1)
            continue
        if current and (filt is None or filt in current) and (
                "Used" in line or "stack frame" in line or "spill" in line):
            if "stack frame" in line and "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" in line:
                continue
            print(f"{current}: {line.strip().removeprefix('ptxas info    :').strip()}")
    print(f"compiled for {arch} in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
