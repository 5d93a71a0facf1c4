"""Checkpoint selection by coverage, checked where the truth is known exactly.

Three parts, all on finite families (``lmcoverage.select.families``) where pi_D is known and
Cov_N, KL and on-policy coverage are exact sums:

1. Misspecification (Prop E.1): a two-model class where one model has sup |log pi_D -
   log pi| = alpha (Cov_N = 0) and the likelihood maximiser has Cov_N = alpha^2 / (8 log M).
   How often do min cross-entropy (the proposition: >= 1/4) and the simple tournament (Eq. 29)
   pick each, on random held-out data?
2. Thm 6.3: on misspecified families where some candidates break the bound, Cov_{N^(1+a)} of
   the tournament's pick against min_j Cov_{N^a}(pi_j) + 1/N^(1-a) + log(|Pi|/delta)/n, across
   N and across n, with a random pick and the minimum-KL candidate as controls.
3. Thm 6.4: Eq. 33 (Cov_{2N^(1+a)} of the offset tournament's pick against log(|Pi|/delta)/n)
   where the theorem applies (a > 0, N^(1-2a) >= 8, pi_D in the family), with exact and
   sampled on-policy estimates and a random control; then a = 0.5, outside the theorem
   (a heuristic), against the simple tournament at small N.

Units of work are (part, seed), run through the run's executor and stored in ``units/`` of the
run directory (``theory_common.run_units``), so a rerun resumes. All randomness comes from
the seed.
"""

from __future__ import annotations

from lmcoverage.experiments.tournament.checks import effect_checks, summary
from lmcoverage.experiments.tournament.compute import run
from lmcoverage.experiments.tournament.presets import PRESETS, TITLE, TYPICAL_TIME
from lmcoverage.experiments.tournament.report import plot_figures

__all__ = [
    "PRESETS",
    "TITLE",
    "TYPICAL_TIME",
    "effect_checks",
    "plot_figures",
    "run",
    "summary",
]
