"""The analysis path without training: oracle models reproduce the hand-derived optima."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmcoverage.engine.table import Examples
from lmcoverage.experiments import graph_common as gc
from lmcoverage.experiments import graph_oracle as go
from lmcoverage.tasks import get_task, mixture_weights

FIG1_SMALL = {"layers": 4, "nodes_per_layer": 3}


def _vset(task, n_per_class: int = 40, seed: int = 3) -> Examples:
    return gc.make_validation_set(
        {g: task.sample(n_per_class, seed=seed + g, group=g) for g in task.class_weights},
        task.class_weights)


def _metrics(model: gc.SequenceModel, vset: Examples, correct: gc.CorrectSet,
             group: str | None = None) -> dict:
    table = gc.score_model(model, "oracle", vset, correct=correct)
    return gc.curve_metrics(table, cov_ns=(2, 4, 8, 16), pass_ns=(1, 8), group=group)


@pytest.mark.parametrize("options", [{}, FIG1_SMALL])
def test_figure1_finetuned_feature_blind_optimum(options: dict) -> None:
    task = get_task("figure1-finetune", **options)
    m = _metrics(go.OracleModel(go.rule_mixture({1: 0.9, 2: 0.1})), _vset(task), "support")
    assert m["kl"][0] == pytest.approx(0.9 * math.log(1 / 0.9) + 0.1 * math.log(10), abs=1e-12)
    assert round(m["kl"][0], 3) == 0.325
    for n in (2, 4, 8):
        assert m["cov"][n][0] == pytest.approx(0.10, abs=1e-12)
    assert m["pass_at"][8][0] == pytest.approx(0.9 * (1 - 0.1**8) + 0.1 * (1 - 0.9**8), abs=1e-12)
    assert round(m["pass_at"][8][0], 3) == 0.957


@pytest.mark.parametrize("options", [{}, FIG1_SMALL])
def test_figure1_pretrained_feature_blind_optimum(options: dict) -> None:
    task = get_task("figure1-finetune", **options)
    m = _metrics(go.OracleModel(go.rule_mixture({1: 1, 2: 1, 3: 1})), _vset(task), "support")
    assert m["kl"][0] == pytest.approx(math.log(12 / 5), abs=1e-12)
    assert round(m["kl"][0], 3) == 0.875
    assert m["cov"][2][0] == pytest.approx(1.0, abs=1e-12)
    assert m["cov"][4][0] == 0.0 and m["cov"][8][0] == 0.0
    assert m["pass_at"][8][0] == pytest.approx(1 - (7 / 12) ** 8, abs=1e-12)
    assert round(m["pass_at"][8][0], 3) == 0.987


def test_half_on_both_classes_pass_at_8() -> None:
    """A checkpoint at p(y*) = 1/2 on both classes' paths: Pass@8 = 1 - 2^-8 ~ 0.996."""
    task = get_task("figure1-finetune", **FIG1_SMALL)
    m = _metrics(go.OracleModel(go.rule_mixture({1: 0.5, 2: 0.5})), _vset(task), "support")
    assert m["pass_at"][8][0] == pytest.approx(1 - 0.5**8, abs=1e-12)
    assert round(m["pass_at"][8][0], 3) == 0.996


@pytest.mark.parametrize("horizon", [8, 16])
def test_figure2_half_per_decision(horizon: int) -> None:
    task = get_task(f"figure2-h{horizon}")
    vset = _vset(task, n_per_class=12)
    model = go.OracleModel(lambda p: go.uniform_valid_paths(p) if p.group == 2
                           else go.data_distribution(p))
    class2 = _metrics(model, vset, "valid", group="2")
    assert class2["kl"][0] == pytest.approx(horizon / 2 * math.log(2), abs=1e-12)
    mix = _metrics(model, vset, "valid")
    assert mix["kl"][0] == pytest.approx(0.05 * horizon / 2 * math.log(2), abs=1e-12)
    # log-ratio (H/2) ln 2 >= ln 16 for H >= 8: the event is inclusive, exactly on it at H = 8.
    assert mix["cov"][16][0] == pytest.approx(0.05, abs=1e-12)
    edge = 2 ** (horizon // 2)  # class-2 log-ratio is exactly ln(edge)
    table = gc.score_model(model, "oracle", vset, correct="valid")
    cov = gc.curve_metrics(table, cov_ns=(edge, edge + 1), pass_ns=(1,))["cov"]
    assert cov[edge][0] == pytest.approx(0.05, abs=1e-12)
    assert cov[edge + 1][0] == 0.0
    assert mix["pass_at"][1][0] == pytest.approx(1.0, abs=1e-12)


def test_greedy_accuracy_of_oracles() -> None:
    task = get_task("figure2-h8")
    vset = _vset(task, n_per_class=6)
    perfect = gc.greedy_accuracy(go.OracleModel(go.data_distribution), vset, task)
    assert perfect == {1: 1.0, 2: 1.0, 3: 1.0}
    # A model that puts all mass on a dead-end path is never correct.
    def wrong(p):
        path = list(p.valid_paths[0])
        path[1] = max(p.prompt_ids) + 100
        return {tuple(path): 1.0}
    assert gc.greedy_accuracy(go.OracleModel(wrong), vset, task) == {1: 0.0, 2: 0.0, 3: 0.0}


def test_mixture_weights() -> None:
    w = mixture_weights([1, 1, 2, 3, 3, 3], {1: 0.5, 2: 0.3, 3: 0.2})
    np.testing.assert_allclose(w, [0.25, 0.25, 0.3, 0.2 / 3, 0.2 / 3, 0.2 / 3])
    with pytest.raises(ValueError, match="class_weights"):
        mixture_weights([1, 2], {1: 0.0})
    with pytest.raises(ValueError, match="groups"):
        mixture_weights([], {1: 1.0})
    with pytest.raises(ValueError, match=r"class 3 \(weight 0.01\) has no examples"):
        mixture_weights([1, 2], {1: 0.94, 2: 0.05, 3: 0.01})
