"""megabatch.calibrate(): measures (quick), writes the calibration JSON where asked, and the
next process loads it (its machine key matches)."""

import json
import os
import subprocess
import sys


def test_calibrate_writes_a_profile_the_next_process_loads(tmp_path):
    path = tmp_path / "calibration.json"
    code = (
        "import json, megabatch; r = megabatch.calibrate(quick=True, path=%r); print(json.dumps(r))" % str(path)
    )
    # A fresh interpreter on the CPU alone (no wgpu adapter named: lavapipe stays out), so the
    # measurement takes seconds.
    env = {k: v for k, v in os.environ.items() if k not in ("MEGABATCH_WGPU_ADAPTER", "MEGABATCH_BACKEND")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["path"] == str(path) and result["seconds"] > 0 and "cpu" in result["backends"]
    saved = json.loads(path.read_text())
    assert isinstance(saved, dict) and saved
    # The next process, pointed at the file, uses it: no note about a stale or foreign file.
    env["MEGABATCH_CALIBRATION"] = str(path)
    code = "import megabatch; print([n for n in megabatch.info()['notes'] if 'calibration' in n])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
