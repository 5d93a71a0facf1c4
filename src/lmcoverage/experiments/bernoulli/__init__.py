"""Sec. 3 case study: the Bernoulli MLE has infinite KL with positive probability, yet Cov_N
for N >= 2 is O(log(1/delta)/n) with probability 1 - delta.

pi_D = Ber(p*), p* < 1/2, the estimator is the MLE over Sec. 3's class {Ber(p): p in (0, 1/2)}:
p_hat = min(k/n, 1/2). For each sample size n
and each p* family (fixed p*, and the rare-event family p* = c/n), ``reps`` independent
estimates are drawn from the run's seeds; their KL and Cov_N are exact (two outcomes). The
exact law of p_hat (Binomial) gives P[KL = inf] = (1-p*)^n to compare with, and the
worst case over a grid of p* of the (1 - delta)-quantile of Cov_N, whose product with
n / log(1/delta) (the constant C) must stay bounded as n grows.
"""

from __future__ import annotations

from lmcoverage.experiments.bernoulli.checks import effect_checks, summary
from lmcoverage.experiments.bernoulli.compute import run, worst_case_quantile
from lmcoverage.experiments.bernoulli.presets import PRESETS, TITLE, TYPICAL_TIME, validate
from lmcoverage.experiments.bernoulli.report import plot_figures, write_html

__all__ = [
    "PRESETS",
    "TITLE",
    "TYPICAL_TIME",
    "effect_checks",
    "plot_figures",
    "run",
    "summary",
    "validate",
    "worst_case_quantile",
    "write_html",
]
