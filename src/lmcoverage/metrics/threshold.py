"""The one rule for comparing a log-ratio with log N (Eq. 1, Eq. 4, Eq. 28-29, Eq. 32).

Cov_N counts the event pi_D(y|x) / pi_hat(y|x) >= N, inclusive. A log-ratio that equals log N
in exact arithmetic (Prop D.2's Ber(p) vs Ber(p/N); a class-2 response of Figure 2 at H = 8
under the feature-blind optimum, log-ratio ln 16) often lands an ulp or two below log N in
float64. So a log-ratio within ``atol`` nats of log N is a tie, and ties count:

    X reaches N  <=>  X >= log N - atol          (default atol = TIE_ATOL = 1e-9 nats)

i.e. a likelihood ratio within a relative 1e-9 of N counts as N. Rounding of float64
sequence log-likelihoods is around 1e-15 per nat of |log pi|, so 1e-9 absorbs it for any
realistic response while no genuine ratio is moved by more than a part in 10^9.
Every threshold comparison of the package (coverage profile, tournaments, on-policy
coverage, experiments) goes through :func:`log_threshold` / :func:`ratio_at_least`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_ns

#: Default tie tolerance in nats on the log-ratio (see the module docstring).
TIE_ATOL = 1e-9


def check_atol(atol: float) -> float:
    """``atol`` as a float, finite and >= 0; InputError naming ``atol`` otherwise."""
    try:
        value = float(atol)
    except (TypeError, ValueError):
        raise InputError(f"atol: expected a number, got {atol!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"atol: must be a finite number >= 0, got {atol!r}")
    return value


def log_threshold(n: ArrayLike, atol: float = TIE_ATOL) -> NDArray[np.float64]:
    """log N - atol for every N (shaped like ``n``): X reaches N iff X >= this (``inf`` at N=inf).

    Args:
        n: values of N >= 1, any shape (``inf`` allowed).
        atol: tie tolerance in nats, >= 0.
    """
    return np.asarray(np.log(as_ns(n, "n")) - check_atol(atol), dtype=np.float64)


def ratio_at_least(
    log_ratio: ArrayLike, n: ArrayLike, atol: float = TIE_ATOL
) -> NDArray[np.bool_]:
    """Elementwise ``log_ratio >= log N - atol``: the ratio is at least N, ties included.

    Args:
        log_ratio: log pi_a - log pi_b, any shape; ``+inf`` always reaches, NaN never does
            (both probabilities zero).
        n: N >= 1, broadcastable against ``log_ratio``.
        atol: tie tolerance in nats (:data:`TIE_ATOL`).

    Returns:
        A boolean array of the broadcast shape.
    """
    x = np.asarray(log_ratio, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(x >= log_threshold(n, atol))
