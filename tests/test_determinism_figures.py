"""Same seed, same numbers for Figure 2: two runs in one process give byte-identical
results.json whatever the process's global random state, and results.json records the
thread count, library versions and CPU kernel set every unit ran with (float sums depend on
them, so the promise holds on one machine at a fixed count; docs/experiments/figures.md)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from lmcoverage.cli import main
from lmcoverage.experiments.numerics import numeric_environment

SHORT = ["--set", "steps=10", "--set", "checkpoint_every=5"]


def _run(out: Path, *extra: str) -> bytes:
    assert main(["run", "figure2", "--preset", "test", "--out", str(out), "--no-progress",
                 *SHORT, *extra]) == 0
    return (out / "results.json").read_bytes()


def test_figure2_results_are_identical_across_runs_in_one_process(tmp_path: Path) -> None:
    # the legacy global numpy state on purpose: the library must not draw from it
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    with torch.random.fork_rng(devices=[]):
        outputs = []
        for seed, out in ((1, "a"), (2, "b")):  # other global random states each time
            torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)  # noqa: NPY002
            outputs.append(_run(tmp_path / out, "--seeds", "0,1"))
    np.random.set_state(numpy_state), random.setstate(python_state)  # noqa: NPY002
    first, second = outputs
    assert first == second
    results = json.loads(first)
    units = [f"h{h}-seed{s}" for h in (4, 8) for s in (0, 1)]
    assert results["threads"] == dict.fromkeys(units, 1)
    assert results["environment"] == dict.fromkeys(units, numeric_environment())
    assert results["environment"]["h4-seed0"]["cpu_kernels"] == (
        torch.backends.cpu.get_cpu_capability())
    assert json.loads((tmp_path / "a" / "units" / "h8-seed1" / "metrics.json").read_text()
                      )["threads"] == 1


def test_figure2_records_the_thread_count(tmp_path: Path) -> None:
    results = json.loads(_run(tmp_path / "two", "--set", "horizons=[4]", "--threads", "2"))
    assert results["threads"] == {"h4-seed0": 2}
    assert torch.get_num_threads() == 1  # the caller's count came back
