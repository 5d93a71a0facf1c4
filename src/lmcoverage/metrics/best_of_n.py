"""Exact Best-of-N regret on an enumerated response set, and the reward of Prop D.7.

Best-of-N (BoN) draws N responses y_1..y_N ~ pi_hat(.|x) and returns one with the largest
reward r(x, y) in [0, 1]. Its regret against a target policy pi_T is
J(pi_T) - J(BoN_N(pi_hat)), J(pi) = E_{x~mu} E_{y~pi(.|x)}[r(x, y)]. By the layer-cake
formula, with the distinct reward levels 0 = t_0 < t_1 < ... < t_L of prompt x,

    E[max_i r(x, y_i)] = sum_l (t_l - t_{l-1}) (1 - (1 - pi_hat(r >= t_l | x))^N),

each term an exact Pass@N (:func:`~lmcoverage.metrics.pass_at_n_exact`) of the set
{r >= t_l}. These are the quantities of Prop D.6 and Prop D.7.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_pass_ns, as_weights
from lmcoverage.metrics.passk import pass_at_n_exact
from lmcoverage.metrics.threshold import TIE_ATOL, ratio_at_least


def _conditional_table(name: str, table: ArrayLike) -> NDArray[np.float64]:
    arr = as_float_array(name, table, ndim=2)
    if (arr < 0).any() or not np.allclose(arr.sum(axis=1), 1.0, rtol=0.0, atol=1e-9):
        raise InputError(f"{name}: every row must be a probability distribution "
                         "(entries >= 0, summing to 1)")
    return arr


def best_of_n_regret(
    target: ArrayLike,
    model: ArrayLike,
    reward: ArrayLike,
    n: ArrayLike,
    mu: ArrayLike | None = None,
) -> float | NDArray[np.float64]:
    """Exact BoN regret J(pi_T) - J(BoN_N(pi_hat)) for every N (Prop D.6, Prop D.7).

    Args:
        target: (prompts, responses) pi_T(y|x), rows sum to 1.
        model: (prompts, responses) pi_hat(y|x), rows sum to 1.
        reward: (prompts, responses) r(x, y) in [0, 1].
        n: whole N >= 1 or ``inf``, scalar or any shape.
        mu: optional (prompts,) prompt weights (default uniform).

    Returns:
        A float for scalar ``n``, else an array shaped like ``n``. May be negative (BoN can
        beat pi_T).
    """
    t = _conditional_table("target", target)
    q = _conditional_table("model", model)
    r = as_float_array("reward", reward, ndim=2)
    for name, arr in (("model", q), ("reward", r)):
        if arr.shape != t.shape:
            raise InputError(f"{name}: shape {arr.shape} differs from target's {t.shape}")
    if (r < 0).any() or (r > 1).any():
        raise InputError("reward: must be in [0, 1]")
    w = as_weights(mu, t.shape[0], "mu")
    n_arr = as_pass_ns(n, "n")
    target_value = float(np.sum(w * np.sum(t * r, axis=1)) / w.sum())
    masses, steps = [], []
    for x in range(t.shape[0]):
        levels = np.unique(r[x][r[x] > 0])
        masses += [float(np.sum(q[x][r[x] >= level])) for level in levels]
        steps += list(w[x] * np.diff(levels, prepend=0.0))
    total = float(np.sum(steps))
    if total == 0.0:  # no reward anywhere: both values are 0
        bon_value = np.zeros(n_arr.shape)
    else:
        bon_value = pass_at_n_exact(np.clip(masses, 0.0, 1.0), n_arr, steps) * total / w.sum()
    out = np.asarray(target_value - bon_value, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def coverage_gap_reward(
    log_ratio: ArrayLike, n: float, atol: float = TIE_ATOL
) -> NDArray[np.float64]:
    """Prop D.7's 0/1 reward r(x, y) = 1[pi_T(y|x) >= 2N pi_hat(y|x)] (ties count).

    Under this reward pi_T earns Cov_{2N}(pi_T || pi_hat), while each BoN draw finds the
    rewarded set with probability at most Cov_{2N} / (2N), so BoN's regret is at least
    Cov_{2N} / 2 (:func:`~lmcoverage.metrics.bon_regret_lower_bound`).

    Args:
        log_ratio: log pi_T(y|x) - log pi_hat(y|x), any shape (+inf allowed; NaN, where both
            are zero, gets reward 0).
        n: N >= 1 (the threshold is 2N).
        atol: tie tolerance in nats (:data:`~lmcoverage.metrics.threshold.TIE_ATOL`).

    Returns:
        float64 0/1 array shaped like ``log_ratio``.
    """
    n_arr = as_pass_ns(n, "n")
    if n_arr.ndim != 0:
        raise InputError(f"n: expected a single number, got shape {n_arr.shape}")
    n_value = float(n_arr)
    return ratio_at_least(log_ratio, 2.0 * n_value, atol).astype(np.float64)
