"""``--executor ray`` gives the same results as the local executor (Figure 2, test preset).

Ray binds to the host's network address unless it has none, so the comparison runs in a
loopback-only network namespace (``unshare -n``), with usage statistics off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from lmcoverage.commands.run import run_experiment
    out = Path(sys.argv[1])
    for ex in ("local", "ray"):
        run_experiment("figure2", "test", out / ex, [0, 1], executor=ex, progress=False,
                       overrides={"horizons": [4], "steps": 10, "checkpoint_every": 5})
    same = all(
        json.loads((out / "local" / f).read_text()) == json.loads((out / "ray" / f).read_text())
        for f in ("results.json",))
    print("IDENTICAL" if same else "DIFFERENT")
""")


def _loopback_namespace_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _loopback_namespace_works(),
                    reason="needs `unshare -n` (root or user namespaces) to keep Ray's traffic "
                           "on a loopback-only network namespace")
def test_ray_and_local_executors_give_identical_results(tmp_path: Path) -> None:
    script = tmp_path / "compare.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    cmd = f"ip link set lo up && exec {sys.executable} {script} {tmp_path / 'runs'}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, text=True,
                          env=env, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "IDENTICAL" in proc.stdout, proc.stdout[-2000:]
    local = json.loads((tmp_path / "runs" / "local" / "results.json").read_text())
    assert local["horizons"] == [4] and local["seeds"] == [0, 1]
    assert local["iterations"] == [0, 5, 10]
