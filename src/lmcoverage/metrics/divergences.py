"""Sequence-level KL, cross-entropy, stopped KL (Eq. 50) and Hellinger distance."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_ns, as_weights, check_loglik


def _weighted_mean(values: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """Weighted mean where zero-weight examples never contribute (not even inf * 0)."""
    used = w > 0
    return float(np.sum(values[used] * w[used]) / w.sum())


def kl_divergence(log_ratio: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Sequence-level KL, D_KL = E[X] with X = log pi_D(y|x) - log pi_hat(y|x), y ~ pi_D.

    Args:
        log_ratio: (examples,) log-ratios of held-out responses drawn from pi_D.
        weights: optional (examples,) non-negative weights.

    Returns:
        The (weighted) mean in nats; ``inf`` if pi_hat gives zero probability to a response
        (log-ratio ``+inf``) with positive weight.

    Raises:
        InputError: on a log-ratio of ``-inf`` (pi_D(y|x) = 0: such a y cannot have been
            sampled from pi_D, so the input is not a sample of X), or NaN.
    """
    x = as_float_array("log_ratio", log_ratio)
    if np.isneginf(x).any():
        bad = int(np.flatnonzero(np.isneginf(x))[0])
        raise InputError(
            f"log_ratio: -inf at index {bad} (pi_D(y|x) = 0: a response pi_D cannot produce; "
            "KL is an average over responses sampled from pi_D)"
        )
    return _weighted_mean(x, as_weights(weights, x.size))


def cross_entropy(loglik: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Sequence-level cross-entropy D_CE = E[-log pi_hat(y|x)] (= KL + entropy of pi_D).

    Args:
        loglik: (examples,) log pi_hat(y_i|x_i), each <= 0 (``-inf`` legal).
    """
    ll = as_float_array("loglik", loglik)
    check_loglik("loglik", ll)
    return _weighted_mean(-ll, as_weights(weights, ll.size))


def stopped_kl(
    token_kl: ArrayLike, n: ArrayLike, weights: ArrayLike | None = None
) -> float | NDArray[np.float64]:
    """Stopped KL D_seq,N = E[min(log N, sum_h KL_h)] (Eq. 50).

    Args:
        token_kl: (examples, H) token-level KL(pi_D(.|x, y_<h) || pi_hat(.|x, y_<h)) along
            each sampled prefix, zero-padded past the end of shorter responses.
        n: N >= 1, scalar or array.
        weights: optional (examples,) weights.

    Returns:
        A float for scalar ``n``, else a float64 array shaped like ``n``.
    """
    kl = as_float_array("token_kl", token_kl, ndim=2)
    if (kl < -1e-9).any():
        raise InputError(f"token_kl: KL must be >= 0, got {kl.min():g}")
    totals = np.clip(kl, 0.0, None).sum(axis=1)
    n_arr = as_ns(n, "n")
    w = as_weights(weights, totals.size)
    capped = np.minimum(np.log(n_arr)[..., None], totals)  # (*n.shape, examples)
    used = w > 0
    out = (capped[..., used] * w[used]).sum(axis=-1) / w.sum()
    return float(out) if np.ndim(n) == 0 else np.asarray(out, dtype=np.float64)


def hellinger_squared(p: ArrayLike, q: ArrayLike) -> float:
    """Squared Hellinger distance D_H^2 = 1/2 sum (sqrt p - sqrt q)^2 of two distributions."""
    pa = as_float_array("p", p)
    qa = as_float_array("q", q)
    if pa.shape != qa.shape:
        raise InputError(f"q: shape {qa.shape} differs from p's {pa.shape}")
    for name, arr in (("p", pa), ("q", qa)):
        if (arr < 0).any() or not np.isclose(arr.sum(), 1.0, atol=1e-9):
            raise InputError(f"{name}: must be a probability vector (>= 0, sums to 1)")
    return float(0.5 * np.sum((np.sqrt(pa) - np.sqrt(qa)) ** 2))
