"""The paper's conversions between divergences, coverage and Best-of-N regret (Appendix D)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.metrics._validate import as_float_array, as_ns


def _nonneg(name: str, value: ArrayLike) -> NDArray[np.float64]:
    arr = as_float_array(name, value, ndim=None)
    if (arr < 0).any():
        raise ValueError(f"{name}: must be >= 0, got {arr.min():g}")
    return arr


def _out(arr: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(arr) if arr.ndim == 0 else arr


def kl_to_coverage_bound(kl: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop 3.1 / D.1: Cov_N <= D_KL / (log N - 1 + 1/N), capped at 1 (N = 1 gives 1)."""
    d = _nonneg("kl", kl)
    n_arr = as_ns(n, "n")
    denom = np.log(n_arr) - 1.0 + 1.0 / n_arr
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(denom > 0, d / np.where(denom > 0, denom, 1.0), np.inf)
    return _out(np.minimum(1.0, raw))


def hellinger_to_coverage_bound(h2: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.4: Cov_N <= 2N / (sqrt(N) - 1)^2 * D_H^2, capped at 1 (N = 1 gives 1)."""
    h = _nonneg("h2", h2)
    n_arr = as_ns(n, "n")
    gap = (np.sqrt(n_arr) - 1.0) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(gap > 0, 2.0 * n_arr * h / np.where(gap > 0, gap, 1.0), np.inf)
    return _out(np.minimum(1.0, raw))


def stopped_kl_to_coverage_bound(d_seq: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.10: for N > e, Cov_N <= 2 / (log N - 1) * D_seq,N, capped at 1."""
    d = _nonneg("d_seq", d_seq)
    n_arr = as_ns(n, "n")
    if (n_arr <= np.e).any():
        raise ValueError(f"n: Prop D.10 needs N > e, got {n_arr.min():g}")
    return _out(np.minimum(1.0, 2.0 / (np.log(n_arr) - 1.0) * d))


def coverage_chain_rule_bound(
    cov_data_model: ArrayLike, cov_target_data: ArrayLike, m2: ArrayLike
) -> float | NDArray[np.float64]:
    """Prop D.5 (chain rule) for coverage through an intermediate pi_D.

    Cov_{M1}(pi_T || pi_hat) <= M2 Cov_{M1/M2}(pi_D || pi_hat) + Cov_{M2}(pi_T || pi_D).

    Args:
        cov_data_model: Cov_{M1/M2}(pi_D || pi_hat).
        cov_target_data: Cov_{M2}(pi_T || pi_D).
        m2: the split factor M2 >= 1.
    """
    a = _nonneg("cov_data_model", cov_data_model)
    b = _nonneg("cov_target_data", cov_target_data)
    m = as_ns(m2, "m2")
    return _out(np.minimum(1.0, m * a + b))


def bon_regret_upper_bound(
    cov_m: ArrayLike, n: ArrayLike, m: ArrayLike
) -> float | NDArray[np.float64]:
    """Prop D.6 (coverage suffices): Best-of-N regret against pi_T is at most Cov_M + eps.

    With N >= 2 M log(1/eps), the smallest admissible eps is exp(-N / (2M)); the bound
    applies when Cov_M(pi_T || pi_hat) <= 1/2 and is the trivial 1 otherwise.
    """
    cov = _nonneg("cov_m", cov_m)
    n_arr = as_ns(n, "n")
    m_arr = as_ns(m, "m")
    bound = np.where(cov <= 0.5, cov + np.exp(-n_arr / (2.0 * m_arr)), 1.0)
    return _out(np.minimum(1.0, bound))


def bon_regret_lower_bound(cov_2n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.7 (coverage is necessary): some 0/1 reward has BoN regret >= Cov_{2N} / 2."""
    return _out(_nonneg("cov_2n", cov_2n) / 2.0)
