"""Figure 2's analysis, aggregation over seeds, checks, plot and report, with oracle models.

No training: per (H, seed) the "checkpoints" are hand-built models, so the expected numbers
are exact (hand-derived feature-blind optima).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lmcoverage.experiments import figure2
from lmcoverage.experiments import graph_common as gc
from lmcoverage.experiments import graph_oracle as go
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task

CONFIG = {**figure2.PRESETS["cpu"], "val_per_class": 16}


def _half_per_decision(p):
    """Perfect on classes 1 and 3, 1/2 on each class-2 decision: class-2 KL (H/2) ln 2."""
    return go.uniform_valid_paths(p) if p.group == 2 else go.data_distribution(p)


def _copy_first_decision(p):
    """Class 2: 1/2 on the first decision, then consistent: class-2 KL ln 2 at every H."""
    if p.group != 2:
        return go.data_distribution(p)
    return {tuple(p.response_ids): 0.5, go.opposite_path(p): 0.5}


def _uniform(p):
    return go.uniform_valid_paths(p)


def _unit(horizon: int, seed: int, final) -> dict:
    task = get_task(f"figure2-h{horizon}")
    vset = figure2.validation_set(task, {**CONFIG, "val_seed": 100 * seed})
    models = [go.OracleModel(_uniform), go.OracleModel(final)]
    table = ScoreTable.concat([gc.score_model(m, f"step-{i}", vset, "valid")
                               for i, m in enumerate(models)])
    return figure2.unit_metrics(table, gc.greedy_accuracy(models[-1], vset, task))


def _results(final, horizons=(8, 16), seeds=(0, 1, 2)) -> dict:
    per_unit = {(h, s): _unit(h, s, final) for h in horizons for s in seeds}
    results = figure2.aggregate(list(horizons), [0, 100], per_unit)
    return {**results, "training_data": figure2.training_data(CONFIG)}


def test_half_per_decision_shows_the_effect() -> None:
    r = _results(_half_per_decision)
    e8, e16 = r["by_horizon"]["8"], r["by_horizon"]["16"]
    assert e8["kl_median"][-1] == pytest.approx(0.05 * 4 * math.log(2), abs=1e-12)
    assert e16["kl_median"][-1] == pytest.approx(0.05 * 8 * math.log(2), abs=1e-12)
    assert e8["cov_16_median"][-1] == pytest.approx(0.05, abs=1e-12)  # ln 16: on the threshold
    assert e8["cov_8_median"][-1] == pytest.approx(0.05, abs=1e-12)
    assert e16["per_class"]["1"] == {"kl": 0.0, "cov_16": 0.0, "accuracy": 1.0}
    assert e16["per_class"]["2"]["kl"] == pytest.approx(8 * math.log(2))
    assert len(e8["kl"]) == 3 and len(e8["kl"][0]) == 2  # (seeds, checkpoints)
    assert all(c["ok"] for c in figure2.effect_checks(r))


def test_copying_the_first_decision_fails_the_kl_slope_check() -> None:
    """The feature-blind caveat: class-2 KL ln 2 at every H, so KL does not grow with H."""
    r = _results(_copy_first_decision)
    checks = {c["check"]: c for c in figure2.effect_checks(r)}
    slope = next(c for name, c in checks.items() if name.startswith("KL(H="))
    assert slope["value"] == pytest.approx(1.0) and not slope["ok"]


def test_bands_are_quantiles_over_seeds() -> None:
    vals = np.arange(16 * 3, dtype=float).reshape(16, 3)
    med, lo, hi = gc.quantile_band(vals)
    np.testing.assert_allclose(med, np.median(vals, axis=0))
    np.testing.assert_allclose(lo, np.quantile(vals, 1 / 16, axis=0))
    np.testing.assert_allclose(hi, np.quantile(vals, 15 / 16, axis=0))
    with pytest.raises(ValueError, match="seeds, checkpoints"):
        gc.quantile_band(np.zeros(3))


def test_results_serialise_plot_and_report(tmp_path) -> None:
    from lmcoverage.io import atomic_write_json

    r = _results(_half_per_decision, seeds=(0, 1))
    atomic_write_json(tmp_path / "results.json", r)
    back = json.loads((tmp_path / "results.json").read_text())
    entry = back["by_horizon"]["16"]
    for key in ("kl", "cov_16", "cov_8", "kl_median", "cov_16_median", "cov_8_median",
                "kl_band", "cov_16_band", "per_class"):
        assert key in entry
    assert set(entry["per_class"]) == {"1", "2", "3"}
    assert figure2.effect_checks(back) == figure2.effect_checks(r)
    html = figure2.write_report(back, CONFIG, tmp_path).read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "Cov_16" in html
    assert "a fixed set of 4,800 problems (10 epochs)" in html
