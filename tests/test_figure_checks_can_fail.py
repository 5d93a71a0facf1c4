"""Every effect check of Figures 1 and 2 fails on a deliberately broken variant.

A check that holds whatever the run did tells a reader nothing. Each case below breaks one
thing (the checkpoint order, the selector, the model) and asserts that the checks meant to
catch it fail. No training: the checkpoints are hand-built oracle models
(``experiments/graph_oracle.py``) with exact sequence probabilities, and the unbroken
trajectories are first shown to pass every check, so each failure comes from the break.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from lmcoverage.experiments import figure1, figure2
from lmcoverage.experiments import graph_common as gc
from lmcoverage.experiments import graph_oracle as go
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task

# --------------------------------------------------------------------------------------------
# Figure 1: checks 0 Spearman(KL, it), 1 Cov_N rise, 2 gain over min-KL, 3 gain over random

F1_CONFIG = {**figure1.PRESETS["cpu"], "val_per_class": 32}
SPEARMAN, RISE, OVER_MIN_KL, OVER_RANDOM = range(4)


def _fine_tuning(t: float) -> go.OracleModel:
    """Feature-blind model a fraction ``t`` of the way from the pre-training optimum
    (G1/G2/G3 uniform) to the fine-tuning optimum (0.9/0.1)."""
    start, end = np.full(3, 1 / 3), np.array([0.9, 0.1, 0.0])
    return go.OracleModel(go.rule_mixture(dict(zip((1, 2, 3), (1 - t) * start + t * end,
                                                   strict=True))))


def _giving_up(t: float) -> go.OracleModel:
    """Fine-tuning that gives up G2 prompt by prompt, as the trained models do: pi_hat(y*|x)
    rises from 5/12 to 0.9 on G1, and each G2 prompt drops from 0.45 to 0.05 once ``t``
    passes its own point u(x) in [0, 1) (a hash of the prompt); the rest of the mass is on
    the other rule's path."""
    def distribution(problem) -> dict:
        u = zlib.crc32(bytes(problem.prompt_ids)) / 2**32
        p = 5 / 12 + t * (0.9 - 5 / 12) if problem.group == 1 else 0.05 if u < t else 0.45
        return {tuple(problem.response_ids): p, go.opposite_path(problem): 1 - p}
    return go.OracleModel(distribution)


def _analyse(models: list[go.OracleModel]) -> dict:
    vset = figure1.validation_set(F1_CONFIG)
    table = ScoreTable.concat([gc.score_model(m, f"iter-{i}", vset, "support")
                               for i, m in enumerate(models)])
    onpolicy = gc.onpolicy_matrix(models, vset, F1_CONFIG["tournament_n"], n_prompts=4,
                                  samples=4, seed=0)
    return figure1.analyse(table, [40 * i for i in range(len(models))], F1_CONFIG, onpolicy)


def _failed(checks: list[dict]) -> set[int]:
    return {i for i, c in enumerate(checks) if not c["ok"]}


@pytest.fixture(scope="module")
def trajectory() -> list[go.OracleModel]:
    return [_giving_up(t) for t in np.linspace(0.0, 1.0, 11)]


@pytest.fixture(scope="module")
def intact(trajectory: list[go.OracleModel]) -> dict:
    results = _analyse(trajectory)
    assert _failed(figure1.effect_checks(results)) == set()  # the unbroken run passes all
    return results


def _with_tournament_pick(results: dict, index: int) -> dict:
    """``results`` as if the tournament had picked checkpoint ``index``."""
    pick = {**results["selected"]["tournament"], "index": index,
            "iteration": results["iterations"][index],
            "pass_at": {n: results["pass_at"][n][index] for n in figure1.PASS_NS}}
    return {**results, "selected": {**results["selected"], "tournament": pick}}


def test_figure1_shuffled_checkpoint_order_fails_the_kl_trend(
        trajectory: list[go.OracleModel]) -> None:
    order = np.random.default_rng(0).permutation(len(trajectory))
    checks = figure1.effect_checks(_analyse([trajectory[i] for i in order]))
    assert SPEARMAN in _failed(checks), checks[SPEARMAN]


def test_figure1_every_checkpoint_equal_to_pi_d_fails_trend_rise_and_gain() -> None:
    """A model equal to the reference: KL 0 throughout (Spearman undefined), nothing to
    select between."""
    checks = figure1.effect_checks(_analyse([go.OracleModel(go.data_distribution)] * 4))
    assert {SPEARMAN, RISE, OVER_MIN_KL} <= _failed(checks), checks
    assert np.isnan(checks[SPEARMAN]["value"])


def test_figure1_a_trajectory_that_keeps_the_rare_class_fails_the_rise() -> None:
    checks = figure1.effect_checks(_analyse([_fine_tuning(t) for t in np.linspace(0, 0.3, 6)]))
    assert {RISE, OVER_MIN_KL} <= _failed(checks), checks


def test_figure1_a_tournament_no_better_than_random_fails_the_control() -> None:
    """Feature-blind mixtures give every G2 prompt the same ratio, so the N = 4 tournament
    ties and its cross-entropy tie-break picks a late checkpoint: it still beats the min-KL
    pick by 0.01, but not a random pick, and the control says so."""
    checks = figure1.effect_checks(_analyse([_fine_tuning(t) for t in np.linspace(0, 1, 11)]))
    assert _failed(checks) == {OVER_RANDOM}, checks


def test_figure1_a_constant_selector_fails_both_gains(intact: dict) -> None:
    """The 'tournament' always returning the last checkpoint (here the min-KL pick)."""
    last = len(intact["iterations"]) - 1
    assert intact["selected"]["min_kl"]["index"] == last
    checks = figure1.effect_checks(_with_tournament_pick(intact, last))
    assert {OVER_MIN_KL, OVER_RANDOM} <= _failed(checks), checks


def test_figure1_a_random_selector_fails_the_random_control(intact: dict) -> None:
    """Every pick a uniformly random selector can make: the gain over min-KL alone passes for
    most of them (most checkpoints beat the late min-KL pick), which is why the random control
    exists; the control fails for every pick below the mean Pass@8."""
    pass8 = np.asarray(intact["pass_at"][8])
    verdicts = [figure1.effect_checks(_with_tournament_pick(intact, j))
                for j in range(len(pass8))]
    over_min_kl = [v[OVER_MIN_KL]["ok"] for v in verdicts]
    over_random = [v[OVER_RANDOM]["ok"] for v in verdicts]
    assert sum(over_min_kl) > len(pass8) / 2
    assert over_random == [bool(p >= pass8.mean()) for p in pass8]
    assert 0 < sum(over_random) < len(pass8)
    # the intact tournament is not among the failing picks
    assert over_random[intact["selected"]["tournament"]["index"]]


# --------------------------------------------------------------------------------------------
# Figure 2: per H class-1 KL, class-1 accuracy, Cov_16; then the KL slope and the Cov spread

F2_CONFIG = {**figure2.PRESETS["cpu"], "val_per_class": 8}
HORIZONS = (8, 16)
Distribution = Callable[[object], dict]


def _invalid(p) -> tuple[int, ...]:
    """A response that is not a path: the source node repeated."""
    return (p.response_ids[0],) * len(p.response_ids)


def _perfect(p) -> dict:
    return go.data_distribution(p)


def _half_per_decision(p) -> dict:
    """Learned class 1 and class 3; class 2 at 1/2 per decision (KL (H/2) ln 2)."""
    return go.uniform_valid_paths(p) if p.group == 2 else go.data_distribution(p)


def _class1_wrong(p) -> dict:
    """Class 1: 0.6 on an invalid response (greedy decodes it; KL ln 2.5); else as above."""
    if p.group != 1:
        return _half_per_decision(p)
    return {tuple(p.response_ids): 0.4, _invalid(p): 0.6}


def _class1_missed(p) -> dict:
    """Class 1: 1/32 on the path, so pi_D / pi_hat = 32 >= 16 on 94% of the prompts."""
    if p.group != 1:
        return _half_per_decision(p)
    return {tuple(p.response_ids): 1 / 32, _invalid(p): 31 / 32}


def _f2_results(final: Callable[[int], Distribution], shuffled: bool = False) -> dict:
    """Seeds 0, 1 at every H; checkpoints: an untrained model then ``final(H)``."""
    per_unit = {}
    for h in HORIZONS:
        task = get_task(f"figure2-h{h}")
        for seed in (0, 1):
            vset = figure2.validation_set(task, {**F2_CONFIG, "val_seed": 100 * seed})
            models = [go.OracleModel(_class1_missed), go.OracleModel(final(h))]
            if shuffled:
                models.reverse()
            table = ScoreTable.concat([gc.score_model(m, f"step-{i}", vset, "valid")
                                       for i, m in enumerate(models)])
            per_unit[(h, seed)] = figure2.unit_metrics(
                table, gc.greedy_accuracy(models[-1], vset, task))
    return figure2.aggregate(list(HORIZONS), [0, 100], per_unit)


def _failed_f2(results: dict) -> set[str]:
    """Failed checks by kind: ``kl1``, ``acc1``, ``cov16`` (any H), ``slope``, ``spread``."""
    kinds = {"class-1 KL": "kl1", "class-1 greedy": "acc1", "final Cov_16": "cov16",
             "KL(H=": "slope", "Cov_16 spread": "spread"}
    return {kind for c in figure2.effect_checks(results) if not c["ok"]
            for key, kind in kinds.items() if key in c["check"]}


def test_figure2_the_intact_variant_passes() -> None:
    assert _failed_f2(_f2_results(lambda h: _half_per_decision)) == set()


@pytest.mark.parametrize(("name", "final", "shuffled", "must_fail"), [
    # a model equal to the reference: no KL at any H, so no growth with H (0/0)
    ("pi_D itself", lambda h: _perfect, False, {"slope"}),
    ("class 1 decoded wrong", lambda h: _class1_wrong, False, {"kl1", "acc1"}),
    ("class 1 missed by 32", lambda h: _class1_missed, False, {"kl1", "acc1", "cov16"}),
    ("class 1 missed at the largest H only",
     lambda h: _class1_missed if h == max(HORIZONS) else _perfect, False, {"spread"}),
    # checkpoints in reverse order: the untrained model is read as the final one
    ("shuffled checkpoint order", lambda h: _half_per_decision, True,
     {"kl1", "acc1", "cov16"}),
])
def test_figure2_checks_fail_on_a_broken_variant(name: str, final, shuffled: bool,
                                                 must_fail: set[str]) -> None:
    failed = _failed_f2(_f2_results(final, shuffled))
    assert must_fail <= failed, (name, failed)
