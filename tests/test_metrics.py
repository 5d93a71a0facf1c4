"""Property tests of the coverage metrics (issue 2): brute force, monotonicity, Appendix D."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lmcoverage.metrics import (
    TIE_ATOL,
    coverage_mass,
    coverage_profile,
    coverage_profile_ci,
    cross_entropy,
    hellinger_squared,
    hellinger_to_coverage_bound,
    kl_divergence,
    kl_to_coverage_bound,
    pass_at_k,
    pass_at_n_exact,
    stopped_kl,
    stopped_kl_to_coverage_bound,
)

NS = np.array([1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 100.0])
finite = st.floats(-20, 20, allow_nan=False)
ties = st.sampled_from(list(np.log(NS)))
log_ratios = hnp.arrays(
    np.float64, st.integers(1, 60), elements=st.one_of(finite, st.just(np.inf), ties)
)


@given(log_ratios)
def test_coverage_is_non_increasing_in_n(x: np.ndarray) -> None:
    cov = coverage_profile(x, np.sort(np.concatenate([NS, [np.inf]])))
    assert np.all(np.diff(cov) <= 1e-15)
    assert cov[0] == pytest.approx(np.mean(x >= -TIE_ATOL))


@given(log_ratios, st.data())
def test_coverage_matches_brute_force_with_ties(x: np.ndarray, data: st.DataObject) -> None:
    w = data.draw(hnp.arrays(np.float64, x.size, elements=st.floats(0.01, 5)))
    expected = [np.sum(w * (x >= np.log(n) - TIE_ATOL)) / w.sum() for n in NS]
    np.testing.assert_allclose(coverage_profile(x, NS, w), expected, rtol=1e-12)
    assert coverage_profile(np.abs(x), [1.0], w)[0] == 1.0  # every example counts: exactly 1


def test_coverage_tie_is_inclusive_within_the_tolerance() -> None:
    # A class-2 response of Figure 2 at H = 8 under the feature-blind optimum: 4 decisions at
    # probability 1/2 give log-ratio ln 16, on the Cov_16 threshold, so it counts, also when
    # rounding puts it a few ulps below ln 16 (summed token by token, as the scorer does).
    token_sum = np.log(0.5) * -1 + np.log(0.5) * -1 + np.log(0.5) * -1 + np.log(0.5) * -1
    for ln16 in (-4 * np.log(0.5), token_sum, np.nextafter(np.log(16.0), -np.inf),
                 np.log(16.0) - 4e-15):
        x = np.array([ln16, 0.0])
        assert coverage_profile(x, [16.0])[0] == 0.5
        assert coverage_mass(x, [0.5, 0.5], [16.0])[0] == 0.5
    # Beyond the tolerance it does not count; a custom tolerance moves the edge.
    below = np.array([np.log(16.0) - 2 * TIE_ATOL])
    assert coverage_profile(below, [16.0])[0] == 0.0
    assert coverage_profile(below, [16.0], atol=3 * TIE_ATOL)[0] == 1.0
    assert coverage_profile([np.nextafter(np.log(16.0), -np.inf)], [16.0], atol=0.0)[0] == 0.0


def test_coverage_shape_follows_ns_and_inf() -> None:
    x = np.array([0.0, 1.0, np.inf])
    out = coverage_profile(x, [[1.0, 2.0], [np.e, np.inf]])
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[1.0, 2 / 3], [2 / 3, 1 / 3]])


def _random_pair(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    p, q = (np.clip(rng.dirichlet(np.full(k, 0.5)), 1e-300, None) for _ in range(2))
    return p / p.sum(), q / q.sum()


@settings(max_examples=60)
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.floats(1.01, 1e4))
def test_kl_and_hellinger_bounds_on_exact_pairs(seed: int, k: int, n: float) -> None:
    p, q = _random_pair(np.random.default_rng(seed), k)
    log_ratio = np.log(p) - np.log(q)
    cov = coverage_profile(log_ratio, [n], weights=p)[0]
    kl = kl_divergence(log_ratio, weights=p)
    assert kl == pytest.approx(float(np.sum(p * log_ratio)))
    assert cov <= kl_to_coverage_bound(kl, n) + 1e-12  # Prop D.1
    assert cov <= hellinger_to_coverage_bound(hellinger_squared(p, q), n) + 1e-12  # Prop D.4


@settings(max_examples=60)
@given(st.integers(0, 2**32 - 1), st.integers(2, 4), st.integers(1, 3), st.floats(2.75, 1e4))
def test_stopped_kl_bound_on_exact_sequences(seed: int, v: int, h: int, n: float) -> None:
    """Prop D.10 on an autoregressive pair over V^H, every sequence enumerated exactly."""
    rng = np.random.default_rng(seed)
    seqs = np.array(np.meshgrid(*[np.arange(v)] * h, indexing="ij")).reshape(h, -1).T
    p_cond = {}
    q_cond = {}
    logp = np.zeros(len(seqs))
    logq = np.zeros(len(seqs))
    token_kl = np.zeros((len(seqs), h))
    for i, s in enumerate(seqs):
        for t in range(h):
            prefix = tuple(s[:t])
            if prefix not in p_cond:
                p_cond[prefix] = rng.dirichlet(np.ones(v))
                q_cond[prefix] = rng.dirichlet(np.ones(v))
            pc, qc = p_cond[prefix], q_cond[prefix]
            logp[i] += np.log(pc[s[t]])
            logq[i] += np.log(qc[s[t]])
            token_kl[i, t] = np.sum(pc * (np.log(pc) - np.log(qc)))
    weights = np.exp(logp)
    cov = coverage_profile(logp - logq, [n], weights)[0]
    d_seq = stopped_kl(token_kl, n, weights)
    assert d_seq <= np.log(n) + 1e-12
    assert d_seq <= kl_divergence(logp - logq, weights) + 1e-9
    assert cov <= stopped_kl_to_coverage_bound(d_seq, n) + 1e-12


def test_bernoulli_coverage_is_exactly_p_prop_d2() -> None:
    # pi_D = Ber(p), pi_hat = Ber(p/N): only y = 1 has ratio N (a tie, counted), so Cov_N = p
    # exactly, on a grid of 2,000 (p, N) pairs; compared exactly in float64 without the tie
    # rule about 16% of them came out 0. Just above N nothing counts.
    ps = np.linspace(0.001, 0.5, 50)
    ns = np.unique(np.round(np.geomspace(1.5, 1e6, 40), 1))
    exact_misses = 0
    for p in ps:
        for n in ns:
            probs_d = np.array([1 - p, p])
            log_ratio = np.log(probs_d) - np.log([1 - p / n, p / n])
            at, above = coverage_profile(log_ratio, [n, n * (1 + 1e-6)], probs_d)
            assert at == p and above == 0.0
            assert coverage_mass(log_ratio, probs_d, [n])[0] == p
            assert at <= kl_to_coverage_bound(kl_divergence(log_ratio, probs_d), n) + 1e-12
            exact_misses += int(coverage_profile(log_ratio, [n], probs_d, atol=0.0)[0] == 0)
    assert ps.size * ns.size >= 500 and exact_misses > 0.05 * ps.size * ns.size


@given(st.integers(1, 60), st.data())
def test_pass_at_k_matches_exact_combinatorics(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_broadcasts_and_refuses_k_above_n() -> None:
    out = pass_at_k([10, 20], [0, 20], [[1], [5]])
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="k=11 exceeds"):
        pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match="c"):
        pass_at_k(10, 11, 1)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 8]))
def test_pass_at_n_exact_matches_monte_carlo(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 0.5, size=20)
    exact = pass_at_n_exact(m, [n])[0]
    draws = rng.random((4000, 20, n)) < m[None, :, None]
    per_trial = draws.any(axis=2).mean(axis=1)
    se = per_trial.std(ddof=1) / np.sqrt(per_trial.size)
    assert abs(per_trial.mean() - exact) <= 5 * se + 1e-9


def test_pass_at_n_exact_is_stable_at_the_ends() -> None:
    tiny = 1e-18
    assert pass_at_n_exact([tiny], [1000])[0] == pytest.approx(1000 * tiny, rel=1e-6)
    assert pass_at_n_exact([np.log(tiny)], [1000], log=True)[0] == pytest.approx(1e-15, rel=1e-6)
    assert pass_at_n_exact([1.0], [3])[0] == 1.0
    assert pass_at_n_exact([0.0], [3], log=True)[0] == 1.0
    np.testing.assert_array_equal(pass_at_n_exact([0.0, 0.5], [np.inf]), [0.5])
    near_one = np.log1p(-1e-12)
    assert pass_at_n_exact([near_one], [2], log=True)[0] == pytest.approx(1 - 1e-24)


def test_weighted_interval_uses_effective_sample_size() -> None:
    x = np.array([5.0] * 50 + [0.0] * 50)
    cov, lo, hi = coverage_profile_ci(x, [2.0])
    cov_w, lo_w, hi_w = coverage_profile_ci(x, [2.0], weights=np.r_[np.ones(99), 1e-9])
    assert cov[0] == pytest.approx(0.5) and lo[0] < 0.5 < hi[0]
    assert hi_w[0] - lo_w[0] >= hi[0] - lo[0] - 1e-3
    cov_cp, lo_cp, hi_cp = coverage_profile_ci(x, [2.0], method="clopper-pearson")
    assert lo_cp[0] <= lo[0] and hi_cp[0] >= hi[0]


def test_stopped_kl_and_cross_entropy_values() -> None:
    token_kl = np.array([[1.0, 2.0], [0.1, 0.0]])
    assert stopped_kl(token_kl, np.e**2) == pytest.approx((2.0 + 0.1) / 2)
    np.testing.assert_allclose(stopped_kl(token_kl, [1.0, np.inf]), [0.0, 1.55])
    assert cross_entropy([-1.0, -3.0], weights=[3, 1]) == pytest.approx(1.5)
    assert kl_divergence([0.0, np.inf], weights=[1.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: coverage_profile([], [2]), "empty"),
        (lambda: coverage_profile([np.nan], [2]), "NaN"),
        (lambda: coverage_profile([0.1], [0.5]), "N must be >= 1"),
        (lambda: coverage_profile([0.1, 0.2], [2], weights=[1.0]), "length"),
        (lambda: coverage_profile([0.1], [2], weights=[-1.0]), ">= 0"),
        (lambda: cross_entropy([0.5]), "probability above one"),
        (lambda: stopped_kl([1.0, 2.0], 4), "2-D"),
        (lambda: pass_at_n_exact([1.5], [2]), r"\[0, 1\]"),
        (lambda: pass_at_n_exact([0.1], [2], log=True), "log-mass"),
        (lambda: stopped_kl_to_coverage_bound(0.1, 2.0), "N > e"),
        (lambda: pass_at_k(3, 1, 0), "k: must be >= 1"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_problem(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_kl_refuses_minus_inf_and_returns_inf_for_plus_inf() -> None:
    with pytest.raises(ValueError, match=r"log_ratio: -inf at index 1 \(pi_D\(y\|x\) = 0"):
        kl_divergence([0.1, -np.inf])
    assert kl_divergence([0.1, np.inf]) == np.inf
    assert kl_divergence([0.1, np.inf], weights=[1.0, 0.0]) == pytest.approx(0.1)


@pytest.mark.parametrize("n", [1, 2, 7, 12.0])
def test_exact_and_sampled_pass_at_n_accept_the_same_n(n: float) -> None:
    assert pass_at_n_exact([0.5], [n])[0] == pytest.approx(1 - 0.5**n)
    assert 0.0 <= pass_at_k(20, 10, n) <= 1.0


@pytest.mark.parametrize(("n", "message"), [(2.5, "whole number"), (0, ">= 1")])
def test_exact_and_sampled_pass_at_n_refuse_the_same_n(n: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_n_exact([0.5], [n])
    with pytest.raises(ValueError, match=message):
        pass_at_k(20, 10, n)
    with pytest.raises(ValueError, match="k: must be finite"):
        pass_at_k(20, 10, np.inf)  # exact Pass@inf is a limit no finite sample estimates


def test_vectorised_pass_at_k_matches_exact_integers_on_many_problems() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 300, size=3000)
    c = rng.integers(0, n + 1)
    k = rng.choice([1, 2, 5, 10, 50], size=3000)
    k = np.minimum(k, n)
    exact = [1 - math.comb(int(a - b), int(kk)) / math.comb(int(a), int(kk))
             for a, b, kk in zip(n, c, k, strict=True)]
    np.testing.assert_allclose(pass_at_k(n, c, k), exact, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_unweighted_interval_is_scipy_binomtest(method: str) -> None:
    from scipy.stats import binomtest

    x = np.r_[np.full(13, 3.0), np.zeros(87)]
    cov, lo, hi = coverage_profile_ci(x, [2.0], confidence=0.9, method=method)
    ci = binomtest(13, 100).proportion_ci(0.9, "wilson" if method == "wilson" else "exact")
    assert (cov[0], lo[0], hi[0]) == (0.13, ci.low, ci.high)
    # Kish's real-valued count: continuous in the weights, equal to scipy's at whole counts.
    w = np.ones(100)
    w[0] = 1 + 1e-9
    _, lo_w, hi_w = coverage_profile_ci(x, [2.0], w, confidence=0.9, method=method)
    assert lo_w[0] == pytest.approx(ci.low, rel=1e-6) and hi_w[0] == pytest.approx(ci.high,
                                                                                 rel=1e-6)
