"""Shared pieces of the linear-model package: dtype, callable types, limits, argument checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError

DTYPE = torch.float64
FeatureMap = Callable[[Tensor, Tensor], Tensor]
CorrectFn = Callable[[Tensor, Tensor], Tensor]

#: Relative slack when checking ||theta|| <= radius (float32 rounding after a projection).
THETA_TOL = 1e-6
#: Largest number of (prompt, sequence) pairs :func:`exact_metrics` enumerates by default.
MAX_ENUMERATE = 2_000_000


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_long(name: str, value: ArrayLike | Tensor, ndim: int) -> Tensor:
    t = torch.as_tensor(value)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise InputError(f"{name}: expected integer ids, got dtype {t.dtype}")
    if t.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(t.shape)}")
    return t.long()


def _sequence_log_prob(tokens: Tensor, token_log_probs: Tensor) -> Tensor:
    """(B,) sum_h token_log_probs[b, h, tokens[b, h]]."""
    return token_log_probs.gather(2, tokens[..., None]).squeeze(2).sum(1)


def token_kl_from_log_probs(lp_d: Tensor, lp_m: Tensor) -> Tensor:
    """(...,) KL(p_D || p_m) over the last axis of log-probabilities ``(..., V)`` (broadcast),
    with 0 * log 0 = 0, clamped at 0 against rounding."""
    terms = torch.where(lp_d > -math.inf, lp_d.exp() * (lp_d - lp_m), 0.0)
    return terms.sum(-1).clamp(min=0.0)
