"""verify.paired: the two-way paired bootstrap of D_N = rho_cov - rho_ce and selector regret."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, spearmanr

from lmcoverage.verify.paired import paired_rho_difference, selector_regret

N = 16
T = np.log(N / 2)  # Cov_{N/2}: log-ratio >= log 8
LATENT = np.array([[1.0, -0.7, 0.3], [-0.7, 1.0, -0.2], [0.3, -0.2, 1.0]])


def _population(rng: np.random.Generator, size: int) -> tuple[np.ndarray, ...]:
    """Candidates: a drives Pass@N, b the chance pi of a covered example (log-ratio >= log 8),
    g the mean negative log-likelihood of the others; CE = pi (T + 0.2) + (1 - pi) g."""
    z = rng.multivariate_normal(np.zeros(3), LATENT, size=size)
    pi = norm.cdf(0.8 * z[:, 1] - 1.0)
    g = np.minimum(0.5 * np.exp(0.6 * z[:, 2]), 1.0)
    return z[:, 0], pi, g, pi * (T + 0.2) + (1 - pi) * g


def _dataset(rng: np.random.Generator, cands: int = 30, prompts: int = 100, per: int = 2):
    """Per-prompt Pass@N and per-example log-likelihoods (loglik_data = 0: a point mass)."""
    a, pi, g, _ = _population(rng, cands)
    pass_n = norm.cdf(a[:, None] + rng.normal(0, 0.5, prompts)[None, :])
    examples = prompts * per
    covered = rng.random((cands, examples)) < pi[:, None]
    nll = np.where(covered, T + rng.exponential(0.2, (cands, examples)),
                   rng.random((cands, examples)) * 2 * g[:, None])
    return pass_n, -nll, np.zeros(examples), np.repeat(np.arange(prompts), per)


def test_interval_covers_the_true_difference_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(123)
    a, pi, _, ce = _population(rng, 400_000)  # the population: rank correlations are exact
    truth = spearmanr(a, pi).statistic - spearmanr(a, ce).statistic
    assert truth < -0.2  # a real difference: Cov_8 predicts Pass@16 better than CE
    sims, hits, inside = 250, 0, 0
    for s in range(sims):
        r = paired_rho_difference(*_dataset(rng), n=N, resamples=300, seed=s)
        assert r.lo is not None and r.hi is not None and r.reason is None
        hits += r.lo <= truth <= r.hi
        inside += r.lo < r.delta < r.hi
    assert 0.88 <= hits / sims <= 0.99, hits / sims  # nominal 0.95 (binomial s.e. 0.013)
    assert inside == sims  # BCa: the point estimate is never an end point


def test_point_estimate_matches_scipy_and_infinite_ce_ranks_last() -> None:
    rng = np.random.default_rng(0)
    pass_n, loglik, data, prompt = _dataset(rng, cands=6, prompts=20)
    loglik[2, 5] = -np.inf  # candidate 2: infinite cross-entropy
    r = paired_rho_difference(pass_n, loglik, data, prompt, n=N, resamples=200)
    passes = pass_n.mean(axis=1)
    cov = (data - loglik >= T - 1e-9).mean(axis=1)
    ce = -loglik.mean(axis=1)
    assert ce[2] == np.inf
    assert r.rho_cov == pytest.approx(spearmanr(passes, cov).statistic)
    assert r.rho_ce == pytest.approx(spearmanr(passes, ce).statistic)  # +inf ranked last
    assert r.delta == pytest.approx(r.rho_cov - r.rho_ce)
    again = paired_rho_difference(pass_n, loglik, data, prompt, n=N, resamples=200)
    assert (again.lo, again.hi) == (r.lo, r.hi)  # same seed, same interval


def test_fewer_than_three_candidates_give_no_correlation() -> None:
    pass_n, loglik, data, prompt = _dataset(np.random.default_rng(1), cands=2, prompts=10)
    r = paired_rho_difference(pass_n, loglik, data, prompt, n=N)
    assert r.delta is None and r.lo is None and "at least 3" in (r.reason or "")


def test_regret_of_a_wrong_pick_is_its_gap_to_the_best() -> None:
    rng = np.random.default_rng(2)
    prompts = 40
    loglik_data = np.full(prompts, -1.0)
    # candidate 0 matches pi_D (the oracle and KL pick it), candidate 1 is worse everywhere
    loglik = np.stack([loglik_data, loglik_data - 3.0, loglik_data - 0.5])
    pass_n = np.stack([np.full(prompts, 0.2), np.full(prompts, 0.9), np.full(prompts, 0.5)])
    pass_n += rng.uniform(-0.05, 0.05, pass_n.shape)
    out = selector_regret(pass_n, loglik, loglik_data, np.arange(prompts), n=4,
                          names=["ref", "good", "mid"], resamples=200)
    by = {r.selector: r for r in out}
    assert by["oracle"].pick == "ref" and by["kl"].pick == "ref"
    best = pass_n.mean(1).max()
    assert by["oracle"].regret == pytest.approx(best - pass_n[0].mean())
    assert by["oracle"].lo is not None and by["oracle"].lo <= by["oracle"].regret
    assert by["oracle"].lo > 0.5  # the wrong pick's regret is large on every resample


def test_vectorised_picks_match_the_selectors() -> None:
    from lmcoverage.select.registry import get_selector
    from lmcoverage.select.result import rank_candidates
    from lmcoverage.verify.paired import SELECTORS, _selector_statistics

    rng = np.random.default_rng(3)
    names = [f"c{i}" for i in range(7)]
    for trial in range(20):
        data = -rng.exponential(2.0, 30)
        loglik = data[None, :] - rng.exponential(rng.uniform(0.2, 3.0, (7, 1)), (7, 30))
        loglik = np.round(loglik, 1)  # ties on purpose
        if trial % 4 == 0:
            loglik[trial % 7, 3] = -np.inf
        w = rng.integers(0, 3, 30).astype(float) + (np.arange(30) == 0)
        stats = _selector_statistics(loglik, data, w[None, :], 8, SELECTORS)
        for sel in SELECTORS:
            want = get_selector(sel)(loglik, n=4.0, loglik_data=data, weights=w,
                                     names=names).index  # N/2, as selector_regret
            got = rank_candidates(stats[sel][0], stats["cross-entropy"][0], names)[0]
            assert got == want, (trial, sel)


def test_a_point_mass_at_the_estimate_is_flagged_not_read_as_an_interval() -> None:
    from lmcoverage.verify.paired import bca_interval

    draws = np.r_[np.full(990, -0.3), np.linspace(-0.5, 0.2, 10)]
    lo, hi, reason = bca_interval(-0.3, draws, [np.zeros(3)], 0.95)
    assert lo == hi == -0.3 and reason is not None and "not informative" in reason
    lo, hi, reason = bca_interval(0.0, np.random.default_rng(0).normal(0, 1, 2000),
                                  [np.random.default_rng(1).normal(0, 1, 20)], 0.95)
    assert lo < 0 < hi and reason is None
