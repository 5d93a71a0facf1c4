"""Checkpoint selection by coverage, checked where the truth is known exactly.

Three parts, all on finite families (``lmcoverage.select.families``) where pi_D is known and
Cov_N, KL and on-policy coverage are exact sums:

1. Misspecification (after Prop E.1): a two-model class where the likelihood maximiser has
   Cov_N = alpha^2 / (2 log M) and the other model has Cov_N = 0. How often do min
   cross-entropy and the simple tournament (Eq. 29) pick each, on random held-out data?
2. Thm 6.3: over many held-out draws, Cov_{N^(1+a)} of the tournament's pick against
   min_j Cov_{N^a}(pi_j) + 1/N^(1-a) + log(|Pi|/delta)/n, across N and across n.
3. Thm 6.4: the offset tournament (Eq. 32) against the simple one on a family built to fool
   the simple tournament at small N, with exact and with sampled on-policy estimates.

Units of work are (part, seed), run through the run's executor and stored in ``units/`` of the
run directory (``theory_common.run_units``), so a rerun resumes. All randomness comes from
the seed.
"""

from __future__ import annotations

from lmcoverage.experiments.tournament.checks import effect_checks, summary
from lmcoverage.experiments.tournament.compute import run
from lmcoverage.experiments.tournament.presets import PRESETS, TITLE
from lmcoverage.experiments.tournament.report import plot_figures

__all__ = [
    "PRESETS",
    "TITLE",
    "effect_checks",
    "plot_figures",
    "run",
    "summary",
]
