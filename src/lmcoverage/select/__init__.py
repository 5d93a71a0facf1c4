"""Choosing checkpoints by coverage: tournaments, baselines and the coverage oracle.

Every selector takes a (candidates, examples) log-likelihood matrix or a
:class:`~lmcoverage.scoretable.ScoreTable` and returns a :class:`Selection`: the pick, the
per-candidate statistic, the ranking and, for tournaments, the pairwise matrix. Picks do not
depend on the order of the candidates: tied statistics go to the lower held-out cross-entropy,
then the name (:data:`~lmcoverage.select.result.TIE_BREAK`; ``Selection.ties`` lists the tie).
"""

from lmcoverage.select.baselines import min_cross_entropy, min_kl, oracle_coverage
from lmcoverage.select.result import Selection
from lmcoverage.select.tournament import (
    offset_tournament,
    onpolicy_exact,
    onpolicy_from_samples,
    pairwise_coverage,
    simple_tournament,
)

__all__ = [
    "Selection",
    "min_cross_entropy",
    "min_kl",
    "offset_tournament",
    "onpolicy_exact",
    "onpolicy_from_samples",
    "oracle_coverage",
    "pairwise_coverage",
    "simple_tournament",
]
