"""Test-time-training decoding (Eq. 22-23, Thm 6.1) for autoregressive linear models.

To decode from theta: start every sequence at theta; after each token y_h (sampled, or
teacher-forced when scoring) take one projected step theta' <- Proj(theta' + eta * grad log
pi_theta'(y_h | x, y_<h)); draw the next token from pi_theta'. The induced pi_TTT(theta, eta) is a
proper distribution over V^H whose log-likelihoods are exact by teacher forcing through the same
updates. Batched: every sequence in a batch carries its own theta' (one tensor op per position).

    from lmcoverage.decoding import TTTPolicy
    ttt = TTTPolicy(model, theta, lr=0.1)
    y = ttt.sample(x, torch.Generator().manual_seed(0))   # (B, H)
    ttt.log_prob(x, y)                                     # (B,) float64, exact
    exact_metrics(data, ttt, mu, ns=[2, 8])                # it is a SequencePolicy
"""

from __future__ import annotations

import math

from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear import LinearARModel, LinearPolicy


class TTTPolicy(LinearPolicy):
    """pi_TTT(theta, eta): the TTT-decoded sequence distribution of a :class:`LinearARModel`.

    Args:
        model: the linear model (feature map, horizon, Theta).
        theta: (d,) starting parameters, inside Theta; every sequence restarts from it.
        lr: eta > 0, the per-token step size.
    """

    def __init__(self, model: LinearARModel, theta: ArrayLike | Tensor, lr: float) -> None:
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise InputError(f"lr: eta must be finite and > 0, got {lr!r}")
        super().__init__(model, theta, ttt_lr=float(lr))

    @property
    def lr(self) -> float:
        """eta, the per-token step size."""
        return self.ttt_lr
