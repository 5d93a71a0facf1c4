"""Horizon dependence: the MLE's KL grows with H, its coverage does not (Prop 3.2, Thm 4.1-4.2).

Part 1, Prop 3.2's instance (:func:`lmcoverage.tasks.linear.prop32_instance`): d = 1,
X = {0, 1}, V = {-1, +1}, mu(1) = 1/(2n), phi(1, y_1:h) = y_h, Theta = [-1, 1]. With constant
probability the n samples never show prompt 1, the MLE stays at 0 there, and the KL is
mu(1) * H * KL_token: linear in H. Coverage only counts the prompt-1 mass, at most 1/(2n), for
every H. The MLE is exact in closed form (tanh(theta) = mean token on prompt 1, clipped to
Theta); KL and Cov_N are exact (token-count enumeration).

Part 2, a random feature map with few pivotal tokens (:func:`lmcoverage.tasks.linear.
pivotal_instance`): per position its own coordinate; at pivotal positions the token is random,
elsewhere deterministic. Two families at each H: ``pivotal`` (a fixed number of pivotal
positions, sigma_star^2 constant in H) and ``dense`` (every position pivotal, sigma_star^2
linear in H). The MLE is the library's :func:`lmcoverage.models.linear.fit_mle`; KL and
sigma_star^2 are exact, Cov_N is Monte Carlo. Thm 4.2 predicts Cov_N(MLE) tracks sigma_star^2,
not H: flat for the pivotal family, growing for the dense one.
"""

from __future__ import annotations

from lmcoverage.experiments.horizon.checks import effect_checks, summary
from lmcoverage.experiments.horizon.compute import prop32_mle, run, run_prop32, run_rich
from lmcoverage.experiments.horizon.presets import PRESETS, TITLE, TYPICAL_TIME, validate
from lmcoverage.experiments.horizon.report import plot_figures, write_html

__all__ = [
    "PRESETS",
    "TITLE",
    "TYPICAL_TIME",
    "effect_checks",
    "plot_figures",
    "prop32_mle",
    "run",
    "run_prop32",
    "run_rich",
    "summary",
    "validate",
    "write_html",
]
