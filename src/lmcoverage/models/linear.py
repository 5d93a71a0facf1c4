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
* ``all_sequences(vocab_size, horizon) -> (V^H, H)``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from lmcoverage import metrics
from lmcoverage.metrics._validate import as_ns_list
from lmcoverage.updates import (
    AdamState,
    LearningRate,
    adam_update,
    normalized_sgd_update,
    project_ball,
    sgd_update,
    sign_sgd_update,
    truncated_kl_weights,
)

DTYPE = torch.float64
FeatureMap = Callable[[Tensor, Tensor], Tensor]
CorrectFn = Callable[[Tensor, Tensor], Tensor]
Method = Literal["sgd", "normalized_sgd", "sign_sgd", "adam", "token_sgd"]
METHODS: tuple[str, ...] = ("sgd", "normalized_sgd", "sign_sgd", "adam", "token_sgd")

#: Relative slack when checking ||theta|| <= radius (float32 rounding after a projection).
THETA_TOL = 1e-6
#: Largest number of (prompt, sequence) pairs :func:`exact_metrics` enumerates by default.
MAX_ENUMERATE = 2_000_000

__all__ = [
    "METHODS",
    "CoverageEstimate",
    "LinearARModel",
    "LinearPolicy",
    "MLEResult",
    "NextTokenPolicy",
    "OnlineFitResult",
    "Rollout",
    "SequencePolicy",
    "VarianceEstimate",
    "all_sequences",
    "exact_metrics",
    "fit_mle",
    "inherent_variance_exact",
    "inherent_variance_mc",
    "monte_carlo_metrics",
    "online_fit",
    "project_ball",
    "token_kl",
]


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_long(name: str, value: ArrayLike | Tensor, ndim: int) -> Tensor:
    t = torch.as_tensor(value)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer ids, got dtype {t.dtype}")
    if t.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(t.shape)}")
    return t.long()


@dataclass(frozen=True)
class Rollout:
    """One pass of a batch through the model (sampled or teacher-forced).

    Attributes:
        tokens: (B, H) the response (sampled, or the given ``y``).
        token_log_probs: (B, H, V) log pi(. | x, y_<h) at each position (after the TTT updates
            made so far when ``lr > 0``).
        token_grads: (B, H, d) grad_theta log pi(y_h | x, y_<h)
            = phi(x, y_1:h) - E_pi phi(x, y_<h, .), at the parameters used for token h.
        theta: (B, d) the parameters after the last token (the input when ``lr == 0``).
    """

    tokens: Tensor
    token_log_probs: Tensor
    token_grads: Tensor
    theta: Tensor

    @property
    def log_prob(self) -> Tensor:
        """(B,) sequence log-likelihood sum_h log pi(y_h | x, y_<h)."""
        return _sequence_log_prob(self.tokens, self.token_log_probs)


def _sequence_log_prob(tokens: Tensor, token_log_probs: Tensor) -> Tensor:
    """(B,) sum_h token_log_probs[b, h, tokens[b, h]]."""
    return token_log_probs.gather(2, tokens[..., None]).squeeze(2).sum(1)


class LinearARModel:
    """The autoregressive linear model class of Eq. 3 with parameter set {||theta|| <= radius}.

    Args:
        features: a callable ``phi(x: (B,), seq: (B, h)) -> (B, d)``, or a tensor ``(P, V, d)``
            (position-free, tokens i.i.d. given x) or ``(P, H, V, d)``.
        horizon: H >= 1, the response length.
        vocab_size: V >= 2 (inferred from a tensor; required for a callable).
        num_prompts: P >= 1 (inferred from a tensor; required for a callable).
        radius: B > 0, the radius of Theta.
    """

    def __init__(
        self,
        features: FeatureMap | Tensor,
        horizon: int,
        vocab_size: int | None = None,
        num_prompts: int | None = None,
        radius: float = 1.0,
    ) -> None:
        self.horizon = _check_int("horizon", horizon, 1)
        if not (isinstance(radius, int | float) and math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius: must be finite and > 0, got {radius!r}")
        self.radius = float(radius)
        self._table: Tensor | None = None
        self._phi: FeatureMap | None = None
        if isinstance(features, Tensor):
            table = features.to(DTYPE)
            if table.ndim not in (3, 4) or (table.ndim == 4 and table.shape[1] != self.horizon):
                raise ValueError(
                    f"features: expected a (P, V, d) or (P, H={self.horizon}, V, d) tensor, got "
                    f"shape {tuple(table.shape)}"
                )
            if not bool(torch.isfinite(table).all()):
                raise ValueError("features: table contains non-finite values")
            for name, given, actual in (
                ("vocab_size", vocab_size, table.shape[-2]),
                ("num_prompts", num_prompts, table.shape[0]),
            ):
                if given is not None and given != actual:
                    raise ValueError(
                        f"{name}: {given} disagrees with the features table ({actual})"
                    )
            self._table = table
            self.num_prompts = table.shape[0]
            self.vocab_size = _check_int("vocab_size", table.shape[-2], 2)
            self.dim = _check_int("features (feature dimension d)", table.shape[-1], 1)
        elif callable(features):
            if vocab_size is None or num_prompts is None:
                raise ValueError(
                    f"vocab_size, num_prompts: both required with a callable feature map, got "
                    f"{vocab_size!r}, {num_prompts!r}"
                )
            self.vocab_size = _check_int("vocab_size", vocab_size, 2)
            self.num_prompts = _check_int("num_prompts", num_prompts, 1)
            self._phi = features
            probe = features(torch.zeros(1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
            if not isinstance(probe, Tensor) or probe.ndim != 2 or probe.shape[0] != 1:
                shape = tuple(probe.shape) if isinstance(probe, Tensor) else type(probe).__name__
                raise ValueError(f"features: phi must return a (B, d) tensor, got {shape} for B=1")
            self.dim = _check_int("features (feature dimension d)", probe.shape[1], 1)
        else:
            raise ValueError(f"features: expected a callable or a tensor, got {type(features)}")

    # ------------------------------------------------------------------ validation helpers
    @property
    def iid_tokens(self) -> bool:
        """True when phi(x, y_1:h) depends only on (x, y_h): a (P, V, d) feature table."""
        return self._table is not None and self._table.ndim == 3

    @property
    def feature_table(self) -> Tensor | None:
        """The (P, V, d) or (P, H, V, d) float64 feature table; None for a callable."""
        return self._table

    def check_prompts(self, x: ArrayLike | Tensor, name: str = "x") -> Tensor:
        """x as a (B,) long tensor of prompt ids in [0, P)."""
        t = _as_long(name, x, 1)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_prompts):
            raise ValueError(f"{name}: prompt ids must be in [0, {self.num_prompts})")
        return t

    def check_responses(self, y: ArrayLike | Tensor, batch: int, name: str = "y") -> Tensor:
        """y as a (B, H) long tensor of token ids in [0, V)."""
        t = _as_long(name, y, 2)
        if t.shape != (batch, self.horizon):
            raise ValueError(
                f"{name}: expected shape ({batch}, {self.horizon}), got {tuple(t.shape)}"
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise ValueError(f"{name}: token ids must be in [0, {self.vocab_size})")
        return t

    def check_theta(self, theta: ArrayLike | Tensor, name: str = "theta") -> Tensor:
        """theta as float64 ``(d,)`` or ``(B, d)``, finite, inside Theta; else ValueError."""
        t = torch.as_tensor(theta, dtype=DTYPE)
        if t.ndim not in (1, 2) or t.shape[-1] != self.dim:
            raise ValueError(
                f"{name}: expected shape (d={self.dim},) or (B, d), got {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains non-finite values")
        norm = float(t.detach().norm(dim=-1).max()) if t.numel() else 0.0
        if norm > self.radius * (1.0 + THETA_TOL):
            raise ValueError(
                f"{name}: ||theta|| = {norm:.6g} lies outside Theta (radius {self.radius:g})"
            )
        return t

    def project(self, theta: Tensor) -> Tensor:
        """Euclidean projection onto Theta (rows independently)."""
        return project_ball(theta, self.radius)

    def policy(self, theta: ArrayLike | Tensor) -> LinearPolicy:
        """The sequence distribution pi_theta (``theta``: (d,))."""
        return LinearPolicy(self, theta)

    # ------------------------------------------------------------------ features
    def candidate_features(self, x: Tensor, prefix: Tensor) -> Tensor:
        """(B, V, d) phi(x, y_<h, v) for every candidate v, with ``prefix``: (B, h-1)."""
        h = prefix.shape[1] + 1
        if self._table is not None:
            return self._table[x] if self._table.ndim == 3 else self._table[x, h - 1]
        assert self._phi is not None
        b, v = x.shape[0], self.vocab_size
        xs = x.repeat_interleave(v)
        cand = torch.arange(v, dtype=torch.long).repeat(b)[:, None]
        seq = torch.cat([prefix.repeat_interleave(v, dim=0), cand], dim=1)
        out = self._phi(xs, seq)
        if not isinstance(out, Tensor) or out.shape != (b * v, self.dim):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"features: phi returned {shape}, expected ({b * v}, {self.dim})")
        out = out.to(DTYPE)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"features: phi returned non-finite values at position h={h}")
        return out.view(b, v, self.dim)

    def sequence_features(self, x: ArrayLike | Tensor, y: ArrayLike | Tensor) -> Tensor:
        """(B, H, V, d) candidate features at every position along ``y``."""
        xt = self.check_prompts(x)
        yt = self.check_responses(y, xt.shape[0])
        if self._table is not None and self._table.ndim == 3:
            return self._table[xt][:, None].expand(-1, self.horizon, -1, -1)
        return torch.stack(
            [self.candidate_features(xt, yt[:, :h]) for h in range(self.horizon)], dim=1
        )

    # ------------------------------------------------------------------ the core loop
    def rollout(
        self,
        theta: ArrayLike | Tensor,
        x: ArrayLike | Tensor,
        y: ArrayLike | Tensor | None = None,
        lr: LearningRate = 0.0,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """Run a batch through the model, one tensor op per position.

        Args:
            theta: (d,) shared, or (B, d) one per sequence; must lie in Theta.
            x: (B,) prompt ids.
            y: (B, H) responses to teacher-force, or None to sample.
            lr: eta >= 0 (float or (B,) tensor). With eta > 0, after each token theta takes one
                projected ascent step on log pi(y_h | x, y_<h) (token-level SGD, Eq. 21; TTT
                decoding, Eq. 22-23), separately for every sequence.
            generator: torch random generator for sampling.
        """
        xt = self.check_prompts(x)
        b = xt.shape[0]
        yt = None if y is None else self.check_responses(y, b)
        th = self.check_theta(theta)
        if th.ndim == 2 and th.shape[0] != b:
            raise ValueError(f"theta: {th.shape[0]} rows for a batch of {b} prompts")
        th = th.expand(b, self.dim)
        lr_t = torch.as_tensor(lr, dtype=DTYPE)
        if lr_t.ndim > 1 or (lr_t.ndim == 1 and lr_t.shape[0] != b):
            raise ValueError(f"lr: expected a scalar or ({b},), got shape {tuple(lr_t.shape)}")
        if not bool(torch.isfinite(lr_t).all()) or bool((lr_t < 0).any()):
            raise ValueError(f"lr: must be finite and >= 0, got {lr_t.tolist()}")
        adaptive = bool((lr_t > 0).any())
        if self.iid_tokens and not adaptive:
            return self._rollout_iid(th, xt, yt, generator)
        hor, v = self.horizon, self.vocab_size
        tokens = torch.empty(b, hor, dtype=torch.long)
        logp = torch.empty(b, hor, v, dtype=DTYPE)
        grads = torch.empty(b, hor, self.dim, dtype=DTYPE)
        rows = torch.arange(b)
        step = lr_t[:, None] if lr_t.ndim == 1 else lr_t
        fixed = self.candidate_features(xt, tokens[:, :0]) if self.iid_tokens else None
        for h in range(hor):  # small tensors: bmm dispatches faster than einsum
            cand = fixed if fixed is not None else self.candidate_features(xt, tokens[:, :h])
            lp = torch.log_softmax(torch.bmm(cand, th.unsqueeze(2)).squeeze(2), dim=-1)
            p = lp.exp()
            if yt is None:
                tok = torch.multinomial(p, 1, generator=generator).squeeze(1)
            else:
                tok = yt[:, h]
            tokens[:, h] = tok
            logp[:, h] = lp
            g = cand[rows, tok] - torch.bmm(p.unsqueeze(1), cand).squeeze(1)
            grads[:, h] = g
            if adaptive:
                th = project_ball(th + step * g, self.radius)
        return Rollout(tokens, logp, grads, th.clone())

    def _rollout_iid(
        self, th: Tensor, x: Tensor, y: Tensor | None, generator: torch.Generator | None
    ) -> Rollout:
        """Position-free rollout for (P, V, d) tables without TTT: one op for all positions."""
        assert self._table is not None
        cand = self._table[x]  # (B, V, d)
        lp = torch.log_softmax(torch.einsum("bvd,bd->bv", cand, th), dim=-1)
        if y is None:
            y = torch.multinomial(lp.exp(), self.horizon, replacement=True, generator=generator)
        mean = torch.einsum("bv,bvd->bd", lp.exp(), cand)
        chosen = cand.gather(1, y[..., None].expand(-1, -1, self.dim))  # (B, H, d)
        logp = lp[:, None].expand(-1, self.horizon, -1)
        return Rollout(y, logp, chosen - mean[:, None], th.clone())

    # ------------------------------------------------------------------ conveniences
    def token_log_probs(
        self, theta: ArrayLike | Tensor, x: ArrayLike | Tensor, y: ArrayLike | Tensor
    ) -> Tensor:
        """(B, H, V) log pi_theta(. | x, y_<h), teacher-forced."""
        return self.rollout(theta, x, y).token_log_probs

    def log_prob(
        self, theta: ArrayLike | Tensor, x: ArrayLike | Tensor, y: ArrayLike | Tensor
    ) -> Tensor:
        """(B,) exact sequence log-likelihood log pi_theta(y | x), float64."""
        return self.rollout(theta, x, y).log_prob

    def grad_log_prob(
        self, theta: ArrayLike | Tensor, x: ArrayLike | Tensor, y: ArrayLike | Tensor
    ) -> Tensor:
        """(B, d) closed form grad_theta log pi_theta(y|x)
        = sum_h [phi(x, y_1:h) - E_{v ~ pi_theta} phi(x, y_<h, v)]."""
        return self.rollout(theta, x, y).token_grads.sum(1)

    def sample(
        self,
        theta: ArrayLike | Tensor,
        x: ArrayLike | Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B, H) responses y ~ pi_theta(. | x)."""
        return self.rollout(theta, x, None, generator=generator).tokens


# ====================================================================== sequence distributions
class SequencePolicy(ABC):
    """A distribution over responses y in V^H given a prompt id x."""

    vocab_size: int
    horizon: int

    @abstractmethod
    def rollout(
        self,
        x: ArrayLike | Tensor,
        y: ArrayLike | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(tokens (B, H), token_log_probs (B, H, V))``: sampled if ``y`` is None, else
        teacher-forced along ``y``."""

    def iid_log_probs(self, x: Tensor) -> Tensor | None:
        """(B, V) log-probs when tokens are i.i.d. given x (fast exact paths), else None."""
        return None

    def token_log_probs(self, x: ArrayLike | Tensor, y: ArrayLike | Tensor) -> Tensor:
        """(B, H, V) log pi(. | x, y_<h) along ``y``."""
        return self.rollout(x, y)[1]

    def log_prob(self, x: ArrayLike | Tensor, y: ArrayLike | Tensor) -> Tensor:
        """(B,) float64 log pi(y | x)."""
        return _sequence_log_prob(*self.rollout(x, y))

    def sample(self, x: ArrayLike | Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, H) samples y ~ pi(. | x)."""
        return self.rollout(x, None, generator)[0]


class LinearPolicy(SequencePolicy):
    """pi_theta for one theta (d,) of a :class:`LinearARModel` (checked to lie in Theta)."""

    def __init__(
        self, model: LinearARModel, theta: ArrayLike | Tensor, ttt_lr: float = 0.0
    ) -> None:
        self.model = model
        self.theta = model.check_theta(theta)
        if self.theta.ndim != 1:
            raise ValueError(f"theta: expected shape ({model.dim},), got {tuple(self.theta.shape)}")
        if not (math.isfinite(ttt_lr) and ttt_lr >= 0):
            raise ValueError(f"lr: must be finite and >= 0, got {ttt_lr!r}")
        self.ttt_lr = float(ttt_lr)
        self.vocab_size = model.vocab_size
        self.horizon = model.horizon

    def rollout(
        self,
        x: ArrayLike | Tensor,
        y: ArrayLike | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        r = self.model.rollout(self.theta, x, y, lr=self.ttt_lr, generator=generator)
        return r.tokens, r.token_log_probs

    def iid_log_probs(self, x: Tensor) -> Tensor | None:
        table = self.model.feature_table
        if not self.model.iid_tokens or self.ttt_lr > 0 or table is None:
            return None
        return torch.log_softmax(table[x] @ self.theta, dim=-1)


class NextTokenPolicy(SequencePolicy):
    """Any autoregressive distribution given by ``next_log_probs(x: (B,), prefix: (B, h-1))
    -> (B, V)`` normalised log-probs (``-inf`` allowed: e.g. a deterministic pi_D)."""

    def __init__(
        self, next_log_probs: Callable[[Tensor, Tensor], Tensor], vocab_size: int, horizon: int
    ) -> None:
        self.next_log_probs = next_log_probs
        self.vocab_size = _check_int("vocab_size", vocab_size, 2)
        self.horizon = _check_int("horizon", horizon, 1)

    def rollout(
        self,
        x: ArrayLike | Tensor,
        y: ArrayLike | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        xt = _as_long("x", x, 1)
        b = xt.shape[0]
        yt = None if y is None else _as_long("y", y, 2)
        if yt is not None and yt.shape != (b, self.horizon):
            raise ValueError(f"y: expected shape ({b}, {self.horizon}), got {tuple(yt.shape)}")
        tokens = torch.empty(b, self.horizon, dtype=torch.long)
        logp = torch.empty(b, self.horizon, self.vocab_size, dtype=DTYPE)
        for h in range(self.horizon):
            lp = torch.as_tensor(self.next_log_probs(xt, tokens[:, :h]), dtype=DTYPE)
            if lp.shape != (b, self.vocab_size):
                raise ValueError(
                    f"next_log_probs: returned shape {tuple(lp.shape)}, "
                    f"expected ({b}, {self.vocab_size})"
                )
            if bool(torch.isnan(lp).any()) or bool(torch.logsumexp(lp, -1).abs().max() > 1e-6):
                raise ValueError("next_log_probs: rows must be normalised log-probabilities")
            tokens[:, h] = (
                torch.multinomial(lp.exp(), 1, generator=generator).squeeze(1)
                if yt is None
                else yt[:, h]
            )
            logp[:, h] = lp
        return tokens, logp


# ====================================================================== metrics
@dataclass(frozen=True)
class CoverageEstimate:
    """Cov_N for every N, KL and optionally Pass@N of a model against pi_D.

    Exact values have ``lo == hi == value`` and ``num_samples is None``. Monte Carlo intervals:
    Wilson for Cov_N, normal (mean +- z * s.e.) for KL; Pass@N is the unbiased estimator.
    """

    ns: NDArray[np.float64]
    cov: NDArray[np.float64]
    cov_lo: NDArray[np.float64]
    cov_hi: NDArray[np.float64]
    kl: float
    kl_lo: float
    kl_hi: float
    pass_at_n: NDArray[np.float64] | None
    exact: bool
    num_samples: int | None


@dataclass(frozen=True)
class VarianceEstimate:
    """Monte Carlo estimate of sigma_star^2 with a normal confidence interval."""

    value: float
    lo: float
    hi: float
    num_samples: int


def _check_mu(mu: ArrayLike | Tensor, num_prompts: int) -> Tensor:
    m = torch.as_tensor(mu, dtype=DTYPE)
    if m.shape != (num_prompts,):
        raise ValueError(f"mu: expected shape ({num_prompts},), got {tuple(m.shape)}")
    if not bool(torch.isfinite(m).all()) or bool((m < 0).any()) or abs(float(m.sum()) - 1) > 1e-6:
        raise ValueError(f"mu: must be a probability vector (finite, >= 0, sums to 1), got {m}")
    return m / m.sum()


def _num_prompts(*policies: SequencePolicy | LinearARModel) -> int:
    counts = {p.model.num_prompts for p in policies if isinstance(p, LinearPolicy)}
    counts |= {p.num_prompts for p in policies if isinstance(p, LinearARModel)}
    if len(counts) > 1:
        raise ValueError(f"mu: models disagree on the number of prompts {sorted(counts)}")
    return counts.pop() if counts else -1


def _check_pair(data: SequencePolicy, model: SequencePolicy | LinearARModel) -> None:
    if (data.vocab_size, data.horizon) != (model.vocab_size, model.horizon):
        raise ValueError(
            f"model: (vocab_size, horizon) = ({model.vocab_size}, {model.horizon}) differs from "
            f"data's ({data.vocab_size}, {data.horizon})"
        )


def _prompt_vector(mu: ArrayLike | Tensor, *policies: SequencePolicy | LinearARModel) -> Tensor:
    n = _num_prompts(*policies)
    return _check_mu(mu, n if n > 0 else len(torch.as_tensor(mu)))


def all_sequences(vocab_size: int, horizon: int) -> Tensor:
    """(V^H, H) every response in lexicographic order."""
    v = _check_int("vocab_size", vocab_size, 1)
    h = _check_int("horizon", horizon, 1)
    idx = torch.arange(v**h, dtype=torch.long)
    powers = v ** torch.arange(h - 1, -1, -1, dtype=torch.long)
    return (idx[:, None] // powers) % v


def _count_vectors(vocab_size: int, horizon: int) -> Tensor:
    """(C(H+V-1, V-1), V) every vector of token counts summing to H (stars and bars)."""
    rows = []
    for bars in itertools.combinations(range(horizon + vocab_size - 1), vocab_size - 1):
        edges = (-1, *bars, horizon + vocab_size - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(vocab_size)])
    return torch.tensor(rows, dtype=torch.long)


def _enumerate(
    mu: Tensor, vocab_size: int, horizon: int, max_sequences: int
) -> tuple[Tensor, Tensor]:
    """``(x, y)`` for every prompt in mu's support and every response."""
    prompts = torch.nonzero(mu > 0).squeeze(1)
    total = prompts.numel() * vocab_size**horizon
    if total > max_sequences:
        raise ValueError(
            f"max_sequences: enumeration needs {total} (prompt, response) pairs, above the limit "
            f"{max_sequences}; use monte_carlo_metrics"
        )
    seqs = all_sequences(vocab_size, horizon)
    return prompts.repeat_interleave(seqs.shape[0]), seqs.repeat(prompts.numel(), 1)


def _exact_iid(
    data: SequencePolicy, model: SequencePolicy, mu: Tensor
) -> tuple[Tensor, Tensor] | None:
    """(log_ratio, weight) over (prompt, token-count vector) when both policies are i.i.d."""
    prompts = torch.nonzero(mu > 0).squeeze(1)
    lp_d, lp_m = data.iid_log_probs(prompts), model.iid_log_probs(prompts)
    if lp_d is None or lp_m is None:
        return None
    counts = _count_vectors(data.vocab_size, data.horizon).to(DTYPE)  # (M, V)
    log_coef = math.lgamma(data.horizon + 1) - torch.lgamma(counts + 1).sum(1)

    def dot(lp: Tensor) -> Tensor:  # (P, M): sum_v c_v log p_v with 0 * -inf = 0
        terms = torch.where(counts[None] > 0, counts[None] * lp[:, None], 0.0)
        return terms.sum(-1)

    log_d, log_m = dot(lp_d), dot(lp_m)
    weight = mu[prompts][:, None] * torch.exp(log_coef[None] + log_d)
    return (log_d - log_m).flatten(), weight.flatten()


def _finish(
    log_ratio: Tensor,
    weight: Tensor,
    ns: NDArray[np.float64],
    pass_at_n: NDArray[np.float64] | None,
) -> CoverageEstimate:
    keep = weight > 0
    lr_np, w_np = log_ratio[keep].numpy(), weight[keep].numpy()
    cov = metrics.coverage_profile(lr_np, ns, w_np)
    kl = metrics.kl_divergence(lr_np, w_np)
    return CoverageEstimate(ns, cov, cov, cov, kl, kl, kl, pass_at_n, True, None)


def exact_metrics(
    data: SequencePolicy,
    model: SequencePolicy,
    mu: ArrayLike | Tensor,
    ns: ArrayLike,
    correct: CorrectFn | None = None,
    max_sequences: int = MAX_ENUMERATE,
) -> CoverageEstimate:
    """Exact Cov_N(pi_D || pi_hat) (Eq. 4), KL and Pass@N by enumerating every response.

    Enumerates V^H responses per prompt with mu(x) > 0 (or, when both policies draw tokens
    i.i.d. given x and no ``correct`` is given, the C(H+V-1, V-1) token-count vectors, so H in
    the hundreds is fine).

    Args:
        data: pi_D. model: pi_hat. mu: (P,) prompt distribution. ns: N values >= 1.
        correct: optional ``correct(x (B,), y (B, H)) -> (B,) bool`` defining G_x for Pass@N.
        max_sequences: refuse (ValueError) to enumerate more (prompt, response) pairs.
    """
    _check_pair(data, model)
    n_arr = as_ns_list(ns)
    m = _prompt_vector(mu, data, model)
    if correct is None:
        iid = _exact_iid(data, model, m)
        if iid is not None:
            return _finish(*iid, n_arr, None)
    x, y = _enumerate(m, data.vocab_size, data.horizon, max_sequences)
    log_d, log_m = data.log_prob(x, y), model.log_prob(x, y)
    weight = m[x] * torch.exp(log_d)
    pass_at_n = None
    if correct is not None:
        ok = _check_correct(correct, x, y)
        prompts = torch.nonzero(m > 0).squeeze(1)
        mass = torch.zeros(m.shape[0], dtype=DTYPE).index_add_(
            0, x, torch.where(ok, log_m.exp(), 0.0)
        )
        pass_at_n = metrics.pass_at_n_exact(
            mass[prompts].clamp(0.0, 1.0).numpy(), n_arr, m[prompts].numpy()
        )
    return _finish(log_d - log_m, weight, n_arr, pass_at_n)


def _check_correct(correct: CorrectFn, x: Tensor, y: Tensor) -> Tensor:
    ok = torch.as_tensor(correct(x, y))
    if ok.shape != x.shape:
        raise ValueError(f"correct: returned shape {tuple(ok.shape)}, expected {tuple(x.shape)}")
    return ok.bool()


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def _sample_prompts(mu: Tensor, n: int, generator: torch.Generator) -> Tensor:
    return torch.multinomial(mu, n, replacement=True, generator=generator)


def monte_carlo_metrics(
    data: SequencePolicy,
    model: SequencePolicy,
    mu: ArrayLike | Tensor,
    ns: ArrayLike,
    num_samples: int,
    seed: int = 0,
    confidence: float = 0.95,
    correct: CorrectFn | None = None,
) -> CoverageEstimate:
    """Monte Carlo Cov_N, KL (and Pass@N) from ``num_samples`` draws x ~ mu, y ~ pi_D.

    Cov_N gets Wilson intervals; KL a normal interval (infinite if some sample has
    pi_hat(y|x) = 0). With ``correct``, Pass@N uses ``max(num_samples // P, max finite N)``
    model samples per prompt in mu's support and the unbiased estimator 1 - C(n-c, N)/C(n, N).
    """
    _check_pair(data, model)
    n_arr = as_ns_list(ns)
    num = _check_int("num_samples", num_samples, 2)
    z = _z(confidence)
    m = _prompt_vector(mu, data, model)
    gen = torch.Generator().manual_seed(seed)
    x = _sample_prompts(m, num, gen)
    y, lp_tok = data.rollout(x, None, gen)
    log_d = _sequence_log_prob(y, lp_tok)
    ratio = (log_d - model.log_prob(x, y)).numpy()
    cov, lo, hi = metrics.coverage_profile_ci(ratio, n_arr, confidence=confidence)
    kl = float(ratio.mean())
    half = z * float(ratio.std(ddof=1)) / math.sqrt(num) if math.isfinite(kl) else 0.0
    pass_at_n = None
    if correct is not None:
        finite = n_arr[np.isfinite(n_arr)]
        prompts = torch.nonzero(m > 0).squeeze(1)
        per = max(num // prompts.numel(), int(finite.max()) if finite.size else 1)
        xs = prompts.repeat_interleave(per)
        ok = _check_correct(correct, xs, model.sample(xs, gen)).view(prompts.numel(), per)
        c = ok.sum(1).numpy()
        per_prompt = np.stack(
            [metrics.pass_at_k(per, c, k) if math.isfinite(k) else (c > 0) * 1.0 for k in n_arr]
        )  # (len(ns), prompts)
        w = m[prompts].numpy()
        pass_at_n = (per_prompt * w).sum(1) / w.sum()
    return CoverageEstimate(n_arr, cov, lo, hi, kl, kl - half, kl + half, pass_at_n, False, num)


def token_kl(
    data: SequencePolicy, model: SequencePolicy, x: ArrayLike | Tensor, y: ArrayLike | Tensor
) -> Tensor:
    """(B, H) KL(pi_D(. | x, y_<h) || pi_hat(. | x, y_<h)) along each response (0 * log 0 = 0)."""
    _check_pair(data, model)
    return _token_kl(data.token_log_probs(x, y), model.token_log_probs(x, y))


def _token_kl(lp_d: Tensor, lp_m: Tensor) -> Tensor:
    terms = torch.where(lp_d > -math.inf, lp_d.exp() * (lp_d - lp_m), 0.0)
    return terms.sum(-1).clamp(min=0.0)


def _centered_sums(model: LinearARModel, data: SequencePolicy, x: Tensor, y: Tensor) -> Tensor:
    """(B, d) sum_h phi(x, y_1:h) - E_{pi_D} phi(x, y_<h, .) (the vector inside Eq. 8)."""
    feats = model.sequence_features(x, y)  # (B, H, V, d)
    p = data.token_log_probs(x, y).exp()
    chosen = feats.gather(2, y[:, :, None, None].expand(-1, -1, 1, model.dim)).squeeze(2)
    return (chosen - torch.einsum("bhv,bhvd->bhd", p, feats)).sum(1)


def inherent_variance_exact(
    model: LinearARModel,
    data: SequencePolicy,
    mu: ArrayLike | Tensor,
    max_sequences: int = MAX_ENUMERATE,
) -> float:
    """sigma_star^2 (Eq. 8) of ``model``'s feature map under pi_D = ``data``, exactly.

    Closed form H * E_x tr Cov_{pi_D}(phi) when features are (P, V, d) and pi_D is i.i.d.;
    otherwise by enumerating V^H responses per prompt.
    """
    m = _prompt_vector(mu, model, data)
    if data.vocab_size != model.vocab_size or data.horizon != model.horizon:
        raise ValueError("data: vocab_size/horizon differ from the model's")
    prompts = torch.nonzero(m > 0).squeeze(1)
    lp = data.iid_log_probs(prompts)
    table = model.feature_table
    if model.iid_tokens and lp is not None and table is not None:
        f = table[prompts]  # (P, V, d)
        p = lp.exp()
        mean = torch.einsum("pv,pvd->pd", p, f)
        var = torch.einsum("pv,pv->p", p, ((f - mean[:, None]) ** 2).sum(-1))
        return float(model.horizon * (m[prompts] * var).sum())
    x, y = _enumerate(m, model.vocab_size, model.horizon, max_sequences)
    weight = m[x] * data.log_prob(x, y).exp()
    keep = weight > 0
    sq = (_centered_sums(model, data, x[keep], y[keep]) ** 2).sum(1)
    return float((weight[keep] * sq).sum() / weight[keep].sum())


def inherent_variance_mc(
    model: LinearARModel,
    data: SequencePolicy,
    mu: ArrayLike | Tensor,
    num_samples: int,
    seed: int = 0,
    confidence: float = 0.95,
) -> VarianceEstimate:
    """Monte Carlo sigma_star^2 (Eq. 8) from ``num_samples`` draws x ~ mu, y ~ pi_D."""
    num = _check_int("num_samples", num_samples, 2)
    z = _z(confidence)
    m = _prompt_vector(mu, model, data)
    gen = torch.Generator().manual_seed(seed)
    x = _sample_prompts(m, num, gen)
    y = data.sample(x, gen)
    sq = (_centered_sums(model, data, x, y) ** 2).sum(1)
    mean = float(sq.mean())
    half = z * float(sq.std()) / math.sqrt(num)
    return VarianceEstimate(mean, mean - half, mean + half, num)


# ====================================================================== estimators
@dataclass(frozen=True)
class MLEResult:
    """Maximum likelihood over Theta.

    Attributes:
        theta: (d,) the estimate.
        objective: mean log-likelihood (1/n) sum_i log pi_theta(y_i|x_i) at ``theta``.
        gap: Frank-Wolfe duality gap max_{u in Theta} <grad, u - theta>
            = R ||grad|| - <grad, theta>, an upper bound on (optimal objective - objective).
        iterations: Newton iterations used. converged: gap <= tol.
    """

    theta: Tensor
    objective: float
    gap: float
    iterations: int
    converged: bool


def _ball_qp(hess: Tensor, b: Tensor, radius: float) -> Tensor:
    """argmin_{||u|| <= radius} 1/2 u'Hu - b'u for PSD H (exact, by eigendecomposition)."""
    lam, q = torch.linalg.eigh(hess)
    lam = lam.clamp(min=0.0)
    c = q.T @ b
    scale = max(float(lam.max()), 1.0)
    null = lam <= 1e-12 * scale
    in_range = bool((c[null].abs() <= 1e-12 * max(float(c.abs().max()), 1e-300)).all())
    if in_range:
        u0 = q @ torch.where(null, 0.0, c / torch.where(null, 1.0, lam))
        if float(u0.norm()) <= radius:
            return u0

    def norm_at(nu: float) -> float:
        return float((c / (lam + nu)).norm())

    lo, hi = 0.0, float(b.norm()) / radius + 1e-300
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if norm_at(mid) > radius:
            lo = mid
        else:
            hi = mid
    u = q @ (c / (lam + hi))
    return project_ball(u, radius)


def fit_mle(
    model: LinearARModel,
    x: ArrayLike | Tensor,
    y: ArrayLike | Tensor,
    theta0: ArrayLike | Tensor | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> MLEResult:
    """Maximum likelihood argmax_{theta in Theta} (1/n) sum_i log pi_theta(y_i | x_i).

    The objective is concave; each iteration maximises its second-order model exactly over the
    ball and backtracks along the segment, stopping once the duality gap is <= ``tol``.

    Args:
        x: (n,) prompts. y: (n, H) responses. theta0: (d,) start in Theta (default 0).
    """
    if not (tol > 0):
        raise ValueError(f"tol: must be > 0, got {tol!r}")
    _check_int("max_iter", max_iter, 1)
    xt = model.check_prompts(x)
    if xt.numel() == 0:
        raise ValueError("x: needs at least one example")
    yt = model.check_responses(y, xt.shape[0])
    feats = model.sequence_features(xt, yt).reshape(-1, model.vocab_size, model.dim)
    chosen = feats[torch.arange(feats.shape[0]), yt.reshape(-1)].sum(0)  # (d,)
    n = xt.shape[0]
    theta = (
        torch.zeros(model.dim, dtype=DTYPE)
        if theta0 is None
        else model.check_theta(theta0, "theta0")
    )
    if theta.ndim != 1:
        raise ValueError(f"theta0: expected shape ({model.dim},), got {tuple(theta.shape)}")
    radius = model.radius

    def evaluate(th: Tensor, second: bool) -> tuple[float, Tensor, Tensor | None]:
        logits = feats @ th
        lse = torch.logsumexp(logits, -1)
        p = torch.exp(logits - lse[:, None])
        mean = torch.einsum("kv,kvd->kd", p, feats)
        obj = float((chosen @ th - lse.sum()) / n)
        grad = (chosen - mean.sum(0)) / n
        hess = None
        if second:
            second_moment = torch.einsum("kv,kvd,kve->de", p, feats, feats)
            hess = (second_moment - mean.T @ mean) / n
        return obj, grad, hess

    gap = math.inf
    obj = -math.inf
    it = 0
    for it in range(1, max_iter + 1):
        obj, grad, hess = evaluate(theta, True)
        gap = max(radius * float(grad.norm()) - float(grad @ theta), 0.0)
        if gap <= tol:
            return MLEResult(theta, obj, gap, it - 1, True)
        assert hess is not None
        target = _ball_qp(hess, hess @ theta + grad, radius)
        direction = target - theta
        slope = float(grad @ direction)
        t = 1.0
        while t > 1e-12:
            cand = project_ball(theta + t * direction, radius)
            # Armijo, with slack for rounding once the predicted gain is below float resolution
            if evaluate(cand, False)[0] >= obj + 1e-4 * t * slope - 1e-14 * (1.0 + abs(obj)):
                break
            t *= 0.5
        else:
            break
        theta = cand
    obj, grad, _ = evaluate(theta, False)
    gap = max(radius * float(grad.norm()) - float(grad @ theta), 0.0)
    return MLEResult(theta, obj, gap, it, gap <= tol)


@dataclass(frozen=True)
class OnlineFitResult:
    """Parameters along an online run.

    Attributes:
        theta: (C, d) final parameters of the C chains.
        trajectory: (R, C, d) parameters at ``steps``.
        steps: (R,) step counts t at which ``trajectory`` was recorded (0 = theta0, T last).
    """

    theta: Tensor
    trajectory: Tensor
    steps: Tensor


def online_fit(
    model: LinearARModel,
    data: SequencePolicy,
    mu: ArrayLike | Tensor,
    theta0: ArrayLike | Tensor,
    *,
    method: Method,
    lr: LearningRate,
    steps: int,
    batch_size: int = 1,
    lam: LearningRate = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    distill_log_n: float | None = None,
    seed: int = 0,
    record_every: int | None = None,
    chains: int | None = None,
) -> OnlineFitResult:
    """One-pass stochastic optimisation of log-likelihood on fresh samples x ~ mu, y ~ pi_D.

    Runs C chains at once (one tensor op per position for the whole batch); all chains see the
    same samples, so a step-size grid compares methods on identical data. Each step draws K =
    ``batch_size`` fresh sequences and averages their gradients g = (1/K) sum_k grad log pi(y|x):

    - ``"sgd"``: Proj(theta + lr g) (Eq. 14),
    - ``"normalized_sgd"``: Proj(theta + lr g / (lam + ||g||)) (Eq. 17-18),
    - ``"sign_sgd"``: Proj(theta + lr sign g) (Eq. 20),
    - ``"adam"``: bias-corrected Adam with ``betas``, projected,
    - ``"token_sgd"``: one projected step per token, carried across tokens and sequences (Eq. 21).

    With ``distill_log_n = A``, the sequence gradient is the truncated distillation gradient
    sum_h alpha_h grad log pi(y_h | ...) with the token KLs of pi_D against the current model
    (Eq. 24-26; ``inf`` = plain distillation); not with ``token_sgd``.

    Args:
        theta0: (d,) or (C, d) start inside Theta. lr, lam: floats or (C,) tensors (> 0).
        steps: T >= 1. batch_size: K >= 1. record_every: record theta every this many steps
            (default: only the start and the end). chains: C when theta0 is (d,) and lr/lam are
            floats (default 1).
    """
    if method not in METHODS:
        raise ValueError(f"method: choose one of {', '.join(METHODS)}, got {method!r}")
    t_total = _check_int("steps", steps, 1)
    k = _check_int("batch_size", batch_size, 1)
    every = t_total if record_every is None else _check_int("record_every", record_every, 1)
    for name, value in (("lr", lr), ("lam", lam)):
        v = torch.as_tensor(value, dtype=DTYPE)
        if v.ndim > 1 or not bool(torch.isfinite(v).all()) or bool((v <= 0).any()):
            raise ValueError(
                f"{name}: must be finite and > 0 (a float or a (C,) tensor), got {v.tolist()}"
            )
    if distill_log_n is not None and not (distill_log_n >= 0):
        raise ValueError(f"distill_log_n: must be >= 0, got {distill_log_n!r}")
    if distill_log_n is not None and method == "token_sgd":
        raise ValueError("method: distill_log_n is not supported with 'token_sgd'")
    th0 = model.check_theta(theta0, "theta0")
    sizes = {th0.shape[0]} if th0.ndim == 2 else set()
    sizes |= {int(torch.as_tensor(v).shape[0]) for v in (lr, lam) if torch.as_tensor(v).ndim == 1}
    if chains is not None:
        sizes.add(_check_int("chains", chains, 1))
    if len(sizes) > 1:
        raise ValueError(f"theta0: the number of chains is ambiguous: {sorted(sizes)}")
    c = sizes.pop() if sizes else 1
    theta = th0.expand(c, model.dim).clone()
    lr_c = torch.as_tensor(lr, dtype=DTYPE).expand(c).clone()
    lam_c = torch.as_tensor(lam, dtype=DTYPE).expand(c).clone()
    m = _prompt_vector(mu, model, data)
    _check_pair(data, model)
    gen = torch.Generator().manual_seed(seed)
    xs = _sample_prompts(m, t_total * k, gen)
    ys, lp_data = data.rollout(xs, None, gen)
    xs, ys = xs.view(t_total, k), ys.view(t_total, k, model.horizon)
    lp_data = lp_data.view(t_total, k, model.horizon, model.vocab_size)
    record = [theta.clone()]
    recorded = [0]
    adam: AdamState | None = None
    for t in range(t_total):
        if method == "token_sgd":
            for j in range(k):
                x_j = xs[t, j].expand(c)
                theta = model.rollout(theta, x_j, ys[t, j].expand(c, -1), lr=lr_c).theta
        else:
            x_b = xs[t].repeat(c)
            y_b = ys[t].repeat(c, 1)
            r = model.rollout(theta.repeat_interleave(k, 0), x_b, y_b)
            grads = r.token_grads
            if distill_log_n is not None:
                eps = _token_kl(lp_data[t].repeat(c, 1, 1), r.token_log_probs)
                grads = grads * truncated_kl_weights(eps, distill_log_n)[..., None]
            g = grads.sum(1).view(c, k, model.dim).mean(1)
            if method == "sgd":
                theta = sgd_update(theta, g, lr_c, model.radius)
            elif method == "normalized_sgd":
                theta = normalized_sgd_update(theta, g, lr_c, lam_c, model.radius)
            elif method == "sign_sgd":
                theta = sign_sgd_update(theta, g, lr_c, model.radius)
            else:
                theta, adam = adam_update(theta, g, adam, lr_c, betas, radius=model.radius)
        if (t + 1) % every == 0 or t + 1 == t_total:
            record.append(theta.clone())
            recorded.append(t + 1)
    return OnlineFitResult(theta, torch.stack(record), torch.tensor(recorded, dtype=torch.long))
