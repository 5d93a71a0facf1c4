"""Monte Carlo metrics from samples of pi_D: Cov_N with Wilson intervals, KL, Pass@N, token
KLs and the inherent variance sigma_star^2 (Eq. 8)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage import metrics
from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_ns_list
from lmcoverage.models.linear._base import (
    CorrectFn,
    _check_int,
    _sequence_log_prob,
    token_kl_from_log_probs,
)
from lmcoverage.models.linear.exact import CoverageEstimate, _centered_sums, _check_correct
from lmcoverage.models.linear.model import LinearARModel
from lmcoverage.models.linear.policies import SequencePolicy, _check_pair, _prompt_vector


@dataclass(frozen=True)
class VarianceEstimate:
    """Monte Carlo estimate of sigma_star^2 with a normal confidence interval."""

    value: float
    lo: float
    hi: float
    num_samples: int


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: must be in (0, 1), got {confidence}")
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
    return token_kl_from_log_probs(data.token_log_probs(x, y), model.token_log_probs(x, y))


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
