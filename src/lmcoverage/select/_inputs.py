"""Turning selector inputs (arrays or a ScoreTable) into validated float64 matrices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics import cross_entropy
from lmcoverage.metrics._validate import as_float_array, as_ns, as_weights, check_loglik
from lmcoverage.scoretable import ScoreTable

#: A (candidates, examples) log-likelihood matrix, or a ScoreTable holding one.
Scores = Union[ArrayLike, ScoreTable]  # noqa: UP007 (ArrayLike is itself a Union alias)


@dataclass(frozen=True)
class Candidates:
    """Validated selector input: ``loglik`` (candidates, examples), ``weights`` (examples,)."""

    loglik: NDArray[np.float64]
    weights: NDArray[np.float64]
    names: tuple[str, ...]
    table: ScoreTable | None = None  # the ScoreTable the scores came from, if any

    @property
    def size(self) -> int:
        return int(self.loglik.shape[0])

    def cross_entropy(self) -> NDArray[np.float64]:
        """(candidates,) held-out cross-entropy E[-log pi_j(y|x)] (the tie-break key)."""
        return np.array([cross_entropy(row, self.weights) for row in self.loglik])


def candidates(
    loglik: Scores,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    min_candidates: int = 1,
) -> Candidates:
    """Validate ``loglik`` (candidates, examples) or read it, weights and names from a ScoreTable.

    Explicit ``weights``/``names`` override the table's. Raises InputError on NaN, +inf or
    positive log-likelihoods, a wrong shape, duplicated names or too few candidates.
    """
    table: ScoreTable | None = None
    if isinstance(loglik, ScoreTable):
        table = loglik
        loglik = table.matrix("loglik")
        if weights is None:
            weights = table.example_column("weight")
        if names is None:
            names = table.models
    ll = as_float_array("loglik", loglik, ndim=2)
    check_loglik("loglik", ll)
    if ll.shape[0] < min_candidates:
        raise InputError(
            f"loglik: need at least {min_candidates} candidates, got {ll.shape[0]}"
        )
    w = as_weights(weights, ll.shape[1])
    if names is None:
        names = [str(i) for i in range(ll.shape[0])]
    name_tuple = tuple(str(n) for n in names)
    if len(name_tuple) != ll.shape[0]:
        raise InputError(f"names: {len(name_tuple)} names for {ll.shape[0]} candidates")
    seen: set[str] = set()
    for n in name_tuple:
        if n in seen:
            raise InputError(f"names: duplicated candidate name {n!r}")
        seen.add(n)
    return Candidates(ll, w, name_tuple, table)


def data_loglik(loglik_data: ArrayLike | None, cands: Candidates) -> NDArray[np.float64]:
    """log pi_D(y_i|x_i), (examples,): given, or the ScoreTable's ``loglik_data`` column."""
    if loglik_data is None:
        if cands.table is None:
            raise InputError("loglik_data: required (pi_D's log-likelihoods of the examples)")
        loglik_data = cands.table.example_column("loglik_data")
    ld = as_float_array("loglik_data", loglik_data)
    check_loglik("loglik_data", ld)
    if ld.shape != (cands.loglik.shape[1],):
        raise InputError(
            f"loglik_data: expected shape ({cands.loglik.shape[1]},), got {ld.shape}"
        )
    if np.isneginf(ld).any():
        raise InputError(
            f"loglik_data: -inf at index {int(np.flatnonzero(np.isneginf(ld))[0])} "
            "(held-out responses must have positive probability under pi_D)"
        )
    return ld


def threshold_n(n: float, name: str = "n") -> float:
    """A single N >= 1 (finite) as a float; InputError naming ``name`` otherwise."""
    arr = as_ns(n, name)
    if arr.ndim != 0:
        raise InputError(f"{name}: expected a single number, got shape {arr.shape}")
    value = float(arr)
    if not np.isfinite(value):
        raise InputError(f"{name}: must be finite, got {value}")
    return value
