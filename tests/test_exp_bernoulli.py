"""The Bernoulli case study (Sec. 3): exact identities and the experiment end to end."""

import json

import numpy as np
import pytest

from lmcoverage.commands.run import run_experiment
from lmcoverage.experiments.theory_common import make_rng
from lmcoverage.metrics import coverage_mass, coverage_profile
from lmcoverage.tasks.bernoulli import (
    bernoulli_coverage,
    bernoulli_kl,
    mle_law,
    sample_mle,
    upper_quantile,
)


def test_kl_infinite_exactly_when_sample_misses_an_outcome():
    p = 0.2
    rng = make_rng([0], 1)
    p_hat = sample_mle(p, 5, 4000, rng)
    kl = bernoulli_kl(p, p_hat)
    missed = (p_hat == 0.0) | (p_hat == 1.0)
    assert missed.any() and (~missed).any()
    np.testing.assert_array_equal(np.isinf(kl), missed)
    assert np.all(kl[~missed] >= 0)


def test_kl_matches_closed_form():
    p, q = 0.3, 0.6
    expected = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    assert bernoulli_kl(p, q) == pytest.approx(expected, rel=1e-12)
    assert bernoulli_kl(p, p) == pytest.approx(0.0, abs=1e-15)


def test_coverage_tight_example_prop_d2():
    # Prop D.2: pi_D = Ber(p), pi_hat = Ber(p/N), p <= 1/2 gives Cov_N = p exactly.
    for p, n in [(0.5, 2.0), (0.3, 4.0), (0.1, 16.0)]:
        assert bernoulli_coverage(p, p / n, [n])[0] == pytest.approx(p)


def test_coverage_agrees_with_metrics_module():
    p, q = 0.35, np.array([0.0, 0.05, 0.2, 0.35, 0.9, 1.0])
    ns = np.array([1.0, 2.0, 3.0, 8.0])
    cov = bernoulli_coverage(p, q, ns)
    for i, qi in enumerate(q):
        ratio = np.array([np.log1p(-p) - np.log1p(-qi) if qi < 1 else np.inf,
                          np.log(p) - np.log(qi) if qi > 0 else np.inf])
        np.testing.assert_allclose(cov[i], coverage_profile(ratio, ns, weights=[1 - p, p]))
    np.testing.assert_allclose(coverage_mass(np.zeros((2, 3)), [0.2, 0.3, 0.5], [1.0]), 1.0)


def test_exact_law_of_mle():
    q, pmf = mle_law(0.1, 30)
    assert pmf.sum() == pytest.approx(1.0)
    kl = bernoulli_kl(0.1, q)
    assert pmf[np.isinf(kl)].sum() == pytest.approx(0.9**30 + 0.1**30)
    assert upper_quantile([0.0, 1.0, 2.0], [0.5, 0.3, 0.2], 0.5) == 0.0
    assert upper_quantile([0.0, 1.0, 2.0], [0.5, 0.3, 0.2], 0.95) == 2.0


def test_bad_input():
    with pytest.raises(ValueError, match="p_star"):
        bernoulli_kl(0.0, 0.5)
    with pytest.raises(ValueError, match="q"):
        bernoulli_kl(0.5, 1.5)
    with pytest.raises(ValueError, match="n"):
        sample_mle(0.5, 0, 3, make_rng([0]))


def test_experiment_test_preset(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("bernoulli", "test", out, [0], progress=False)
    saved = json.loads((out / "results.json").read_text())
    for key in ("sample_sizes", "coverage_ns", "monte_carlo", "C_hat", "checks",
                "worst_case_quantile_cov", "loglog_slope_worst_quantile"):
        assert key in saved
    assert (out / "report.html").is_file() and (out / "bernoulli.png").is_file()
    assert all(c["holds"] for c in res["checks"]), res["checks"]
    # same seed, same numbers
    again = run_experiment("bernoulli", "test", tmp_path / "again", [0], progress=False)
    assert again["monte_carlo"] == res["monte_carlo"]


def test_experiment_rejects_bad_config(tmp_path):
    with pytest.raises(ValueError, match="delta"):
        run_experiment("bernoulli", "test", tmp_path / "x", [0], overrides={"delta": 2.0},
                       progress=False)


@pytest.mark.slow
def test_cpu_preset(tmp_path):
    res = run_experiment("bernoulli", "cpu", tmp_path / "cpu", [0], progress=False)
    assert all(c["holds"] for c in res["checks"]), res["checks"]


def test_mle_is_restricted_to_the_papers_class():
    # Sec. 3: Pi = {Ber(p): p in (0, 1/2)}; the MLE clips k/n to 1/2, so only k = 0 misses an
    # outcome and Cov_N (N >= 2) never counts y = 0.
    from lmcoverage.experiments.bernoulli.compute import restricted_law, restricted_mle
    from lmcoverage.tasks.bernoulli import bernoulli_coverage, bernoulli_kl

    q, pmf = restricted_law(0.4, 5)
    assert q.max() == 0.5 and restricted_mle(np.array([0.9]))[0] == 0.5
    inf = np.isinf(bernoulli_kl(0.4, q))
    assert inf.tolist() == [True] + [False] * 5
    assert pmf[inf].sum() == pytest.approx(0.6**5)
    assert (bernoulli_coverage(0.4, q, [2.0])[:, 0] <= 0.4 + 1e-12).all()
