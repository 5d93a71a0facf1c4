"""The coverage profile (Eq. 1, Eq. 4) and its confidence intervals.

Cov_N(pi_D || pi_hat) = P_{x~mu, y~pi_D}[ X >= log N ],  X = log pi_D(y|x) - log pi_hat(y|x),
a log-ratio within ``atol`` of log N counting as a tie (:mod:`lmcoverage.metrics.threshold`).

The whole profile N -> Cov_N comes from one pass over X: sort the K thresholds log N, bin every
X among them by binary search (O(n log K)), and sum the bin weights from the top.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_ns, as_ns_list, as_weights
from lmcoverage.metrics.threshold import TIE_ATOL, log_threshold, ratio_at_least


def coverage_profile(
    log_ratio: ArrayLike, ns: ArrayLike, weights: ArrayLike | None = None, atol: float = TIE_ATOL
) -> NDArray[np.float64]:
    """Cov_N for every N in ``ns`` at once (Eq. 1, Eq. 4).

    Args:
        log_ratio: (examples,) log pi_D(y_i|x_i) - log pi_hat(y_i|x_i); +inf is legal
            (pi_hat(y|x) = 0), NaN is not.
        ns: values of N >= 1, any shape (``inf`` allowed: the mass pi_hat misses entirely).
        weights: optional (examples,) non-negative weights, e.g. class-mixture weights.
        atol: tie tolerance in nats: ``log_ratio >= log N - atol`` counts (ties at exactly N
            count; default :data:`~lmcoverage.metrics.threshold.TIE_ATOL` = 1e-9).

    Returns:
        float64 array shaped like ``ns``: the weighted fraction of examples whose log-ratio
        reaches log N (inclusive, up to ``atol``). Non-increasing in N.
    """
    x = as_float_array("log_ratio", log_ratio)
    n_arr = as_ns(ns)
    w = None if weights is None else as_weights(weights, x.size)
    thresholds = log_threshold(n_arr, atol).ravel()
    order = np.argsort(thresholds, kind="stable")
    # bins[i] = number of thresholds <= x_i: example i counts for the first bins[i] sorted N.
    bins = np.searchsorted(thresholds[order], x, side="right")
    mass = np.bincount(bins, weights=w, minlength=thresholds.size + 1)
    tail = np.cumsum(mass[::-1])[::-1]  # tail[b] = weight of examples with bins >= b
    cov = np.empty(thresholds.size, dtype=np.float64)
    cov[order] = tail[1:] / tail[0]  # same summation order: exactly 1 when every example counts
    return cov.reshape(n_arr.shape)


def coverage_mass(
    log_ratio: ArrayLike, prob: ArrayLike, ns: ArrayLike, atol: float = TIE_ATOL
) -> NDArray[np.float64]:
    """Exact Cov_N (Eq. 1) of many models at once from an enumeration of outcomes.

    Args:
        log_ratio: (..., outcomes) log pi_D(o) - log pi_hat(o) for every outcome o (+inf legal).
        prob: (..., outcomes) pi_D(o), broadcastable against ``log_ratio``; need not sum to
            one (outcomes of negligible mass may be dropped).
        ns: (k,) values of N >= 1.
        atol: tie tolerance in nats, as in :func:`coverage_profile`.

    Returns:
        (..., k): the pi_D mass of the outcomes whose log-ratio reaches log N.
    """
    x = as_float_array("log_ratio", log_ratio, ndim=None)
    p = as_float_array("prob", prob, ndim=None)
    hit = ratio_at_least(x[..., None, :], as_ns_list(ns)[:, None], atol)  # (..., k, outcomes)
    return np.asarray((hit * p[..., None, :]).sum(axis=-1), dtype=np.float64)


def coverage_profile_ci(
    log_ratio: ArrayLike,
    ns: ArrayLike,
    weights: ArrayLike | None = None,
    confidence: float = 0.95,
    method: Literal["wilson", "clopper-pearson"] = "wilson",
    atol: float = TIE_ATOL,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Cov_N (as :func:`coverage_profile`) with a binomial confidence interval for every N.

    With weights, the interval uses Kish's effective sample size
    n_eff = (sum w)^2 / sum w^2 in place of the number of examples (see
    :func:`binomial_interval`).

    Returns:
        ``(cov, lower, upper)``, each float64 shaped like ``ns``.
    """
    _check_interval_args(confidence, method)
    cov = coverage_profile(log_ratio, ns, weights, atol)
    x = np.asarray(log_ratio, dtype=np.float64)
    w = as_weights(weights, x.size)
    n_eff = w.sum() ** 2 / np.square(w).sum()
    lower, upper = binomial_interval(cov, n_eff, confidence, method)
    return cov, lower, upper


def _check_interval_args(confidence: float, method: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: must be in (0, 1), got {confidence}")
    if method not in ("wilson", "clopper-pearson"):
        raise InputError(f"method: choose 'wilson' or 'clopper-pearson', got {method!r}")


def binomial_interval(
    p_hat: ArrayLike,
    n: float,
    confidence: float = 0.95,
    method: Literal["wilson", "clopper-pearson"] = "wilson",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided interval for a proportion ``p_hat`` estimated from ``n`` (effective) trials.

    With whole counts (``n`` and ``p_hat * n`` integers, e.g. unweighted examples) this is
    ``scipy.stats.binomtest(k, n).proportion_ci`` (``wilson``, or ``exact`` for
    Clopper-Pearson). A weighted estimate has a real-valued Kish count n_eff and
    k = p_hat n_eff; the same two formulas are then evaluated at real k and n (Wilson's score
    interval; the Beta quantiles of Clopper-Pearson), which agree with scipy at whole counts.

    Args:
        p_hat: estimated proportions, any shape (clipped to [0, 1]).
        n: number of (effective) trials, > 0.

    Returns:
        ``(lower, upper)``, each float64 shaped like ``p_hat``.
    """
    _check_interval_args(confidence, method)
    p = np.clip(np.asarray(p_hat, dtype=np.float64), 0.0, 1.0)
    if not n > 0 or not np.isfinite(n):
        raise InputError(f"n: must be a finite number > 0, got {n}")
    from scipy import stats  # lazy: keeps `import lmcoverage` fast

    k = p * n
    whole_k = np.round(k)
    if float(n).is_integer() and np.allclose(k, whole_k, rtol=0.0, atol=1e-9):
        lower = np.empty_like(p)
        upper = np.empty_like(p)
        scipy_method = "wilson" if method == "wilson" else "exact"
        for value in np.unique(whole_k):
            ci = stats.binomtest(int(value), int(n)).proportion_ci(confidence, scipy_method)
            lower[whole_k == value], upper[whole_k == value] = ci.low, ci.high
        return lower, upper
    alpha = 1.0 - confidence
    if method == "wilson":
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        lower = np.where(p <= 0.0, 0.0, np.clip(centre - half, 0.0, 1.0))
        upper = np.where(p >= 1.0, 1.0, np.clip(centre + half, 0.0, 1.0))
        return lower, upper
    lower = np.where(k > 0, stats.beta.ppf(alpha / 2.0, k, n - k + 1.0), 0.0)
    upper = np.where(k < n, stats.beta.ppf(1.0 - alpha / 2.0, k + 1.0, n - k), 1.0)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
