"""The result of a checkpoint selection: the pick plus the table that justifies it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Relative tolerance under which two statistics count as tied (float sums of the same weights
#: in different orders may differ in the last bits). Among tied candidates the lowest index
#: (the first model of the score table) wins.
TIE_RTOL = 1e-12


def rank_candidates(statistic: NDArray[np.float64]) -> tuple[int, ...]:
    """Candidate indices from best (smallest statistic) to worst; ties go to the lower index.

    After a stable ascending sort, consecutive values within :data:`TIE_RTOL` times
    ``max(1, |first|)`` of the first value of their run form one tied group, listed by index;
    ``inf`` ties with ``inf``.
    """
    stat = np.asarray(statistic, dtype=np.float64)
    order = np.argsort(stat, kind="stable")
    ranking: list[int] = []
    group: list[int] = []
    for i in (int(v) for v in order):
        if group:
            first = stat[group[0]]
            tol = TIE_RTOL * max(1.0, abs(first)) if np.isfinite(first) else 0.0
            if not (stat[i] == first or abs(stat[i] - first) <= tol):
                ranking.extend(sorted(group))
                group = []
        group.append(i)
    ranking.extend(sorted(group))
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
        ranking: candidate indices from best to worst (ties: lower index first).
        pairwise: (candidates, candidates) for tournaments: ``pairwise[j, k]`` =
            hatCov_N(pi_k || pi_j), the weighted fraction of held-out examples on which
            opponent k's likelihood is at least N times candidate j's (Eq. 28); diagonal NaN.
        onpolicy: (candidates, candidates) for the offset tournament: ``onpolicy[j, k]`` =
            hatCov^{pi_j}_N(pi_k || pi_j) (Eq. 32); diagonal NaN.
        contest: (candidates, candidates) for tournaments: what candidate j is charged for
            opponent k (``pairwise`` for Eq. 29, ``pairwise - 2 N^a onpolicy`` for Eq. 32);
            ``statistic[j]`` is its row maximum. Diagonal NaN.
        params: the selector's parameters (``n``, ``a``, ...).
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
