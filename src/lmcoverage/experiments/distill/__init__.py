"""Thm 6.2: distillation with the truncated gradient (Eq. 24-26) is horizon-free; plain
distillation with a constant step size is not.

The teacher is pi_D = pi_{theta_star} on the heterogeneous instance of the SGD experiment
(Prop 5.1, Lemmas I.6-I.7), whose token-level distributions are known. Each step draws a fresh
prompt and teacher response y and moves theta <- Proj(theta + eta * g) with

- ``plain``: g = sum_h grad log pi_theta(y_h | x, y_<h) (every token weight 1);
- ``truncated``: g = sum_h alpha_h grad log pi_theta(y_h | x, y_<h), alpha_h = 1 while the
  running token KL eps_1 + .. + eps_h stays <= A = log N, the fractional remainder at the
  crossing token, 0 after (Lemma I.4 weights, :func:`lmcoverage.updates.truncated_kl_weights`;
  for a constant token KL in closed form, :func:`lmcoverage.updates.truncation_point`).

Tokens are i.i.d. given x here, so eps_h = KL(pi_D(.|x) || pi_theta(.|x)) is the same at every
position and the weights are alpha = (1, .., 1, frac, 0, .., 0) with floor(A / eps) ones. For each
H, eta is tuned per method over a grid at the fixed budget T (best mean final Cov_N over
``tune_replicates`` runs; the reported value is its mean over the other ``replicates`` runs,
exact by token-count enumeration). All runs of one H are one batched computation on
shared samples; one unit per H is cached.
"""

from __future__ import annotations

from lmcoverage.experiments.distill.checks import effect_checks, summary
from lmcoverage.experiments.distill.compute import (
    TokenStream,
    run,
    run_horizon,
    run_method,
    weighted_gradient,
)
from lmcoverage.experiments.distill.presets import METHODS, PRESETS, TITLE, TYPICAL_TIME, validate
from lmcoverage.experiments.distill.report import plot_figures, write_html
from lmcoverage.updates import truncation_point as truncation  # the old public name

__all__ = [
    "METHODS",
    "PRESETS",
    "TITLE",
    "TYPICAL_TIME",
    "TokenStream",
    "effect_checks",
    "plot_figures",
    "run",
    "run_horizon",
    "run_method",
    "summary",
    "truncation",
    "validate",
    "weighted_gradient",
    "write_html",
]
