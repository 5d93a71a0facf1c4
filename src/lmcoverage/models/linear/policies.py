"""Sequence distributions over V^H given a prompt id, and the prompt-distribution checks."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear._base import DTYPE, _as_long, _check_int, _sequence_log_prob
from lmcoverage.models.linear.model import LinearARModel


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
            raise InputError(f"theta: expected shape ({model.dim},), got {tuple(self.theta.shape)}")
        if not (math.isfinite(ttt_lr) and ttt_lr >= 0):
            raise InputError(f"lr: must be finite and >= 0, got {ttt_lr!r}")
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
            raise InputError(f"y: expected shape ({b}, {self.horizon}), got {tuple(yt.shape)}")
        tokens = torch.empty(b, self.horizon, dtype=torch.long)
        logp = torch.empty(b, self.horizon, self.vocab_size, dtype=DTYPE)
        for h in range(self.horizon):
            lp = torch.as_tensor(self.next_log_probs(xt, tokens[:, :h]), dtype=DTYPE)
            if lp.shape != (b, self.vocab_size):
                raise InputError(
                    f"next_log_probs: returned shape {tuple(lp.shape)}, "
                    f"expected ({b}, {self.vocab_size})"
                )
            if bool(torch.isnan(lp).any()) or bool(torch.logsumexp(lp, -1).abs().max() > 1e-6):
                raise InputError("next_log_probs: rows must be normalised log-probabilities")
            tokens[:, h] = (
                torch.multinomial(lp.exp(), 1, generator=generator).squeeze(1)
                if yt is None
                else yt[:, h]
            )
            logp[:, h] = lp
        return tokens, logp


def _check_mu(mu: ArrayLike | Tensor, num_prompts: int) -> Tensor:
    m = torch.as_tensor(mu, dtype=DTYPE)
    if m.shape != (num_prompts,):
        raise InputError(f"mu: expected shape ({num_prompts},), got {tuple(m.shape)}")
    if not bool(torch.isfinite(m).all()) or bool((m < 0).any()) or abs(float(m.sum()) - 1) > 1e-6:
        raise InputError(f"mu: must be a probability vector (finite, >= 0, sums to 1), got {m}")
    return m / m.sum()


def _num_prompts(*policies: SequencePolicy | LinearARModel) -> int:
    counts = {p.model.num_prompts for p in policies if isinstance(p, LinearPolicy)}
    counts |= {p.num_prompts for p in policies if isinstance(p, LinearARModel)}
    if len(counts) > 1:
        raise InputError(f"mu: models disagree on the number of prompts {sorted(counts)}")
    return counts.pop() if counts else -1


def _check_pair(data: SequencePolicy, model: SequencePolicy | LinearARModel) -> None:
    if (data.vocab_size, data.horizon) != (model.vocab_size, model.horizon):
        raise InputError(
            f"model: (vocab_size, horizon) = ({model.vocab_size}, {model.horizon}) differs from "
            f"data's ({data.vocab_size}, {data.horizon})"
        )


def _prompt_vector(mu: ArrayLike | Tensor, *policies: SequencePolicy | LinearARModel) -> Tensor:
    n = _num_prompts(*policies)
    return _check_mu(mu, n if n > 0 else len(torch.as_tensor(mu)))
