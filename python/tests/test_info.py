"""megabatch.info(), backend selection by environment, and the wgpu backend in the wheel."""

import os
import subprocess
import sys

import pytest

import megabatch


def test_info_keys():
    info = megabatch.info()
    assert info["version"] == megabatch.__version__
    assert info["built_with"] == ["cpu", "wgpu", "cuda"]
    assert info["backends"][0] == "cpu"
    assert set(info["backends"]) <= {"cpu", "wgpu", "cuda"}
    assert info["cpu_threads"] >= 1
    assert ("cuda" in info["backends"]) == (info["cuda"] is not None)
    assert ("wgpu" in info["backends"]) == (info["wgpu"] is not None)
    assert all(isinstance(note, str) for note in info["notes"])
    for kind in {"cuda", "wgpu"} - set(info["backends"]):
        assert any(note.startswith(kind) for note in info["notes"]), f"no note on {kind}"


def run_python(code, **env):
    """`code` in a fresh interpreter with `env` added: (exit code, output)."""
    full = dict(os.environ, **env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout + done.stderr


def test_environment_forces_a_backend():
    code = "import megabatch; print(megabatch.info()['forced'])"
    rc, out = run_python(code, MEGABATCH_BACKEND="cpu")
    assert rc == 0 and out.strip().endswith("cpu"), out
    rc, out = run_python(code, MEGABATCH_BACKEND="bogus")
    assert rc != 0 and "ValueError" in out and "MEGABATCH_BACKEND" in out, out


WGPU_CHECK = """
import sys
import numpy as np
import megabatch
info = megabatch.info()
if "wgpu" not in info["backends"]:
    print("no wgpu backend:", info["notes"])
    sys.exit(3)
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for n in (3, 12, 24):
        a = rng.standard_normal((50, n, n)).astype(dtype)
        a = a + np.swapaxes(a, -1, -2)
        plan = megabatch.EighPlan(n=n, batch=50, dtype=dtype, backend="wgpu")
        assert plan.backend == "wgpu", plan
        w, v = plan(a)
        w_cpu, v_cpu = megabatch.eigh(a, backend="cpu")
        tol = 200 * np.finfo(dtype).eps * np.abs(w_cpu).max()
        assert np.abs(w - w_cpu).max() < tol, (dtype, n, np.abs(w - w_cpu).max())
        res = np.abs(a.astype(np.float64) @ v - v * w[:, None, :]).max()
        assert res < tol * 10, (dtype, n, res)
        bad = a.copy()
        bad[7, 2, 1] = np.nan
        try:
            plan(bad)
        except megabatch.LinAlgError as e:
            assert "matrix 7" in str(e), e
        else:
            raise AssertionError("NaN not reported on wgpu")
print("wgpu ok on", info["wgpu"]["name"])
"""


def test_wgpu_backend():
    # lavapipe (Mesa's CPU Vulkan) where there is no GPU: Auto leaves a CPU rasteriser out
    # unless MEGABATCH_WGPU_ADAPTER names it. MEGABATCH_REQUIRE_WGPU=1 (CI) fails instead of
    # skipping when no adapter is found.
    adapter = os.environ.get("MEGABATCH_WGPU_ADAPTER", "llvmpipe")
    rc, out = run_python(WGPU_CHECK, MEGABATCH_WGPU_ADAPTER=adapter)
    if rc == 3 and os.environ.get("MEGABATCH_REQUIRE_WGPU") != "1":
        pytest.skip(out.strip())
    assert rc == 0, out
