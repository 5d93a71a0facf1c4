"""Input validation shared by the metric functions: float64 arrays, named errors."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_float_array(name: str, values: ArrayLike, ndim: int | None = 1) -> NDArray[np.float64]:
    """``values`` as a non-empty float64 array without NaN; ValueError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, got {type(values).__name__}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty input")
    if np.isnan(arr).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(f"{name}: NaN at index {where}")
    return arr


def as_weights(weights: ArrayLike | None, size: int, name: str = "weights") -> NDArray[np.float64]:
    """Per-example weights (default all ones), finite, >= 0, summing to > 0, length ``size``."""
    if weights is None:
        return np.ones(size, dtype=np.float64)
    w = as_float_array(name, weights)
    if w.shape != (size,):
        raise ValueError(f"{name}: expected length {size}, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise ValueError(f"{name}: must be finite and >= 0, got {w[bad]} at index {bad}")
    if w.sum() <= 0:
        raise ValueError(f"{name}: total weight must be > 0")
    return w


def as_ns(ns: ArrayLike, name: str = "ns") -> NDArray[np.float64]:
    """Values of N: float64, any shape, each >= 1 (``inf`` allowed); ValueError otherwise."""
    arr = as_float_array(name, ns, ndim=None)
    if (arr < 1).any():
        bad = arr[arr < 1].flat[0]
        raise ValueError(f"{name}: N must be >= 1, got {bad:g}")
    return arr


def as_ns_list(ns: ArrayLike, name: str = "ns") -> NDArray[np.float64]:
    """A scalar or list of N >= 1 as a 1-D float64 array; ValueError otherwise."""
    arr = np.atleast_1d(as_ns(ns, name))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a list of N, got shape {arr.shape}")
    return arr


def check_loglik(name: str, loglik: NDArray[np.float64]) -> None:
    """Sequence log-likelihoods must be <= 0 (a probability above one is an error)."""
    if (loglik > 0).any():
        idx = np.argwhere(loglik > 0)[0]
        where: Any = int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)
        raise ValueError(
            f"{name}: log-likelihood {loglik[tuple(idx)]:g} > 0 at index {where} "
            "(a probability above one)"
        )
