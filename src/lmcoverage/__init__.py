"""lmcoverage: the coverage principle of language-model pre-training, made usable.

Measure coverage profiles, KL, cross-entropy and Pass@N for any set of checkpoints, choose
checkpoints by coverage, and re-run the experiments of "The Coverage Principle"
(arXiv 2510.15020). See ``lmcoverage --help``.
"""

from lmcoverage import metrics
from lmcoverage.metrics import *  # noqa: F403  (the metric functions are the top-level API)
from lmcoverage.scoretable import ScoreTable

__version__ = "0.1.0"

__all__ = ["ScoreTable", *metrics.__all__]
