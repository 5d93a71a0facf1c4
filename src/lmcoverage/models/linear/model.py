"""The autoregressive linear model class of Eq. 3 and its batched rollout (Eq. 21-23)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear._base import (
    DTYPE,
    THETA_TOL,
    FeatureMap,
    _as_long,
    _check_int,
    _sequence_log_prob,
)
from lmcoverage.updates import LearningRate, project_ball

if TYPE_CHECKING:
    from lmcoverage.models.linear.policies import LinearPolicy


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
            raise InputError(f"radius: must be finite and > 0, got {radius!r}")
        self.radius = float(radius)
        self._table: Tensor | None = None
        self._phi: FeatureMap | None = None
        if isinstance(features, Tensor):
            table = features.to(DTYPE)
            if table.ndim not in (3, 4) or (table.ndim == 4 and table.shape[1] != self.horizon):
                raise InputError(
                    f"features: expected a (P, V, d) or (P, H={self.horizon}, V, d) tensor, got "
                    f"shape {tuple(table.shape)}"
                )
            if not bool(torch.isfinite(table).all()):
                raise InputError("features: table contains non-finite values")
            for name, given, actual in (
                ("vocab_size", vocab_size, table.shape[-2]),
                ("num_prompts", num_prompts, table.shape[0]),
            ):
                if given is not None and given != actual:
                    raise InputError(
                        f"{name}: {given} disagrees with the features table ({actual})"
                    )
            self._table = table
            self.num_prompts = table.shape[0]
            self.vocab_size = _check_int("vocab_size", table.shape[-2], 2)
            self.dim = _check_int("features (feature dimension d)", table.shape[-1], 1)
        elif callable(features):
            if vocab_size is None or num_prompts is None:
                raise InputError(
                    f"vocab_size, num_prompts: both required with a callable feature map, got "
                    f"{vocab_size!r}, {num_prompts!r}"
                )
            self.vocab_size = _check_int("vocab_size", vocab_size, 2)
            self.num_prompts = _check_int("num_prompts", num_prompts, 1)
            self._phi = features
            probe = features(torch.zeros(1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
            if not isinstance(probe, Tensor) or probe.ndim != 2 or probe.shape[0] != 1:
                shape = tuple(probe.shape) if isinstance(probe, Tensor) else type(probe).__name__
                raise InputError(f"features: phi must return a (B, d) tensor, got {shape} for B=1")
            self.dim = _check_int("features (feature dimension d)", probe.shape[1], 1)
        else:
            raise InputError(f"features: expected a callable or a tensor, got {type(features)}")

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
            raise InputError(f"{name}: prompt ids must be in [0, {self.num_prompts})")
        return t

    def check_responses(self, y: ArrayLike | Tensor, batch: int, name: str = "y") -> Tensor:
        """y as a (B, H) long tensor of token ids in [0, V)."""
        t = _as_long(name, y, 2)
        if t.shape != (batch, self.horizon):
            raise InputError(
                f"{name}: expected shape ({batch}, {self.horizon}), got {tuple(t.shape)}"
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise InputError(f"{name}: token ids must be in [0, {self.vocab_size})")
        return t

    def check_theta(self, theta: ArrayLike | Tensor, name: str = "theta") -> Tensor:
        """theta as float64 ``(d,)`` or ``(B, d)``, finite, inside Theta; else ValueError."""
        t = torch.as_tensor(theta, dtype=DTYPE)
        if t.ndim not in (1, 2) or t.shape[-1] != self.dim:
            raise InputError(
                f"{name}: expected shape (d={self.dim},) or (B, d), got {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{name}: contains non-finite values")
        norm = float(t.detach().norm(dim=-1).max()) if t.numel() else 0.0
        if norm > self.radius * (1.0 + THETA_TOL):
            raise InputError(
                f"{name}: ||theta|| = {norm:.6g} lies outside Theta (radius {self.radius:g})"
            )
        return t

    def project(self, theta: Tensor) -> Tensor:
        """Euclidean projection onto Theta (rows independently)."""
        return project_ball(theta, self.radius)

    def policy(self, theta: ArrayLike | Tensor) -> LinearPolicy:
        """The sequence distribution pi_theta (``theta``: (d,))."""
        from lmcoverage.models.linear.policies import LinearPolicy

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
            raise InputError(f"features: phi returned {shape}, expected ({b * v}, {self.dim})")
        out = out.to(DTYPE)
        if not bool(torch.isfinite(out).all()):
            raise InputError(f"features: phi returned non-finite values at position h={h}")
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
            raise InputError(f"theta: {th.shape[0]} rows for a batch of {b} prompts")
        th = th.expand(b, self.dim)
        lr_t = torch.as_tensor(lr, dtype=DTYPE)
        if lr_t.ndim > 1 or (lr_t.ndim == 1 and lr_t.shape[0] != b):
            raise InputError(f"lr: expected a scalar or ({b},), got shape {tuple(lr_t.shape)}")
        if not bool(torch.isfinite(lr_t).all()) or bool((lr_t < 0).any()):
            raise InputError(f"lr: must be finite and >= 0, got {lr_t.tolist()}")
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
