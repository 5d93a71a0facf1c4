"""Thm 6.1: token-level SGD (Eq. 21) with test-time-training decoding (Eq. 22-23) is
horizon-free; decoding the same trained parameters plainly is not.

Instance: Prop 3.2's (:func:`lmcoverage.tasks.linear.prop32_instance`) with near-deterministic
tokens (feature scale ``scale``): prompt 1 has mass 1/(2T), so with constant probability the T
training sequences never show it. Training is token-level SGD over the T sequences (one
projected step per token, Eq. 21). Two decoders of the final theta_T:

- ``plain``: pi_{theta_T}, a proper estimator; Prop 3.2 forces KL >~ H/T;
- ``ttt``: pi_TTT(theta_T, eta) (the same eta), an improper sequence distribution that adapts
  to the response as it is generated.

For each H the step size eta is tuned per decoder over a grid (smallest mean KL). Plain
decoding is scored exactly (token counts); TTT decoding by teacher-forcing fresh pi_D samples
through the same per-token updates (exact per-sample log-likelihoods, Monte Carlo over y).
"""

from __future__ import annotations

from lmcoverage.experiments.ttt.checks import effect_checks, summary
from lmcoverage.experiments.ttt.compute import (
    MAX_TOKENS_PER_BATCH,
    run,
    run_horizon,
    train_token_sgd,
    ttt_log_ratios,
)
from lmcoverage.experiments.ttt.compute import _orders as _orders
from lmcoverage.experiments.ttt.presets import DECODERS, PRESETS, TITLE, TYPICAL_TIME, validate
from lmcoverage.experiments.ttt.report import plot_figures, write_html

__all__ = [
    "DECODERS",
    "MAX_TOKENS_PER_BATCH",
    "PRESETS",
    "TITLE",
    "TYPICAL_TIME",
    "effect_checks",
    "plot_figures",
    "run",
    "run_horizon",
    "summary",
    "train_token_sgd",
    "ttt_log_ratios",
    "validate",
    "write_html",
]
