"""Shared helpers of the theory experiments: seeded streams, resumable units, batched Cov_N."""

import numpy as np
import pytest

from lmcoverage.experiments.theory_common import log_grid, make_rng, run_units
from lmcoverage.metrics import coverage_mass, coverage_profile


class RecordingExecutor:
    name = "recording"

    def __init__(self):
        self.batches = []

    def map(self, fn, items):
        self.batches.append(len(items))
        return [fn(item) for item in items]


def test_run_units_computes_once_then_resumes(tmp_path):
    calls = []

    def unit(k):
        def compute():
            calls.append(k)
            return {"value": np.arange(3) * k, "scalar": k}
        return compute

    ex = RecordingExecutor()
    first = run_units(tmp_path, {"a": unit(1), "b": unit(2)}, ex)
    assert calls == [1, 2] and ex.batches == [2]
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["a.npz", "b.npz"]
    again = run_units(tmp_path, {"a": unit(1), "b": unit(2), "c": unit(3)}, ex)
    assert calls == [1, 2, 3] and ex.batches == [2, 1]
    np.testing.assert_array_equal(again["b"]["value"], first["b"]["value"])
    assert int(again["c"]["scalar"]) == 3


def test_run_units_keeps_finished_units_when_a_later_one_fails(tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        run_units(tmp_path, {"ok": lambda: {"x": np.ones(2)}, "bad": boom})
    assert (tmp_path / "units" / "ok.npz").is_file()
    assert not (tmp_path / "units" / "bad.npz").exists()


def test_make_rng_is_reproducible_and_keyed():
    a = make_rng([0, 1], 5).random(4)
    np.testing.assert_array_equal(a, make_rng([0, 1], 5).random(4))
    assert not np.array_equal(a, make_rng([0, 1], 6).random(4))
    assert not np.array_equal(a, make_rng([0], 5).random(4))
    with pytest.raises(ValueError, match="seeds"):
        make_rng([])


def test_coverage_mass_matches_metrics_rowwise():
    rng = make_rng([9])
    ratio = rng.normal(0.5, 1.5, size=(4, 30))
    ratio[0, 3] = np.inf
    prob = rng.random(30)
    prob /= prob.sum()
    ns = [1.0, 2.0, 8.0, 100.0]
    cov = coverage_mass(ratio, prob, ns)
    for r in range(4):
        np.testing.assert_allclose(cov[r], coverage_profile(ratio[r], ns, weights=prob))
    with pytest.raises(ValueError, match="ns"):
        coverage_mass(ratio, prob, [0.5])


def test_log_grid():
    grid = log_grid(1e-8, 1e-1, 8)
    assert len(grid) == 57 and grid[0] == pytest.approx(1e-8) and grid[-1] == pytest.approx(0.1)
    np.testing.assert_allclose(np.diff(np.log10(grid)), 1 / 8)
    with pytest.raises(ValueError, match="log_grid"):
        log_grid(1.0, 0.5, 4)
