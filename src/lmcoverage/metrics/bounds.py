"""The paper's conversions between divergences, coverage and Best-of-N regret (Appendix D).

Every function takes scalars or arrays (broadcast together) and returns a float for scalar
input, else an array. At N = inf each returns its limit (never NaN); a divergence of ``inf``
gives the trivial bound.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_ns, as_weights


def _in_range(name: str, value: ArrayLike, high: float = np.inf) -> NDArray[np.float64]:
    """``value`` as float64 in [0, high]; up to 1e-12 above ``high`` is rounding (clipped)."""
    arr = as_float_array(name, value, ndim=None)
    if (arr < 0).any() or (arr > high + 1e-12).any():
        bad = arr[(arr < 0) | (arr > high + 1e-12)].flat[0]
        raise InputError(f"{name}: must be in [0, {high:g}], got {bad:g}")
    return np.minimum(arr, high)


def _out(arr: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(arr) if arr.ndim == 0 else arr


def _cap(raw: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return _out(np.minimum(1.0, raw))


def kl_to_coverage_bound(kl: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop 3.1 / D.1: Cov_N <= D_KL / (log N - 1 + 1/N), capped at 1.

    N = 1 (denominator 0) and KL = inf give the trivial 1; N = inf gives 0 for finite KL.
    """
    d, n_arr = np.broadcast_arrays(_in_range("kl", kl), as_ns(n, "n"))
    denom = np.log(n_arr) - 1.0 + 1.0 / n_arr
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where((denom > 0) & np.isfinite(d), d / np.where(denom > 0, denom, 1.0), np.inf)
    return _cap(raw)


def hellinger_to_coverage_bound(h2: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.4: Cov_N <= 2N / (sqrt(N) - 1)^2 * D_H^2 = 2 D_H^2 / (1 - N^-1/2)^2, capped at 1.

    N = 1 gives the trivial 1; N = inf gives the limit 2 D_H^2.
    """
    h, n_arr = np.broadcast_arrays(_in_range("h2", h2, 1.0), as_ns(n, "n"))
    gap = (1.0 - 1.0 / np.sqrt(n_arr)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(gap > 0, 2.0 * h / np.where(gap > 0, gap, 1.0), np.inf)
    return _cap(raw)


def sequence_hellinger_coverage_lower_bound(
    h2: ArrayLike, n: ArrayLike
) -> float | NDArray[np.float64]:
    """Cov_N >= 1 - sqrt(N) (1 - D_H^2), floored at 0, from the sequence-level D_H^2.

    Not the paper's Prop D.11 (that is :func:`stepwise_hellinger_coverage_lower_bound`, with
    per-step distances): a sequence-level companion of it. With D_H^2 = 1/2 sum (sqrt p -
    sqrt q)^2 = 1 - sum sqrt(p q): on the responses with pi_D/pi_hat < N,
    sqrt(pi_hat/pi_D) > N^-1/2, so 1 - D_H^2 = E_{pi_D}[sqrt(pi_hat/pi_D)] >= N^-1/2 (1 - Cov_N).
    The constant is tight: pi_hat = 0 on a set of pi_D-mass c and pi_hat = pi_D / N (just
    above) elsewhere, the rest of pi_hat's mass off pi_D's support, gives Cov_N = c and the
    bound tends to c. It is weak on mixtures of prompts: D_H^2 of the mixture averages the
    prompts' distances, so one prompt the model misses entirely gives at most its weight to
    D_H^2 and the bound stays 0 unless that weight exceeds 1 - N^-1/2.

    Args:
        h2: D_H^2(pi_D, pi_hat) in [0, 1] of the whole (prompt, response) distribution.
        n: N >= 1 (``inf`` allowed: the limit is 1 when D_H^2 = 1, disjoint supports, else 0).
    """
    h, n_arr = np.broadcast_arrays(_in_range("h2", h2, 1.0), as_ns(n, "n"))
    affinity = 1.0 - h  # Bhattacharyya coefficient sum sqrt(p q)
    with np.errstate(invalid="ignore"):
        raw = np.where(affinity > 0, 1.0 - np.sqrt(n_arr) * affinity, 1.0)
    return _out(np.maximum(0.0, raw))


def _step_sums(step_h2_sums: ArrayLike, weights: ArrayLike | None
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The sums S_i >= 0 (+inf allowed) and their normalised weights, zero weights dropped."""
    s = as_float_array("step_h2_sums", step_h2_sums)
    if s.size == 0:
        raise InputError("step_h2_sums: need at least one trajectory")
    if np.isnan(s).any() or (s < 0).any():
        raise InputError(f"step_h2_sums: sums of D_H^2 must be >= 0, got {np.nanmin(s):g}")
    w = as_weights(weights, s.size)
    keep = w > 0
    return s[keep], w[keep] / w[keep].sum()


def stepwise_hellinger_coverage_lower_bound(
    step_h2_sums: ArrayLike, n: ArrayLike, delta: ArrayLike, weights: ArrayLike | None = None
) -> float | NDArray[np.float64]:
    """Prop D.11: Cov_N >= P_{pi_D}[S >= log(N/delta)] - delta, floored at 0.

    S = sum_h D_H^2(pi_D(.|x, y_<h), pi_hat(.|x, y_<h)) is the sum of the per-step squared
    Hellinger distances along a trajectory (x, y) ~ pi_D; the probability is the empirical one
    over the given trajectories (exact when they enumerate pi_D with ``weights`` = its
    probabilities). The proof: E_{pi_D}[exp(S - X/2)] <= 1 for X = log pi_D/pi_hat, so
    P[X/2 <= S - log(1/delta)] <= delta by Markov.

    Args:
        step_h2_sums: (trajectories,) S_i in [0, H] (``inf`` allowed: counts for every N).
        n: N >= 1, scalar or array. delta: in (0, 1), broadcast with ``n``.
        weights: optional (trajectories,) weights (e.g. pi_D probabilities).

    Returns:
        A float for scalar ``n`` and ``delta``, else an array of their broadcast shape.
    """
    s, w = _step_sums(step_h2_sums, weights)
    d = as_float_array("delta", delta, ndim=None)
    if ((d <= 0) | (d >= 1)).any():
        raise InputError(f"delta: must be in (0, 1), got {d[(d <= 0) | (d >= 1)].flat[0]:g}")
    n_arr, d = np.broadcast_arrays(as_ns(n, "n"), d)
    level = np.log(n_arr) - np.log(d)  # (*shape,)
    tail = (w * (s >= level[..., None])).sum(axis=-1)
    return _out(np.maximum(0.0, tail - d))


def best_stepwise_hellinger_coverage_lower_bound(
    step_h2_sums: ArrayLike, n: ArrayLike, weights: ArrayLike | None = None
) -> float | NDArray[np.float64]:
    """Prop D.11 at its best delta: sup_{delta in (0, 1)} P[S >= log(N/delta)] - delta, >= 0.

    The tail P[S >= log(N/delta)] only jumps where delta = N exp(-S_i), so the supremum is
    attained at one of those deltas (below 1), or approached as delta -> 0 (the mass with
    S = inf). Same arguments as :func:`stepwise_hellinger_coverage_lower_bound` without delta.
    """
    s, w = _step_sums(step_h2_sums, weights)
    n_arr = as_ns(n, "n")
    order = np.argsort(-s, kind="stable")
    s_sorted, tail = s[order], np.cumsum(w[order])
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # P[S >= s] at each distinct value s
    s_sorted, tail = s_sorted[last], tail[last]
    with np.errstate(over="ignore", invalid="ignore"):
        deltas = np.where(np.isposinf(s_sorted), 0.0,
                          np.exp(np.log(n_arr)[..., None] - s_sorted))  # (*n.shape, distinct)
    gain = np.where(deltas < 1.0, tail - deltas, 0.0)
    return _out(np.maximum(0.0, gain.max(axis=-1)))


def stopped_kl_to_coverage_bound(d_seq: ArrayLike, n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.10: for N > e, Cov_N <= 2 / (log N - 1) * D_seq,N, capped at 1.

    N = inf gives 0 for finite D_seq,inf (= KL); an infinite D_seq gives the trivial 1.
    """
    d, n_arr = np.broadcast_arrays(_in_range("d_seq", d_seq), as_ns(n, "n"))
    if (n_arr <= np.e).any():
        raise InputError(f"n: Prop D.10 needs N > e, got {n_arr.min():g}")
    with np.errstate(invalid="ignore"):
        raw = np.where(np.isfinite(d), 2.0 / (np.log(n_arr) - 1.0) * d, np.inf)
    return _cap(raw)


def coverage_decay_constant(
    log_ratio: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """C = sup_{N >= 1} Cov_N log N of a sample of X = log pi_D - log pi_hat (Prop D.3).

    Cov_N is non-increasing and only drops just after N = exp(X_i), so the supremum is
    attained at one of those N: C = max_i X_i P[X >= X_i] over X_i > 0 (a supremum over N,
    so no tie tolerance is involved). ``inf`` when some X = +inf has positive weight.

    Args:
        log_ratio: (examples,) log-ratios, +inf allowed; weights: optional (examples,).
    """
    x = as_float_array("log_ratio", log_ratio)
    w = as_weights(weights, x.size)
    keep = (w > 0) & (x > 0)
    if np.isposinf(x[keep]).any():
        return float("inf")
    if not keep.any():
        return 0.0
    order = np.argsort(-x[keep], kind="stable")
    xs, tail = x[keep][order], np.cumsum(w[keep][order]) / w.sum()
    last = np.r_[xs[1:] != xs[:-1], True]  # last occurrence of each value: P[X >= value]
    return float(np.max(xs[last] * tail[last]))


def coverage_to_kl_bound(c: ArrayLike, log_w_max: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.3 (uniform coverage decay implies bounded KL): D_KL <= C (1 + log(log W_max / C)).

    Here C = sup_N Cov_N log N (:func:`coverage_decay_constant`) and W_max = sup pi_D/pi_hat
    over pi_D's support, given as its log. From D_KL <= E[X^+] = int_0^{log W_max} P[X > t] dt
    with P[X > t] <= min(1, C/t). The constant is tight (X >= 0 with tail exactly C/t up to
    log W_max, pi_hat's spare mass off pi_D's support).

    Args:
        c: C >= 0 (``inf`` gives ``inf``); scalar or array.
        log_w_max: log W_max >= C (C <= log W_max always holds: Cov_N = 0 for N > W_max).

    Returns:
        The bound in nats; 0 when C = 0 (then X <= 0 under pi_D, so KL = 0).
    """
    c_arr, lw = np.broadcast_arrays(_in_range("c", c),
                                    as_float_array("log_w_max", log_w_max, ndim=None))
    too_big = c_arr > lw + 1e-12 * np.maximum(1.0, np.abs(lw))
    if too_big.any():
        bad = int(np.flatnonzero(too_big.ravel())[0])
        raise InputError(f"c: C = {c_arr.flat[bad]:g} exceeds log_w_max = {lw.flat[bad]:g} "
                         "(C = sup_N Cov_N log N <= log W_max)")
    with np.errstate(all="ignore"):
        raw = c_arr * (1.0 + np.log(np.maximum(lw, c_arr) / c_arr))
    raw = np.where(np.isinf(c_arr) | np.isinf(lw), np.inf, raw)
    return _out(np.where(c_arr > 0, raw, 0.0))


def coverage_chain_rule_bound(
    cov_data_model: ArrayLike, cov_target_data: ArrayLike, m2: ArrayLike
) -> float | NDArray[np.float64]:
    """Prop D.5 (chain rule) for coverage through an intermediate pi_D.

    Cov_{M1}(pi_T || pi_hat) <= M2 Cov_{M1/M2}(pi_D || pi_hat) + Cov_{M2}(pi_T || pi_D),
    capped at 1. The factor M2 is tight (pi_T just below M2 pi_D where pi_D/pi_hat = M1/M2).

    Args:
        cov_data_model: Cov_{M1/M2}(pi_D || pi_hat) in [0, 1].
        cov_target_data: Cov_{M2}(pi_T || pi_D) in [0, 1].
        m2: the split factor M2 >= 1 (``inf``: the first term is 0 when its coverage is 0).
    """
    a, b, m = np.broadcast_arrays(_in_range("cov_data_model", cov_data_model, 1.0),
                                  _in_range("cov_target_data", cov_target_data, 1.0),
                                  as_ns(m2, "m2"))
    with np.errstate(invalid="ignore"):  # inf * 0 where the first term is 0 anyway
        return _cap(np.where(a > 0, m * a, 0.0) + b)


def bon_regret_upper_bound(
    cov_m: ArrayLike, n: ArrayLike, m: ArrayLike
) -> float | NDArray[np.float64]:
    """Prop D.6 (coverage suffices): Best-of-N regret against pi_T is at most Cov_M + eps.

    With N >= 2 M log(1/eps), the smallest admissible eps is exp(-N / (2M)); the bound
    applies when Cov_M(pi_T || pi_hat) <= 1/2 and is the trivial 1 otherwise. N = inf gives
    eps = 0 (also for M = inf: the limit in N is taken first).

    Args:
        cov_m: Cov_M(pi_T || pi_hat) in [0, 1]. n: N >= 1. m: M >= 1.
    """
    cov, n_arr, m_arr = np.broadcast_arrays(_in_range("cov_m", cov_m, 1.0), as_ns(n, "n"),
                                            as_ns(m, "m"))
    with np.errstate(invalid="ignore"):
        exponent = np.where(np.isinf(n_arr), np.inf, n_arr / (2.0 * m_arr))
    return _cap(np.where(cov <= 0.5, cov + np.exp(-exponent), 1.0))


def bon_regret_lower_bound(cov_2n: ArrayLike) -> float | NDArray[np.float64]:
    """Prop D.7 (coverage is necessary): the 0/1 reward r = 1[pi_T >= 2N pi_hat] has BoN regret
    >= Cov_{2N}(pi_T || pi_hat) / 2 (see :func:`~lmcoverage.metrics.coverage_gap_reward`).

    The constant 1/2 is attained at N = 1 when pi_hat = pi_T / 2 on the rewarded set.
    """
    return _out(_in_range("cov_2n", cov_2n, 1.0) / 2.0)
