"""Faults under ``--executor ray`` (#19 items 5-7), on a local Ray instance in a loopback-only
network namespace with usage statistics off (as the other Ray tests): an unreachable
``--ray-address`` (a loopback port nothing listens on) is one line and exit 1 within the
bounded wait; a task's bad input is one line and exit 2; SIGINT / SIGTERM once shards exist
exit 130 / 143 with the resume command and no traceback or Ray dump."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from lmcoverage.io import write_jsonl  # noqa: E402
from test_ray_executor import _loopback_namespace_works  # noqa: E402
from test_real_models import _tiny  # noqa: E402

pytestmark = pytest.mark.skipif(
    not _loopback_namespace_works(),
    reason="needs `unshare -n` (root or user namespaces) to keep Ray's traffic on loopback")

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import lmcoverage.engine.sharded as dist
    from lmcoverage.cli import main
    root, mode = Path(sys.argv[1]), sys.argv[2]
    real = dist._sample_shard
    def slow(*args):  # shard 0 finishes, the others wait to be interrupted
        if args[-1][0] != 0:
            time.sleep(600)
        return real(*args)
    def sample(data, out, *extra):
        return main(["sample", "--model", str(root / "m"), "--data", str(root / data), "--n",
                     "2", "--batch-size", "2", "--max-new-tokens", "3", "--out",
                     str(root / out), "--no-progress", "--device", "cpu", *extra])
    if mode == "unreachable":
        sys.exit(sample("p.jsonl", "u.jsonl", "--executor", "ray", "--ray-address",
                        "127.0.0.1:9"))
    if mode == "task-error":
        sys.exit(sample("oov.jsonl", "e.jsonl", "--executor", "ray", "--shards", "2"))
    dist._sample_shard = slow
    sys.exit(sample("p.jsonl", mode + ".jsonl", "--executor", "ray", "--shards", "3"))
""")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rayfaults")
    _tiny(d / "m", 0)
    write_jsonl(d / "p.jsonl", [{"prompt": p} for p in ("a b", "c", "a", "b b", "c a", "a")])
    write_jsonl(d / "oov.jsonl", [{"prompt": "a"}, {"prompt": "b"}, {"prompt_ids": [3, 999]}])
    (d / "script.py").write_text(SCRIPT)
    return d


def _start(root: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    cmd = f"ip link set lo up && exec {sys.executable} {root / 'script.py'} {root} {mode}"
    return subprocess.Popen(["unshare", "-n", "sh", "-c", cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _stderr_line(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    return proc.returncode, lines[0]


def test_an_unreachable_cluster_is_one_line_and_exit_1(root: Path) -> None:
    start = time.perf_counter()
    code, line = _stderr_line(_start(root, "unreachable"), timeout=120)
    assert code == 1, line
    assert "could not start or reach the Ray cluster at 127.0.0.1:9 (2 attempts)" in line
    assert time.perf_counter() - start < 90


def test_a_tasks_bad_input_is_one_line_and_exit_2(root: Path) -> None:
    code, line = _stderr_line(_start(root, "task-error"), timeout=400)
    assert code == 2, line
    assert line.startswith("lmcoverage: error: ") and "token id 999" in line, line
    assert "ray::" not in line and "pid=" not in line, line


@pytest.mark.slow  # about a minute each on a loaded 2-core machine (a Ray start apiece)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_ray_run_keeps_its_shards_and_says_how_to_resume(
        root: Path, signum: int, code: int) -> None:
    mode = signal.Signals(signum).name.lower()
    shards = root / f"{mode}.jsonl.shards"
    proc = _start(root, mode)
    deadline = time.monotonic() + 400
    while not list(shards.glob("shard-*")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no shard finished"
        time.sleep(0.5)
    # the python process is the namespace's sh exec'd: signal it directly
    os.kill(proc.pid, signum)
    got, line = _stderr_line(proc, timeout=120)
    assert got == code, line
    assert f"interrupted by {signal.Signals(signum).name}" in line, line
    assert "1 finished shard(s) are kept; resume with: lmcoverage sample" in line, line
    assert len(list(shards.glob("shard-*"))) == 1
