"""Every theory experiment's checks fail on a deliberately broken variant.

A check that passes whatever the estimator, selector or optimiser does tells a reader nothing.
For each experiment (bernoulli, horizon, sgd, distill, ttt, tournament) the real ``test``
preset (or the tournament's small run) passes every check, and each check fails on at least
one broken variant: a different estimator or model (biased, smoothed, constant, oracle), a
random selector, or swapped methods. Variants are built by patching the experiment's estimator
or selector, or by swapping entries of the real results before re-running the check functions.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from lmcoverage.commands.run import run_experiment

TOURNAMENT_SMALL = {
    "alphas": [0.3, 0.5], "ms": [16, 100], "e1_draws": 8, "family_seeds": [0, 1, 2],
    "ns": [2, 256], "heldout_sizes": [250], "draws": 8, "offset_ns": [2, 4],
    "offset_draws": 8, "offset_heldout": 1500,
}


def _holds(checks: list[Any]) -> list[bool]:
    return [c["holds"] if isinstance(c, dict) else c.holds for c in checks]


def _run(name: str, tmp: Path, tag: str, **overrides: Any) -> dict[str, Any]:
    preset = "cpu" if name == "tournament" else "test"
    extra = TOURNAMENT_SMALL if name == "tournament" else {}
    return run_experiment(name, preset, tmp / f"{name}-{tag}", [0],
                          overrides={**extra, **overrides}, progress=False)


def _no_report(monkeypatch: pytest.MonkeyPatch, compute: Any) -> None:
    """Broken variants only need their checks: skip the figures (log axes of zeros) and HTML."""
    monkeypatch.setattr(compute, "plot_figures", lambda results, out_dir: [])
    monkeypatch.setattr(compute, "write_html", lambda *args: None)


def _assert_each_fails(real: list[bool], broken: dict[str, list[bool]]) -> None:
    """All real checks hold; every check index fails in at least one broken variant."""
    assert all(real), real
    for i in range(len(real)):
        assert any(not b[i] for b in broken.values()), (
            f"check {i} holds on every broken variant: {broken}")


# ----------------------------------------------------------------------------- bernoulli


def test_bernoulli_checks_fail_on_broken_estimators(tmp_path: Path, monkeypatch) -> None:
    from lmcoverage.experiments.bernoulli import compute

    real = _holds(_run("bernoulli", tmp_path, "real")["checks"])
    _no_report(monkeypatch, compute)
    mle = compute.restricted_mle
    broken = {}
    # a biased estimator (k / (4n)): coverage no longer shrinks with n
    monkeypatch.setattr(compute, "restricted_mle", lambda f: mle(f) / 4)
    broken["biased"] = _holds(_run("bernoulli", tmp_path, "biased")["checks"])
    # add-one smoothing instead of the MLE: the KL is never infinite
    monkeypatch.setattr(compute, "restricted_mle", lambda f: mle(f + 1e-3 * (f == 0)))
    broken["smoothed"] = _holds(_run("bernoulli", tmp_path, "smoothed")["checks"])
    monkeypatch.setattr(compute, "restricted_mle", mle)
    # a sampler that does not draw from pi_D: Monte Carlo disagrees with the exact law
    draw = compute.sample_mle
    monkeypatch.setattr(compute, "sample_mle",
                        lambda p, n, reps, rng: draw(min(1.5 * p, 0.99), n, reps, rng))
    broken["wrong sampler"] = _holds(_run("bernoulli", tmp_path, "sampler")["checks"])
    monkeypatch.setattr(compute, "sample_mle", draw)
    # a constant model Ber(0): Cov_N = p* whatever delta, so no log(1/delta) growth
    monkeypatch.setattr(compute, "restricted_mle", lambda f: 0.0 * f)
    broken["constant"] = _holds(_run("bernoulli", tmp_path, "constant",
                                     rate_deltas=[0.5, 0.01])["checks"])
    _assert_each_fails(real, broken)


# ------------------------------------------------------------------------------- horizon


def test_horizon_checks_fail_on_broken_models(tmp_path: Path, monkeypatch) -> None:
    from lmcoverage.experiments.horizon import checks as horizon_checks
    from lmcoverage.experiments.horizon import compute

    res = _run("horizon", tmp_path, "real")
    real = _holds(res["checks"])
    _no_report(monkeypatch, compute)
    broken = {}
    # a model that ignores the data (theta = 0 on prompt 1)
    monkeypatch.setattr(compute, "prop32_mle", lambda inst, x, counts: np.zeros(x.shape[0]))
    broken["constant"] = _holds(_run("horizon", tmp_path, "constant")["checks"])
    # the oracle theta = theta_star: no KL at all
    monkeypatch.setattr(compute, "prop32_mle",
                        lambda inst, x, counts: np.ones(x.shape[0]))
    broken["oracle"] = _holds(_run("horizon", tmp_path, "oracle")["checks"])
    # the two rich families swapped (dense labelled pivotal)
    rich = copy.deepcopy(res["rich"])
    rich["pivotal"], rich["dense"] = rich["dense"], rich["pivotal"]
    cfg = res  # keys: horizons, rich_horizons, n, coverage_ns
    broken["swapped families"] = _holds(horizon_checks.effect_checks(
        res["prop32"], rich, cfg["horizons"], cfg["rich_horizons"], cfg["n"],
        cfg["coverage_ns"]))
    _assert_each_fails(real, broken)


# --------------------------------------------------------------------- sgd, distill, ttt


@pytest.mark.parametrize(("name", "methods"), [
    ("sgd", ("sgd", "normalized_sgd")), ("distill", ("plain", "truncated"))])
def test_sweep_checks_fail_with_swapped_optimisers(tmp_path: Path, name: str,
                                                   methods: tuple[str, str]) -> None:
    import importlib

    checks = importlib.import_module(f"lmcoverage.experiments.{name}.checks")
    res = _run(name, tmp_path, "real")
    real = _holds(res["checks"])
    best = copy.deepcopy(res["best_final_cov"])
    a, b = methods
    best[a], best[b] = best[b], best[a]
    broken = {"swapped": _holds(checks.effect_checks(best, res["horizons"]))}
    flat = copy.deepcopy(res["best_final_cov"])  # both methods equal to the baseline
    flat[b] = dict(flat[a])
    broken["tie"] = _holds(checks.effect_checks(flat, res["horizons"]))
    _assert_each_fails(real, broken)


def test_ttt_checks_fail_with_swapped_decoders(tmp_path: Path) -> None:
    from lmcoverage.experiments.ttt import checks

    res = _run("ttt", tmp_path, "real")
    real = _holds(res["checks"])
    dec = copy.deepcopy(res["decoders"])
    dec["plain"], dec["ttt"] = dec["ttt"], dec["plain"]
    broken = {"swapped": _holds(checks.effect_checks(
        dec, res["horizons"], res["coverage_ns"], res["rare_prompt_mass"]))}
    _assert_each_fails(real, broken)


# ---------------------------------------------------------------------------- tournament


def test_tournament_checks_fail_with_random_selectors(tmp_path: Path, monkeypatch) -> None:
    import lmcoverage.select as select
    from lmcoverage.experiments.tournament import compute

    real = _holds(_run("tournament", tmp_path, "real")["checks"])
    _no_report(monkeypatch, compute)
    rng = np.random.default_rng(0)

    def random_pick(loglik: Any, *args: Any, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(index=int(rng.integers(np.asarray(loglik).shape[0])))

    monkeypatch.setattr(select, "simple_tournament", random_pick)
    monkeypatch.setattr(select, "offset_tournament", random_pick)
    monkeypatch.setattr(select, "min_cross_entropy",
                        lambda loglik, *a, **k: SimpleNamespace(index=0))  # always 'cover'
    broken = {"random": _holds(_run("tournament", tmp_path, "random")["checks"])}
    _assert_each_fails(real, broken)
