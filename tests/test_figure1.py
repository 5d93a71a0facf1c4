"""Figure 1's analysis, selection, plot and report on an oracle fine-tuning trajectory.

No training: the candidates are hand-built feature-blind models moving from the pre-training
optimum (G1/G2/G3 uniform) to the fine-tuning optimum (0.9/0.1), so the numbers are exact and
the effects are known in advance (the hand-derived feature-blind optima).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lmcoverage.experiments import figure1
from lmcoverage.experiments import graph_common as gc
from lmcoverage.experiments import graph_oracle as go
from lmcoverage.scoretable import ScoreTable

CONFIG = {**figure1.PRESETS["cpu"], "val_per_class": 64}


def _trajectory(ts: np.ndarray) -> list[go.OracleModel]:
    start, end = np.full(3, 1 / 3), np.array([0.9, 0.1, 0.0])
    return [go.OracleModel(go.rule_mixture(dict(zip((1, 2, 3), (1 - t) * start + t * end,
                                                    strict=True)))) for t in ts]


@pytest.fixture(scope="module")
def oracle_results() -> dict:
    vset = figure1.validation_set(CONFIG)
    models = _trajectory(np.linspace(0.0, 1.0, 11))
    iterations = [100 * i for i in range(len(models))]
    table = ScoreTable.concat([gc.score_model(m, f"iter-{it}", vset, "support")
                               for m, it in zip(models, iterations, strict=True)])
    onpolicy = gc.onpolicy_matrix(models, vset, CONFIG["tournament_n"], n_prompts=16,
                                  samples=8, seed=0)
    results = figure1.analyse(table, iterations, CONFIG, onpolicy)
    results["reference"] = figure1.reference_optima(vset)
    return results


def test_trajectory_endpoints_are_the_reference_optima(oracle_results: dict) -> None:
    r = oracle_results
    assert r["kl"][0] == pytest.approx(r["reference"]["pretrain_optimum"]["kl"], abs=1e-12)
    assert r["kl"][-1] == pytest.approx(r["reference"]["finetune_optimum"]["kl"], abs=1e-12)
    assert r["pass_at"][8][-1] == pytest.approx(0.9 * (1 - 0.1**8) + 0.1 * (1 - 0.9**8))
    assert r["tournament_n"] == 4


def test_oracle_trajectory_shows_every_effect(oracle_results: dict) -> None:
    r = oracle_results
    assert r["selected"]["min_kl"]["iteration"] == r["iterations"][-1]
    # N = 4 tournament: it never picks a candidate whose G2 likelihood ratio to another is >= 4.
    assert r["selected"]["tournament"]["index"] < len(r["iterations"]) - 1
    checks = figure1.effect_checks(r)
    # The random control fails here: feature-blind mixtures tie the tournament, whose
    # cross-entropy tie-break picks late (tests/test_figure_checks_can_fail.py).
    assert [c["ok"] for c in checks] == [True, True, True, False], checks
    assert checks[0]["value"] == pytest.approx(-1.0)  # KL strictly decreasing


def test_effect_checks_fail_on_a_flat_trajectory() -> None:
    """The checks can fail: a trajectory that never gives up G2 shows no effect."""
    vset = figure1.validation_set({**CONFIG, "val_per_class": 16})
    ts = np.linspace(0.0, 0.3, 6)
    models = _trajectory(ts)
    table = ScoreTable.concat([gc.score_model(m, f"iter-{i}", vset, "support")
                               for i, m in enumerate(models)])
    onpolicy = gc.onpolicy_matrix(models, vset, 4, n_prompts=4, samples=4, seed=1)
    res = figure1.analyse(table, list(range(len(models))), CONFIG, onpolicy)
    checks = figure1.effect_checks(res)
    assert checks[0]["ok"]  # KL still falls
    assert not checks[1]["ok"] and not checks[2]["ok"]


def test_results_serialise_plot_and_report(oracle_results: dict, tmp_path) -> None:
    from lmcoverage.io import atomic_write_json

    r = {**oracle_results, "effect_checks": figure1.effect_checks(oracle_results)}
    atomic_write_json(tmp_path / "results.json", r)
    back = json.loads((tmp_path / "results.json").read_text())
    for key in ("iterations", "kl", "cov", "pass_at", "selected", "tournament_n"):
        assert key in back
    assert set(back["selected"]) == set(figure1.METHODS)
    for s in back["selected"].values():
        assert {"index", "iteration", "pass_at"} <= set(s)
    # the checks read the same from JSON (string keys) as in memory
    assert figure1.effect_checks(back) == figure1.effect_checks(r)
    report = figure1.write_report(back, CONFIG, tmp_path)
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "Pass@8" in html and "tournament" in html
    assert (tmp_path / "figure1.png").stat().st_size > 10_000
    assert math.isfinite(back["kl"][0])


def test_non_integer_levels_use_the_inclusive_tie_rule() -> None:
    """Cov_4.6 and the N = 5.7 tournament: a ratio within TIE_ATOL below N counts as reaching
    it (Eq. 1's event X >= log N, inclusive), one 2e-9 nats below does not."""
    from lmcoverage import select
    from lmcoverage.metrics.threshold import TIE_ATOL

    n = 4.6
    gaps = [0.0, 0.5 * TIE_ATOL, 2 * TIE_ATOL, 1.0]  # log-ratio = log N - gap
    table = ScoreTable.from_columns(
        model=["a"] * 4, example_id=np.arange(4), loglik=[-(math.log(n) - g) for g in gaps],
        loglik_data=np.zeros(4), weight=np.full(4, 0.25), group=["1"] * 4,
        mass_correct=np.full(4, 0.5))
    m = gc.curve_metrics(table, cov_ns=(n, 5.7), pass_ns=(1,))
    assert set(m["cov"]) == {4.6, 5.7}
    assert m["cov"][4.6] == [0.5]  # gaps 0 and TIE_ATOL / 2 count
    assert m["cov"][5.7] == [0.0]
    # Candidate 0 is 5.7 times as likely as candidate 1 on every example: at N = 5.7 it beats
    # candidate 1 on all of them (the same inclusive rule), just above 5.7 on none.
    loglik = np.array([[0.0] * 3, [-math.log(5.7)] * 3])
    assert select.simple_tournament(loglik, 5.7).statistic.tolist() == [0.0, 1.0]
    assert select.simple_tournament(loglik, 5.7 + 1e-6).statistic.tolist() == [0.0, 0.0]
