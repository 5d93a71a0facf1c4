"""The Bernoulli case study of Sec. 3: pi_D = Ber(p*), estimator = empirical frequency (MLE).

Everything here is exact: the MLE from n samples is k/n with k ~ Binomial(n, p*), and the KL and
coverage profile of Ber(q) against Ber(p*) have closed forms over the two outcomes {0, 1}.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics import coverage_mass


def _check_prob(name: str, p: ArrayLike, open_interval: bool) -> NDArray[np.float64]:
    arr = np.asarray(p, dtype=np.float64)
    bad = ~((arr > 0) & (arr < 1)) if open_interval else ~((arr >= 0) & (arr <= 1))
    if bad.any():
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise InputError(f"{name}: must lie in {rng}, got {arr[bad].flat[0]:g}")
    return arr


def bernoulli_log_ratio(p_star: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """log Ber(p*)(y) - log Ber(q)(y) for y = 0, 1.

    Args:
        p_star: true success probabilities in (0, 1), any shape broadcastable with ``q``.
        q: model probabilities in [0, 1].

    Returns:
        (..., 2) log-ratios; +inf where the model gives the outcome probability zero.
    """
    p = _check_prob("p_star", p_star, open_interval=True)
    qq = _check_prob("q", q, open_interval=False)
    p, qq = np.broadcast_arrays(p, qq)
    with np.errstate(divide="ignore"):
        r0 = np.log1p(-p) - np.log1p(-qq)
        r1 = np.log(p) - np.log(qq)
    return np.stack([r0, r1], axis=-1)


def bernoulli_probs(p_star: ArrayLike) -> NDArray[np.float64]:
    """(..., 2) probabilities of y = 0, 1 under Ber(p*)."""
    p = _check_prob("p_star", p_star, open_interval=True)
    return np.stack([1.0 - p, p], axis=-1)


def bernoulli_kl(p_star: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """KL(Ber(p*) || Ber(q)); +inf exactly when q is 0 or 1 (the model misses an outcome)."""
    ratio = bernoulli_log_ratio(p_star, q)
    prob = bernoulli_probs(np.broadcast_to(np.asarray(p_star, dtype=np.float64), ratio.shape[:-1]))
    return np.asarray((ratio * prob).sum(axis=-1), dtype=np.float64)


def bernoulli_coverage(p_star: ArrayLike, q: ArrayLike, ns: ArrayLike) -> NDArray[np.float64]:
    """Cov_N(Ber(p*) || Ber(q)) for every N in ``ns``: shape (..., len(ns)) (Eq. 1)."""
    ratio = bernoulli_log_ratio(p_star, q)
    prob = bernoulli_probs(np.broadcast_to(np.asarray(p_star, dtype=np.float64), ratio.shape[:-1]))
    return coverage_mass(ratio, prob, ns)


def sample_mle(p_star: float, n: int, reps: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``reps`` independent MLEs p_hat = k/n, each from n fresh samples of Ber(p*)."""
    _check_prob("p_star", p_star, open_interval=True)
    if n < 1:
        raise InputError(f"n: need at least one sample, got {n}")
    if reps < 1:
        raise InputError(f"reps: must be >= 1, got {reps}")
    return rng.binomial(n, p_star, size=reps) / n


def mle_law(p_star: float, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact law of the MLE: values k/n for k = 0..n and their Binomial(n, p*) probabilities."""
    from scipy import stats

    _check_prob("p_star", p_star, open_interval=True)
    if n < 1:
        raise InputError(f"n: need at least one sample, got {n}")
    k = np.arange(n + 1)
    return k / n, np.asarray(stats.binom.pmf(k, n, p_star), dtype=np.float64)


def upper_quantile(values: ArrayLike, prob: ArrayLike, level: float) -> float:
    """Smallest v with P[value <= v] >= level, for a discrete law (values, prob)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(prob, dtype=np.float64)
    if not 0.0 < level < 1.0:
        raise InputError(f"level: must be in (0, 1), got {level}")
    order = np.argsort(v, kind="stable")
    cdf = np.cumsum(w[order]) / w.sum()
    idx = int(np.searchsorted(cdf, level - 1e-12, side="left"))
    return float(v[order][min(idx, v.size - 1)])
