"""Appendix D's remaining results on exact enumerations: each bound holds on random instances
and is (near-)tight on a constructed one, so changing its constant makes a test fail."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcoverage.metrics import (
    best_of_n_regret,
    best_stepwise_hellinger_coverage_lower_bound,
    bon_regret_lower_bound,
    bon_regret_upper_bound,
    coverage_chain_rule_bound,
    coverage_decay_constant,
    coverage_gap_reward,
    coverage_mass,
    coverage_profile,
    coverage_to_kl_bound,
    hellinger_squared,
    hellinger_to_coverage_bound,
    kl_divergence,
    kl_to_coverage_bound,
    sequence_hellinger_coverage_lower_bound,
    stepwise_hellinger_coverage_lower_bound,
    stopped_kl_to_coverage_bound,
)

seeds = st.integers(0, 2**32 - 1)


def _dist(rng: np.random.Generator, shape: tuple[int, ...], zeros: float = 0.2) -> np.ndarray:
    """Random conditional distributions over the last axis, some entries exactly zero."""
    p = rng.dirichlet(np.full(shape[-1], 0.5), size=shape[:-1])
    p = np.where(rng.random(shape) < zeros, 0.0, p)
    p[..., 0] += (p.sum(axis=-1) == 0)  # keep every row non-empty
    return p / p.sum(axis=-1, keepdims=True)


def _log_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log(q)


def _cov(p: np.ndarray, q: np.ndarray, n: float, mu: np.ndarray | None = None) -> float:
    """Exact Cov_N(p || q) over (prompts, responses) tables on p's support."""
    mu = np.full(p.shape[0], 1.0 / p.shape[0]) if mu is None else mu
    support = p > 0
    return float(coverage_mass(_log_ratio(p, q)[support], (mu[:, None] * p)[support], [n])[0])


# Prop D.3: uniform coverage decay implies bounded KL.


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(2, 64))
def test_d3_kl_bound_holds(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = _dist(rng, (k,), 0.0), _dist(rng, (k,), 0.0)
    x = _log_ratio(p, q)
    c = coverage_decay_constant(x, p)
    grid = np.exp(np.linspace(0, x.max() + 1, 400))
    assert c >= np.max(coverage_profile(x, grid, p) * np.log(grid)) - 1e-9  # C is the sup
    assert kl_divergence(x, p) <= coverage_to_kl_bound(c, x.max()) + 1e-12


def test_d3_is_tight_for_a_one_over_t_tail() -> None:
    # X >= 0 with P[X >= t] = C/t on a geometric grid of 63 values up to log W_max = e^2 C;
    # pi_hat puts its spare mass on a 64th response outside pi_D's support.
    c, k = 0.05, 63
    t = c * np.exp(np.linspace(0.0, 2.0, k))
    tail = c / t
    p = tail - np.r_[tail[1:], 0.0]
    p = np.r_[p / p.sum(), 0.0]
    q = np.r_[p[:-1] * np.exp(-t), 0.0]
    q[-1] = 1.0 - q.sum()
    x = _log_ratio(p, q)[:-1]
    c_hat = coverage_decay_constant(x, p[:-1])
    assert c_hat == pytest.approx(c, rel=1e-9)
    bound = coverage_to_kl_bound(c_hat, x.max())
    kl = kl_divergence(x, p[:-1])
    assert kl <= bound and kl >= 0.97 * bound  # the "1 +" and the log factor are needed


def test_d3_edges() -> None:
    assert coverage_to_kl_bound(0.0, 5.0) == 0.0
    assert coverage_to_kl_bound(0.5, np.inf) == np.inf
    assert coverage_to_kl_bound(0.5, 0.5) == 0.5
    assert coverage_decay_constant([np.inf, 0.0], [1.0, 1.0]) == np.inf
    assert coverage_decay_constant([-1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="c: C = 2 exceeds log_w_max"):
        coverage_to_kl_bound(2.0, 1.0)


# Prop D.5: chain rule.


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(2, 16), st.integers(2, 4), st.sampled_from([1.0, 2.0, 3.0, 8.0]),
       st.sampled_from([1.0, 2.0, 4.0, 16.0]))
def test_d5_chain_rule_holds(seed: int, k: int, prompts: int, m2: float, m1_over_m2: float
                             ) -> None:
    rng = np.random.default_rng(seed)
    t, d, q = (_dist(rng, (prompts, k)) for _ in range(3))
    m1 = m1_over_m2 * m2
    lhs = _cov(t, q, m1)
    assert lhs <= coverage_chain_rule_bound(_cov(d, q, m1 / m2), _cov(t, d, m2), m2) + 1e-12


def test_d5_factor_m2_is_tight() -> None:
    m1, m2, d, delta = 64.0, 4.0, 0.1, 1e-6
    pi_d = np.array([[d, 1 - d]])
    pi_hat = np.array([[d * m2 * (1 - delta) / m1, 1 - d * m2 * (1 - delta) / m1]])
    pi_t = np.array([[m2 * d * (1 - delta), 1 - m2 * d * (1 - delta)]])
    lhs = _cov(pi_t, pi_hat, m1)  # pi_T / pi_hat = M1 exactly: a tie, counted
    a, b = _cov(pi_d, pi_hat, m1 / m2), _cov(pi_t, pi_d, m2)
    assert lhs == pytest.approx(m2 * d * (1 - delta)) and b == 0.0
    assert lhs <= coverage_chain_rule_bound(a, b, m2)
    assert lhs > coverage_chain_rule_bound(a, b, 0.99 * m2)  # a smaller factor fails


# Prop D.6 and D.7: Best-of-N regret.


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(2, 16), st.integers(1, 4), st.sampled_from([1, 2, 4, 16, 64]),
       st.sampled_from([1.5, 2.0, 4.0, 16.0]), st.booleans())
def test_d6_and_d7_hold(seed: int, k: int, prompts: int, n: int, m: float, binary: bool
                        ) -> None:
    rng = np.random.default_rng(seed)
    t, q = _dist(rng, (prompts, k)), _dist(rng, (prompts, k))
    reward = (rng.random((prompts, k)) < 0.5) * 1.0 if binary else rng.random((prompts, k))
    regret = best_of_n_regret(t, q, reward, n)
    cov_m = _cov(t, q, m)
    if cov_m <= 0.5:
        assert regret <= bon_regret_upper_bound(cov_m, n, m) + 1e-12  # Prop D.6
    hard = coverage_gap_reward(_log_ratio(t, q), n)
    assert best_of_n_regret(t, q, hard, n) >= bon_regret_lower_bound(_cov(t, q, 2 * n)) - 1e-12


def test_best_of_n_regret_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    t, q = _dist(rng, (2, 3)), _dist(rng, (2, 3))
    reward = rng.random((2, 3))
    n = 3
    value = 0.0  # enumerate all 3^3 draws per prompt; BoN returns the max reward
    for x in range(2):
        for draw in np.ndindex(3, 3, 3):
            value += 0.5 * np.prod(q[x, list(draw)]) * reward[x, list(draw)].max()
    expected = 0.5 * np.sum(t * reward) - value
    assert best_of_n_regret(t, q, reward, n) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(best_of_n_regret(t, q, reward, [n, np.inf]),
                               [expected, 0.5 * np.sum(t * reward) - 0.5 * np.sum(
                                   [reward[x][q[x] > 0].max() for x in range(2)])])


def test_d6_is_tight_in_coverage_and_within_two_in_the_exponent() -> None:
    # Coefficient of Cov_M: the reward sits on responses pi_hat never produces (ratio inf);
    # BoN cannot find them, so the regret is Cov_M exactly while eps = exp(-N/2M) is tiny.
    m, n, c = 4.0, 4000, 0.4
    t = np.array([[c, 1 - c, 0.0]])
    q = np.array([[0.0, 0.5, 0.5]])
    regret = best_of_n_regret(t, q, np.array([[1.0, 0.0, 0.0]]), n)
    assert regret == pytest.approx(c) and _cov(t, q, m) == pytest.approx(c)
    assert regret <= bon_regret_upper_bound(c, n, m)
    assert regret > 0.99 * c + np.exp(-n / (2 * m))  # a coefficient below 1 fails
    # Exponent: pi_T a point mass that pi_hat gives just over 1/M (covered); regret is
    # (1 - 1/M)^N ~ exp(-N/M). The paper's exp(-N/(2M)) holds; exp(-2N/M) (a factor 4
    # smaller exponent constant) fails. (Our exact check also holds with exp(-N/M): the
    # factor 2 of N >= 2M log(1/eps) is slack in this form.)
    m, n = 8.0, 24
    p_star = (1 + 1e-6) / m
    t = np.array([[1.0, 0.0]])
    q = np.array([[p_star, 1 - p_star]])
    regret = best_of_n_regret(t, q, np.array([[1.0, 0.0]]), n)
    assert _cov(t, q, m) == 0.0
    assert regret <= bon_regret_upper_bound(0.0, n, m)
    assert regret > bon_regret_upper_bound(0.0, n, m / 4)


def test_d7_constant_one_half_is_attained() -> None:
    # N = 1, pi_hat = pi_T / 2 on the rewarded set (ratio exactly 2N: a tie, counted).
    c = 0.3
    t = np.array([[c, 1 - c]])
    q = np.array([[c / 2, 1 - c / 2]])
    reward = coverage_gap_reward(_log_ratio(t, q), 1)
    np.testing.assert_array_equal(reward, [[1.0, 0.0]])
    regret = best_of_n_regret(t, q, reward, 1)
    cov_2n = _cov(t, q, 2.0)
    assert cov_2n == pytest.approx(c)
    assert regret == pytest.approx(bon_regret_lower_bound(cov_2n), rel=1e-12)
    assert regret < 0.51 * cov_2n  # a larger constant fails


# Prop D.11 (stepwise): Cov_N >= P[sum_h D_H^2(step h) >= log(N/delta)] - delta.


def _autoregressive(rng: np.random.Generator, prompts: int, vocab: int, horizon: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random autoregressive pi_D and pi_hat, enumerated over all vocab^horizon responses.

    Returns (log pi_D(y|x), log pi_hat(y|x), S(x, y)), each (prompts, vocab^horizon), with
    S the sum of the per-step D_H^2 along (x, y).
    """
    seqs = list(itertools.product(range(vocab), repeat=horizon))
    log_d = np.zeros((prompts, len(seqs)))
    log_m = np.zeros_like(log_d)
    steps = np.zeros_like(log_d)
    for x in range(prompts):
        cond: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        for j, y in enumerate(seqs):
            for h in range(horizon):
                prefix = y[:h]
                if prefix not in cond:
                    cond[prefix] = (_dist(rng, (vocab,), 0.0), _dist(rng, (vocab,), 0.3))
                pd, pm = cond[prefix]
                with np.errstate(divide="ignore"):
                    log_d[x, j] += np.log(pd[y[h]])
                    log_m[x, j] += np.log(pm[y[h]])
                steps[x, j] += hellinger_squared(pd, pm)
    return log_d, log_m, steps


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(1, 3), st.integers(2, 3), st.integers(1, 4),
       st.floats(1.0, 1e3), st.floats(1e-3, 0.999))
def test_d11_holds_on_random_autoregressive_models(
    seed: int, prompts: int, vocab: int, horizon: int, n: float, delta: float
) -> None:
    rng = np.random.default_rng(seed)
    log_d, log_m, steps = _autoregressive(rng, prompts, vocab, horizon)
    weights = np.exp(log_d).ravel() / prompts  # pi_D's joint probabilities: exact P[.]
    keep = weights > 0
    cov = float(coverage_mass((log_d - log_m).ravel()[keep], weights[keep], [n])[0])
    bound = stepwise_hellinger_coverage_lower_bound(steps.ravel()[keep], n, delta,
                                                    weights[keep])
    best = best_stepwise_hellinger_coverage_lower_bound(steps.ravel()[keep], n, weights[keep])
    assert bound <= best + 1e-12
    assert best <= cov + 1e-12


def test_d11_sup_over_delta_is_attained_on_the_grid() -> None:
    rng = np.random.default_rng(3)
    s, w = rng.exponential(3.0, 50), rng.random(50)
    grid = np.linspace(1e-4, 1 - 1e-4, 20001)
    n = 8.0
    dense = stepwise_hellinger_coverage_lower_bound(s, np.full(grid.size, n), grid, w).max()
    best = best_stepwise_hellinger_coverage_lower_bound(s, n, w)
    assert dense <= best + 1e-12 and dense >= best - 1e-3


def test_d11_two_prompt_example_beats_the_sequence_bound() -> None:
    # Issue 18: prompt 0 is exact; on prompt 1 pi_D = Ber(1/2)^H, pi_hat = Ber(0.02)^H, H = 30.
    horizon, n, q = 30, 16.0, 0.02
    step = hellinger_squared(np.array([0.5, 0.5]), np.array([q, 1 - q]))
    k = np.arange(horizon + 1)  # number of ones on prompt 1
    log_ratio = k * math.log(0.5 / q) + (horizon - k) * math.log(0.5 / (1 - q))
    p_k = np.array([math.comb(horizon, int(j)) for j in k]) * 0.5**horizon
    x = np.r_[0.0, log_ratio]  # prompt 0: log-ratio 0 with probability 1/2
    w = np.r_[0.5, 0.5 * p_k]
    cov = float(coverage_mass(x, w, [n])[0])
    sums = np.r_[0.0, np.full(k.size, horizon * step)]
    paper = best_stepwise_hellinger_coverage_lower_bound(sums, n, w)
    seq_h2 = 0.5 * (1.0 - (1.0 - step) ** horizon)  # the joint's D_H^2: product of affinities
    sequence = sequence_hellinger_coverage_lower_bound(seq_h2, n)
    assert round(cov, 3) == 0.500 and sequence == 0.0
    assert paper == pytest.approx(0.5 - n * math.exp(-horizon * step)) and round(paper, 3) == 0.460
    assert paper <= cov


def test_d11_validates_inputs() -> None:
    with pytest.raises(ValueError, match="delta"):
        stepwise_hellinger_coverage_lower_bound([1.0], 2.0, 1.0)
    with pytest.raises(ValueError, match="step_h2_sums"):
        stepwise_hellinger_coverage_lower_bound([-1.0], 2.0, 0.5)
    assert best_stepwise_hellinger_coverage_lower_bound([np.inf, 0.0], np.inf) == 0.5


# The sequence-level companion (not the paper's): Cov_N >= 1 - sqrt(N) (1 - D_H^2).


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(2, 64), st.floats(1.0, 1e4))
def test_sequence_hellinger_bound_holds(seed: int, k: int, n: float) -> None:
    rng = np.random.default_rng(seed)
    p, q = _dist(rng, (k,), 0.3), _dist(rng, (k,), 0.3)
    cov = _cov(p[None], q[None], n)
    h2 = hellinger_squared(p, q)
    assert sequence_hellinger_coverage_lower_bound(h2, n) <= cov + 1e-12
    assert cov <= hellinger_to_coverage_bound(h2, n) + 1e-12  # Prop D.4 on the same pairs


@pytest.mark.parametrize("n", [2.0, 16.0, 1000.0])
def test_sequence_hellinger_bound_is_tight(n: float) -> None:
    # pi_hat = 0 on pi_D-mass c, pi_hat = pi_D (1 + delta) / N on the rest, spare mass
    # outside pi_D's support: Cov_N = c and the bound is c - O(delta).
    c, delta = 0.3, 1e-6
    rest = np.array([0.2, 0.3, 0.2])
    p = np.r_[c, rest, 0.0]
    q = np.r_[0.0, rest * (1 + delta) / n, 0.0]
    q[-1] = 1.0 - q.sum()
    cov = _cov(p[None], q[None], n)
    h2 = hellinger_squared(p, q)
    lower = sequence_hellinger_coverage_lower_bound(h2, n)
    assert cov == pytest.approx(c) and lower <= cov and lower >= c - 1e-6
    assert 1 - 0.99 * np.sqrt(n) * (1 - h2) > cov  # a smaller sqrt(N) factor fails


# Item 4: every bound's limit at N = inf, never NaN.


def test_bounds_at_n_infinity_are_their_limits() -> None:
    big = 1e300
    assert kl_to_coverage_bound(0.3, np.inf) == 0.0
    assert kl_to_coverage_bound(np.inf, np.inf) == 1.0
    assert kl_to_coverage_bound(np.inf, 2.0) == 1.0
    assert hellinger_to_coverage_bound(0.1, np.inf) == pytest.approx(0.2)
    assert hellinger_to_coverage_bound(0.1, big) == pytest.approx(0.2)
    assert sequence_hellinger_coverage_lower_bound(0.9, np.inf) == 0.0
    assert sequence_hellinger_coverage_lower_bound(1.0, np.inf) == 1.0
    assert stopped_kl_to_coverage_bound(0.3, np.inf) == 0.0
    assert stopped_kl_to_coverage_bound(np.inf, np.inf) == 1.0
    assert coverage_chain_rule_bound(0.0, 0.2, np.inf) == pytest.approx(0.2)
    assert coverage_chain_rule_bound(0.1, 0.2, np.inf) == 1.0
    assert bon_regret_upper_bound(0.2, np.inf, 4.0) == pytest.approx(0.2)
    assert bon_regret_upper_bound(0.2, np.inf, np.inf) == pytest.approx(0.2)
    out = np.array([
        kl_to_coverage_bound([0.0, 1.0, np.inf], [1.0, np.inf, np.inf]),
        hellinger_to_coverage_bound([0.0, 0.5, 1.0], [1.0, np.inf, np.inf]),
        sequence_hellinger_coverage_lower_bound([0.0, 0.5, 1.0], [1.0, np.inf, np.inf]),
    ])
    assert not np.isnan(out).any()
