"""Pass@k: the unbiased estimator from samples, and exact Pass@N from the correct-set mass."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_pass_ns, as_weights


def _as_int_array(name: str, values: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.size == 0:
        raise InputError(f"{name}: empty input")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any() or not np.all(arr == np.round(arr)):
            raise InputError(f"{name}: expected whole numbers, got {arr.flat[0]!r}")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def pass_at_k(n: ArrayLike, c: ArrayLike, k: ArrayLike) -> NDArray[np.float64]:
    """Unbiased Pass@k per problem from ``n`` samples of which ``c`` are correct.

    Pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i), computed
    vectorised in log space: for each distinct k, S(m) = sum_{i = k+1}^{m} log(1 - k/i) is one
    cumulative sum up to max n, and Pass@k = -expm1(S(n) - S(n - c)) (1 when n - c < k).
    Arrays broadcast together. Cost O(problems + distinct k * max n).

    Args:
        n: samples drawn per problem (whole numbers >= 0).
        c: correct samples per problem, 0 <= c <= n.
        k: whole numbers 1 <= k <= n (the same N values :func:`pass_at_n_exact` accepts,
            except ``inf``, which no finite sample can estimate).

    Raises:
        InputError: if k > n (the estimator is undefined; never silently 1.0), k < 1,
            k not whole, c < 0 or c > n.
    """
    if (as_float_array("k", k, ndim=None) < 1).any():
        raise InputError(f"k: must be >= 1, got {np.min(k):g}")
    k_arr = as_pass_ns(k, "k")
    if np.isinf(k_arr).any():
        raise InputError("k: must be finite (the unbiased estimator needs k <= n samples)")
    n_a, c_a, k_a = np.broadcast_arrays(
        _as_int_array("n", n), _as_int_array("c", c), k_arr.astype(np.int64)
    )
    if (c_a < 0).any() or (c_a > n_a).any():
        bad = np.flatnonzero(((c_a < 0) | (c_a > n_a)).ravel())[0]
        raise InputError(f"c: must satisfy 0 <= c <= n, got c={c_a.flat[bad]}, n={n_a.flat[bad]}")
    if (k_a > n_a).any():
        bad = np.flatnonzero((k_a > n_a).ravel())[0]
        raise InputError(f"k: k={k_a.flat[bad]} exceeds the n={n_a.flat[bad]} samples drawn")
    out = np.ones(n_a.shape, dtype=np.float64)
    if out.size == 0:
        return out
    top = int(n_a.max())
    if top > _CUMSUM_LIMIT:
        return _pass_at_k_large(n_a, c_a, k_a)
    for kv in np.unique(k_a):
        rows = (k_a == kv) & (n_a - c_a >= kv)  # else some draw of k is always correct: 1
        i = np.arange(kv + 1, top + 1, dtype=np.float64)
        cum = np.concatenate([np.zeros(kv + 1), np.cumsum(np.log1p(-kv / i))])  # S(0..top)
        out[rows] = 0.0 - np.expm1(cum[n_a[rows]] - cum[n_a[rows] - c_a[rows]])  # no -0.0
    return out


#: Largest n for the cumulative-sum form of :func:`pass_at_k` (its arrays have max n entries);
#: above it each problem is computed alone, from at most ``_TERM_LIMIT`` terms.
_CUMSUM_LIMIT = 10**7
_TERM_LIMIT = 10**7


def _pass_at_k_large(n: NDArray[np.int64], c: NDArray[np.int64], k: NDArray[np.int64]
                     ) -> NDArray[np.float64]:
    """:func:`pass_at_k` problem by problem, without arrays of length max n: log C(n-c, k) /
    C(n, k) is sum_{j<k} log(1 - c/(n-j)) (k terms) or sum_{i=n-c+1}^{n} log(1 - k/i) (c
    terms), whichever is shorter; more than ``_TERM_LIMIT`` terms is an InputError."""
    out = np.ones(n.shape, dtype=np.float64)
    for idx in np.ndindex(n.shape):
        nv, cv, kv = int(n[idx]), int(c[idx]), int(k[idx])
        if nv - cv < kv:
            continue  # every draw of k holds a correct sample
        if min(kv, cv) > _TERM_LIMIT:
            raise InputError(f"pass@k: n={nv}, c={cv}, k={kv} needs more than "
                             f"{_TERM_LIMIT:,} terms; use a smaller k")
        if kv <= cv:
            terms = np.log1p(-cv / (nv - np.arange(kv, dtype=np.float64)))
        else:
            terms = np.log1p(-kv / np.arange(nv - cv + 1, nv + 1, dtype=np.float64))
        out[idx] = 0.0 - np.expm1(terms.sum())
    return out


def _log1m_exp(log_p: NDArray[np.float64]) -> NDArray[np.float64]:
    """log(1 - exp(log_p)) for log_p <= 0, accurate near both ends (Maechler's log1mexp)."""
    out = np.empty_like(log_p)
    near_one = log_p > -np.log(2.0)
    with np.errstate(divide="ignore"):  # log_p = 0 -> log(0) = -inf, as it should be
        out[near_one] = np.log(-np.expm1(log_p[near_one]))
    out[~near_one] = np.log1p(-np.exp(log_p[~near_one]))
    return out


def pass_at_n_exact(
    mass_correct: ArrayLike,
    ns: ArrayLike,
    weights: ArrayLike | None = None,
    log: bool = False,
) -> NDArray[np.float64]:
    """Exact Pass@N = E_x[1 - (1 - pi_hat(G_x|x))^N] for every N in ``ns``.

    Args:
        mass_correct: (prompts,) the model's probability of each prompt's correct set G_x
            (or its log, with ``log=True``; log input keeps precision for tiny masses).
        ns: whole N >= 1 (or ``inf``: the mass of prompts with m > 0), any shape; the
            same N values :func:`pass_at_k` accepts.
        weights: optional (prompts,) weights.

    Returns:
        float64 array shaped like ``ns``. Computed as -expm1(N * log(1 - m)), stable for m
        near 0 and near 1.
    """
    m = as_float_array("mass_correct", mass_correct)
    if log:
        if (m > 0).any():
            raise InputError(f"mass_correct: log-mass must be <= 0, got {m.max():g}")
        log_miss = _log1m_exp(m)
    else:
        if (m < 0).any() or (m > 1).any():
            bad = m[(m < 0) | (m > 1)][0]
            raise InputError(f"mass_correct: probability must be in [0, 1], got {bad:g}")
        with np.errstate(divide="ignore"):
            log_miss = np.log1p(-m)
    n_arr = as_pass_ns(ns)
    w = as_weights(weights, m.size)
    with np.errstate(invalid="ignore"):
        per_prompt = -np.expm1(n_arr[..., None] * log_miss)  # (*ns.shape, prompts)
    per_prompt = np.where(np.isneginf(log_miss), 1.0, per_prompt)  # m = 1: always correct
    per_prompt = np.where(log_miss == 0.0, 0.0, per_prompt)  # m = 0: never, even for N = inf
    return np.asarray((per_prompt * w).sum(axis=-1) / w.sum(), dtype=np.float64)
