"""Autoregressive linear models (Eq. 3) and their exact / Monte Carlo coverage metrics.

pi_theta(y_h | x, y_<h) = exp(<theta, phi(x, y_1:h)>) / sum_v exp(<theta, phi(x, y_<h, v)>),
theta in Theta = {||theta|| <= radius}. Everything is float64 torch.

API summary (shapes: B batch, H horizon, V vocabulary, d feature dimension, P prompts):

* ``LinearARModel(features, horizon, vocab_size=None, num_prompts=None, radius=1.0)``
  ``features`` is either
    - a callable ``phi(x, seq) -> (B, d)`` with ``x: (B,)`` prompt ids and ``seq: (B, h)`` tokens
      y_1..y_h (the last column is the candidate token y_h), ``1 <= h <= H``; or
    - a tensor ``(P, V, d)``: phi(x, y_1:h) = features[x, y_h] (tokens i.i.d. given x; enables
      fast paths: position-free rollouts, exact metrics by enumerating token counts); or
    - a tensor ``(P, H, V, d)``: phi(x, y_1:h) = features[x, h-1, y_h].
  Methods (``theta``: ``(d,)`` or one row per sequence ``(B, d)``; ``x: (B,)``; ``y: (B, H)``):
    ``candidate_features(x, prefix) -> (B, V, d)``; ``sequence_features(x, y) -> (B, H, V, d)``;
    ``rollout(theta, x, y=None, lr=0.0, generator=None) -> Rollout`` (the core loop: one tensor op
    per position; samples when ``y`` is None, teacher-forces otherwise; ``lr > 0`` takes one
    projected step per token (Eq. 21-23));
    ``token_log_probs(theta, x, y) -> (B, H, V)``; ``log_prob(theta, x, y) -> (B,)``;
    ``grad_log_prob(theta, x, y) -> (B, d)`` (closed form); ``sample(theta, x, generator)
    -> (B, H)``; ``project(theta)``; ``check_theta(theta, name)``; ``policy(theta)``.
* Sequence distributions (``SequencePolicy``: ``rollout``, ``log_prob``, ``token_log_probs``,
  ``sample``): ``LinearPolicy(model, theta)`` (or ``model.policy(theta)``),
  ``NextTokenPolicy(next_log_probs, vocab_size, horizon)`` for any other pi_D (e.g.
  deterministic), and ``lmcoverage.decoding.ttt.TTTPolicy(model, theta, lr)`` (Eq. 22-23).
* Metrics of a model against a data distribution with prompt distribution ``mu: (P,)``:
  ``exact_metrics(data, model, mu, ns, correct=None) -> CoverageEstimate`` (Cov_N, KL, Pass@N by
  enumeration of V^H sequences, or of token counts for i.i.d. policies),
  ``monte_carlo_metrics(data, model, mu, ns, num_samples, seed=0, confidence=0.95, correct=None)``,
  ``token_kl(data, model, x, y) -> (B, H)``,
  ``inherent_variance_exact(model, data, mu) -> float`` and
  ``inherent_variance_mc(model, data, mu, num_samples, seed=0) -> VarianceEstimate`` (Eq. 8).
  ``correct(x, y) -> (B,) bool`` defines the correct sets G_x for Pass@N.
* Estimators: ``fit_mle(model, x, y, theta0=None, tol=1e-9, max_iter=100) -> MLEResult`` (the
  convex MLE over Theta, with its Frank-Wolfe duality gap), ``online_fit(model, data, mu, theta0,
  method=..., lr=..., steps=T, batch_size=K, ...) -> OnlineFitResult`` (Eq. 14, 17-18, 20, 21,
  Adam, truncated distillation Eq. 24-26, vectorised over C chains, e.g. a step-size grid).
* ``all_sequences(vocab_size, horizon) -> (V^H, H)``; ``count_vectors(vocab_size, horizon)``
  and ``count_pmfs(log_probs, horizon)`` (token counts of i.i.d. responses and their law).

One concern per module: ``model`` (the class and its rollout), ``policies``, ``enumeration``,
``exact`` and ``monte_carlo`` (metrics), ``mle``, ``online``; the update rules come from
:mod:`lmcoverage.updates`.
"""

from lmcoverage.models.linear._base import (
    DTYPE,
    MAX_ENUMERATE,
    THETA_TOL,
    CorrectFn,
    FeatureMap,
    token_kl_from_log_probs,
)
from lmcoverage.models.linear.enumeration import CountPMF, all_sequences, count_pmfs, count_vectors
from lmcoverage.models.linear.exact import (
    CoverageEstimate,
    exact_metrics,
    inherent_variance_exact,
)
from lmcoverage.models.linear.mle import MLEResult, fit_mle
from lmcoverage.models.linear.model import LinearARModel, Rollout
from lmcoverage.models.linear.monte_carlo import (
    VarianceEstimate,
    inherent_variance_mc,
    monte_carlo_metrics,
    token_kl,
)
from lmcoverage.models.linear.online import METHODS, Method, OnlineFitResult, online_fit
from lmcoverage.models.linear.policies import LinearPolicy, NextTokenPolicy, SequencePolicy
from lmcoverage.updates import project_ball

__all__ = [
    "DTYPE",
    "MAX_ENUMERATE",
    "METHODS",
    "THETA_TOL",
    "CorrectFn",
    "CountPMF",
    "CoverageEstimate",
    "FeatureMap",
    "LinearARModel",
    "LinearPolicy",
    "MLEResult",
    "Method",
    "NextTokenPolicy",
    "OnlineFitResult",
    "Rollout",
    "SequencePolicy",
    "VarianceEstimate",
    "all_sequences",
    "count_pmfs",
    "count_vectors",
    "exact_metrics",
    "fit_mle",
    "inherent_variance_exact",
    "inherent_variance_mc",
    "monte_carlo_metrics",
    "online_fit",
    "project_ball",
    "token_kl",
    "token_kl_from_log_probs",
]
