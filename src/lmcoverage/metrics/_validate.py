"""Input validation shared by the metric functions: float64 arrays, named errors."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError


def as_float_array(name: str, values: ArrayLike, ndim: int | None = 1) -> NDArray[np.float64]:
    """``values`` as a non-empty float64 array without NaN; InputError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected numbers, got {type(values).__name__}") from None
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: empty input")
    if np.isnan(arr).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        where = first[0] if len(first) == 1 else first
        raise InputError(f"{name}: NaN at index {where}")
    return arr


def as_weights(weights: ArrayLike | None, size: int, name: str = "weights") -> NDArray[np.float64]:
    """Per-example weights (default all ones), finite, >= 0, summing to > 0, length ``size``."""
    if weights is None:
        return np.ones(size, dtype=np.float64)
    w = as_float_array(name, weights)
    if w.shape != (size,):
        raise InputError(f"{name}: expected length {size}, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise InputError(f"{name}: must be finite and >= 0, got {w[bad]} at index {bad}")
    if w.sum() <= 0:
        raise InputError(f"{name}: total weight must be > 0")
    return w


def as_ns(ns: ArrayLike, name: str = "ns") -> NDArray[np.float64]:
    """Values of N: float64, any shape, each >= 1 (``inf`` allowed); InputError otherwise."""
    arr = as_float_array(name, ns, ndim=None)
    if (arr < 1).any():
        bad = arr[arr < 1].flat[0]
        raise InputError(f"{name}: N must be >= 1, got {bad:g}")
    return arr


def as_ns_list(ns: ArrayLike, name: str = "ns") -> NDArray[np.float64]:
    """A scalar or list of N >= 1 as a 1-D float64 array; InputError otherwise."""
    arr = np.atleast_1d(as_ns(ns, name))
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a list of N, got shape {arr.shape}")
    return arr


def as_pass_ns(ns: ArrayLike, name: str = "ns") -> NDArray[np.float64]:
    """Numbers of samples N for Pass@N: whole numbers >= 1 or ``inf``, any shape."""
    arr = as_ns(ns, name)
    finite = arr[np.isfinite(arr)]
    if (finite != np.round(finite)).any():
        bad = finite[finite != np.round(finite)][0]
        raise InputError(f"{name}: Pass@N needs a whole number of samples N >= 1 (or inf), "
                         f"got {bad:g}")
    return arr


def check_loglik(name: str, loglik: NDArray[np.float64]) -> None:
    """Sequence log-likelihoods must be <= 0 (a probability above one is an error)."""
    if (loglik > 0).any():
        idx = np.argwhere(loglik > 0)[0]
        where: int | tuple[int, ...] = (int(idx[0]) if len(idx) == 1
                                        else tuple(int(i) for i in idx))
        raise InputError(
            f"{name}: log-likelihood {loglik[tuple(idx)]:g} > 0 at index {where} "
            "(a probability above one)"
        )
