"""The result of a checkpoint selection: the pick plus the table that justifies it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.select._inputs import Candidates

#: Relative tolerance under which two statistics count as tied (float sums of the same weights
#: in different orders may differ in the last bits): |a - b| <= TIE_RTOL * max(1, |a|).
TIE_RTOL = 1e-12

#: How a selector orders tied candidates (recorded as ``params["tie_break"]``). Neither rule
#: depends on the order in which the candidates are given, so neither does the pick.
TIE_BREAK = "lower held-out cross-entropy, then candidate name (string order)"


def _tie_groups(values: NDArray[np.float64], members: Sequence[int]) -> list[list[int]]:
    """``members`` split into runs of tied ``values``, smallest first.

    After sorting by value, each run holds the values within :data:`TIE_RTOL` times
    ``max(1, |first|)`` of its first (smallest) value; ``inf`` ties with ``inf``. The runs
    depend only on the values, not on the order of ``members``.
    """
    ordered = sorted(members, key=lambda i: values[i])
    groups: list[list[int]] = []
    for i in ordered:
        if groups and _tied(values[groups[-1][0]], values[i]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _tied(first: float, value: float) -> bool:
    if value == first:
        return True
    return bool(np.isfinite(first) and abs(value - first) <= TIE_RTOL * max(1.0, abs(first)))


def rank_candidates(
    statistic: NDArray[np.float64],
    tie_break: NDArray[np.float64] | None = None,
    names: Sequence[str] | None = None,
) -> tuple[int, ...]:
    """Candidate indices from best (smallest statistic) to worst, independent of their order.

    Statistics within :data:`TIE_RTOL` of each other tie (see :func:`_tie_groups`); tied
    candidates are ordered by ``tie_break`` (the held-out cross-entropy in every selector;
    smaller first, tied again within :data:`TIE_RTOL`), then by ``names`` (string order),
    then by index when no names are given.

    Args:
        statistic: (candidates,) the quantity minimised.
        tie_break: optional (candidates,) secondary key.
        names: optional (candidates,) distinct names, the last key.
    """
    stat = np.asarray(statistic, dtype=np.float64)
    second = np.zeros_like(stat) if tie_break is None else np.asarray(tie_break, np.float64)
    label = [str(i) for i in range(stat.size)] if names is None else list(names)
    ranking: list[int] = []
    for group in _tie_groups(stat, range(stat.size)):
        for sub in _tie_groups(second, group):
            ranking.extend(sorted(sub, key=lambda i: (label[i], i) if names else (i,)))
    return tuple(ranking)


def _matrix_json(mat: NDArray[np.float64] | None) -> list[list[float | None]] | None:
    if mat is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in mat]


@dataclass(frozen=True)
class Selection:
    """Which candidate a selector picked, and why.

    Attributes:
        method: selector name (``tournament``, ``offset``, ``cross-entropy``, ``kl``,
            ``oracle``).
        names: (candidates,) candidate names, in the order of the input rows.
        statistic: (candidates,) the quantity minimised (smaller is better).
        ranking: candidate indices from best to worst; ties (within :data:`TIE_RTOL`) are
            ordered by the :data:`TIE_BREAK` rule, so the pick does not depend on the order
            of the candidates.
        pairwise: (candidates, candidates) for tournaments: ``pairwise[j, k]`` =
            hatCov_N(pi_k || pi_j), the weighted fraction of held-out examples on which
            opponent k's likelihood is at least N times candidate j's (Eq. 28); diagonal NaN.
        onpolicy: (candidates, candidates) for the offset tournament: ``onpolicy[j, k]`` =
            hatCov^{pi_j}_N(pi_k || pi_j) (Eq. 32); diagonal NaN.
        contest: (candidates, candidates) for tournaments: what candidate j is charged for
            opponent k (``pairwise`` for Eq. 29, ``pairwise - 2 N^a onpolicy`` for Eq. 32);
            ``statistic[j]`` is its row maximum. Diagonal NaN.
        params: the selector's parameters (``n``, ``a``, ``atol``, ...) and ``tie_break``.
    """

    method: str
    names: tuple[str, ...]
    statistic: NDArray[np.float64]
    ranking: tuple[int, ...]
    pairwise: NDArray[np.float64] | None = None
    onpolicy: NDArray[np.float64] | None = None
    contest: NDArray[np.float64] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        """Index of the chosen candidate."""
        return self.ranking[0]

    @property
    def name(self) -> str:
        """Name of the chosen candidate."""
        return self.names[self.index]

    @property
    def runner_up(self) -> int | None:
        """Index of the second-best candidate (None with a single candidate)."""
        return self.ranking[1] if len(self.ranking) > 1 else None

    @property
    def ties(self) -> tuple[str, ...]:
        """Names whose statistic ties the pick's (within :data:`TIE_RTOL`), pick first.

        The pick won by the ``params["tie_break"]`` rule when this has more than one name.
        """
        tied = set(_tie_groups(self.statistic, range(len(self.names)))[0])
        return tuple(self.names[i] for i in self.ranking if i in tied)

    @property
    def margin(self) -> float:
        """statistic[runner_up] - statistic[pick], clamped at 0 (0: the pick won a tie).

        NaN with a single candidate or when the pick's statistic is infinite.
        """
        second = self.runner_up
        best = self.statistic[self.index]
        if second is None or not np.isfinite(best):
            return float("nan")
        return max(0.0, float(self.statistic[second] - best))  # ties within TIE_RTOL

    def hardest_opponent(self, j: int) -> int | None:
        """The opponent k that sets candidate j's statistic (None for non-tournaments)."""
        if self.contest is None:
            return None
        row = np.where(np.arange(len(self.names)) == j, -np.inf, self.contest[j])
        return int(np.argmax(row))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (NaN matrix entries become ``None``)."""
        return {
            "method": self.method,
            "params": dict(self.params),
            "pick": {"index": self.index, "name": self.name},
            "runner_up": None if self.runner_up is None
            else {"index": self.runner_up, "name": self.names[self.runner_up]},
            "margin": None if np.isnan(self.margin) else self.margin,
            "ties": list(self.ties),
            "ranking": [
                {"rank": r + 1, "index": i, "name": self.names[i],
                 "statistic": float(self.statistic[i]),
                 "hardest_opponent": None if (k := self.hardest_opponent(i)) is None
                 else self.names[k]}
                for r, i in enumerate(self.ranking)
            ],
            "names": list(self.names),
            "pairwise": _matrix_json(self.pairwise),
            "onpolicy": _matrix_json(self.onpolicy),
        }


def build_selection(
    method: str,
    cands: Candidates,
    statistic: NDArray[np.float64],
    params: dict[str, Any] | None = None,
    **matrices: NDArray[np.float64],
) -> Selection:
    """The :class:`Selection` of ``cands`` by ``statistic`` (smaller is better).

    Ranks with :func:`rank_candidates` (ties broken by held-out cross-entropy, then name)
    and records the rule as ``params["tie_break"]``. ``matrices``: ``pairwise``, ``onpolicy``,
    ``contest``.
    """
    ranking = rank_candidates(statistic, cands.cross_entropy(), cands.names)
    return Selection(method, cands.names, statistic, ranking,
                     params={**(params or {}), "tie_break": TIE_BREAK}, **matrices)
