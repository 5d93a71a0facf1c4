"""How much of Cov_N is normaliser noise, for a pi_D built from a reference's correct samples.

``lmcoverage reference`` defines pi_D(y|x) = pi_ref(y|x) 1[y correct] / p(x) with p(x), the
reference's chance of a correct response, estimated by c(x)/K (c of K samples correct), so
log pi_D = log pi_ref - log(c/K). The estimate of p(x) is noisy; this module recomputes the
coverage profile (Eq. 1) with p(x) at both ends of a per-prompt binomial interval:

    loglik_data'(x) = loglik_data(x) + log(c/K) - log p',   p' in {p_lo(x), p_hi(x)}

A larger p' lowers pi_D and the log-ratio, so p_hi gives the low end of Cov_N and p_lo the high
end. The range is not a confidence interval for Cov_N (it holds every prompt at its extreme at
once); it bounds how far the normaliser alone can move it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics.coverage import coverage_profile
from lmcoverage.scoretable import ScoreTable

Method = Literal["wilson", "clopper-pearson"]


def normaliser_interval(correct: ArrayLike, samples: ArrayLike, confidence: float = 0.95,
                        method: Method = "wilson"
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-prompt ``(p_lo, p_hi)`` for p(x) from ``correct`` of ``samples`` (whole numbers,
    1 <= c <= K: a prompt without a correct sample has no pi_D). Wilson's score interval or
    Clopper-Pearson's exact one; both have p_lo > 0 when c >= 1."""
    from scipy.stats import beta, norm

    c = np.asarray(correct, dtype=np.float64)
    k = np.asarray(samples, dtype=np.float64)
    if c.shape != k.shape:
        raise InputError(f"correct, samples: shapes differ ({c.shape}, {k.shape})")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: must lie in (0, 1), got {confidence}")
    bad = ~((c >= 1) & (c <= k) & (c == np.round(c)) & (k == np.round(k)))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise InputError(f"ref_correct/ref_samples: need whole numbers 1 <= c <= K, got c="
                         f"{c.ravel()[i]:g}, K={k.ravel()[i]:g} (example {i})")
    alpha = 1 - confidence
    if method == "wilson":
        z = float(norm.ppf(1 - alpha / 2))
        p = c / k
        centre = (p + z * z / (2 * k)) / (1 + z * z / k)
        half = z / (1 + z * z / k) * np.sqrt(p * (1 - p) / k + z * z / (4 * k * k))
        return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    if method == "clopper-pearson":
        lo = beta.ppf(alpha / 2, c, k - c + 1)
        hi = np.where(c == k, 1.0, beta.ppf(1 - alpha / 2, c + 1, np.maximum(k - c, 1)))
        return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    raise InputError(f"method: 'wilson' or 'clopper-pearson', got {method!r}")


def coverage_normaliser_range(
    loglik: ArrayLike,
    loglik_data: ArrayLike,
    correct: ArrayLike,
    samples: ArrayLike,
    ns: ArrayLike,
    weights: ArrayLike | None = None,
    confidence: float = 0.95,
    method: Method = "wilson",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cov_N with p(x) at both ends of its interval (see the module docstring).

    Args:
        loglik: (models, examples) log pi_hat(y|x).
        loglik_data: (examples,) log pi_D(y|x) = log pi_ref - log(c/K).
        correct, samples: (examples,) c(x) and K of each example's prompt.
        ns: values of N.

    Returns:
        ``(low, high)``, each (models, len(ns)): Cov_N at p_hi and at p_lo.
    """
    ll = np.atleast_2d(np.asarray(loglik, dtype=np.float64))
    ld = np.asarray(loglik_data, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    k = np.asarray(samples, dtype=np.float64)
    p_lo, p_hi = normaliser_interval(c, k, confidence, method)
    base = ld + np.log(c / k)  # log pi_ref
    low = np.stack([coverage_profile(base - np.log(p_hi) - row, ns, weights) for row in ll])
    high = np.stack([coverage_profile(base - np.log(p_lo) - row, ns, weights) for row in ll])
    return low, high


def reference_counts(table: ScoreTable) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(examples,) ``ref_correct`` and ``ref_samples`` of a table scored from ``lmcoverage
    reference``'s output, in example-id order; None when the table has no such columns (or
    they are empty)."""
    import pyarrow.compute as pc

    arrow = table.to_arrow()
    if not {"ref_correct", "ref_samples"} <= set(arrow.column_names):
        return None
    first = arrow.filter(pc.equal(arrow.column("model"), table.models[0]))
    if first.column("ref_correct").null_count or first.column("ref_samples").null_count:
        return None
    order = np.argsort(first.column("example_id").to_numpy())
    return (first.column("ref_correct").to_numpy().astype(np.float64)[order],
            first.column("ref_samples").to_numpy().astype(np.float64)[order])


def table_normaliser_range(table: ScoreTable, ns: ArrayLike, confidence: float = 0.95,
                           examples: NDArray[np.bool_] | None = None
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """:func:`coverage_normaliser_range` of every model of ``table`` (rows: ``table.models``)
    on the ``examples`` mask (default all), or None when the table has no reference counts or
    no ``loglik_data``."""
    counts = reference_counts(table)
    if counts is None or not table.has("loglik_data"):
        return None
    keep = np.ones(table.num_examples, dtype=bool) if examples is None else examples
    return coverage_normaliser_range(
        table.matrix("loglik")[:, keep], table.example_column("loglik_data")[keep],
        counts[0][keep], counts[1][keep], ns, table.example_column("weight")[keep], confidence)
