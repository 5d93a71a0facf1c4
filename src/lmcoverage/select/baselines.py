"""The usual selection baselines and the coverage oracle.

- :func:`min_cross_entropy`: argmin of held-out cross-entropy (needs nothing but loglik).
- :func:`min_kl`: argmin of sequence-level KL (needs pi_D's log-likelihoods; same pick as
  min cross-entropy, since they differ by pi_D's entropy, but reports the KL values).
- :func:`oracle_coverage`: argmin of Cov_N (Eq. 1) when pi_D is known: what a tournament
  tries to achieve without pi_D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from lmcoverage.errors import InputError
from lmcoverage.metrics import TIE_ATOL, coverage_profile, kl_divergence
from lmcoverage.metrics.threshold import check_atol
from lmcoverage.select._inputs import Scores, candidates, data_loglik, threshold_n
from lmcoverage.select.result import Selection, build_selection


def min_cross_entropy(
    loglik: Scores, *, weights: ArrayLike | None = None, names: Sequence[str] | None = None
) -> Selection:
    """Pick the candidate with the smallest held-out cross-entropy E[-log pi_j(y|x)].

    Args:
        loglik: (candidates, examples) held-out log-likelihoods, or a ScoreTable.
        weights: optional (examples,) weights; names: candidate names.

    Returns:
        A :class:`Selection` whose ``statistic`` is the cross-entropy in nats per response.
    """
    cands = candidates(loglik, weights, names)
    return build_selection("cross-entropy", cands, cands.cross_entropy())


def min_kl(
    loglik: Scores,
    *,
    loglik_data: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
) -> Selection:
    """Pick the candidate with the smallest sequence-level KL(pi_D || pi_j) = E[X].

    Args:
        loglik: (candidates, examples), or a ScoreTable (which then supplies ``loglik_data``).
        loglik_data: (examples,) log pi_D(y_i|x_i).
        weights, names: as in :func:`min_cross_entropy`.
    """
    cands = candidates(loglik, weights, names)
    ld = data_loglik(loglik_data, cands)
    stat = np.array([kl_divergence(ld - row, cands.weights) for row in cands.loglik])
    return build_selection("kl", cands, stat)


def oracle_coverage(
    loglik: Scores,
    n: float | None = None,
    *,
    loglik_data: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    atol: float = TIE_ATOL,
) -> Selection:
    """Pick argmin_j Cov_N(pi_D || pi_j) (Eq. 1), estimated on the held-out examples.

    Args:
        loglik: (candidates, examples), or a ScoreTable (which then supplies ``loglik_data``).
        n: the threshold N >= 1 (required).
        loglik_data: (examples,) log pi_D(y_i|x_i).
        weights, names: as in :func:`min_cross_entropy`.
        atol: tie tolerance in nats on the log-ratio (ties at exactly N count; see
            :mod:`lmcoverage.metrics.threshold`).
    """
    if n is None:
        raise InputError("n: required (the coverage threshold N >= 1)")
    n_value = threshold_n(n)
    cands = candidates(loglik, weights, names)
    ld = data_loglik(loglik_data, cands)
    atol = check_atol(atol)
    stat = np.array([coverage_profile(ld - row, n_value, cands.weights, atol)
                     for row in cands.loglik], dtype=np.float64)
    return build_selection("oracle", cands, stat, {"n": n_value, "atol": atol})
