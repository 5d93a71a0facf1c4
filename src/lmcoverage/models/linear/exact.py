"""Exact metrics of a model against pi_D by enumeration: Cov_N (Eq. 4), KL, Pass@N and the
inherent variance sigma_star^2 (Eq. 8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from lmcoverage import metrics
from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_ns_list
from lmcoverage.models.linear._base import DTYPE, MAX_ENUMERATE, CorrectFn
from lmcoverage.models.linear.enumeration import _enumerate, count_pmfs
from lmcoverage.models.linear.model import LinearARModel
from lmcoverage.models.linear.policies import SequencePolicy, _check_pair, _prompt_vector


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


def _exact_iid(
    data: SequencePolicy, model: SequencePolicy, mu: Tensor
) -> tuple[Tensor, Tensor] | None:
    """(log_ratio, weight) over (prompt, token-count vector) when both policies are i.i.d."""
    prompts = torch.nonzero(mu > 0).squeeze(1)
    lp_d, lp_m = data.iid_log_probs(prompts), model.iid_log_probs(prompts)
    if lp_d is None or lp_m is None:
        return None
    laws = count_pmfs(lp_d.numpy(), data.horizon)
    diff = (lp_d - lp_m).numpy()  # (P, V); log pi(y|x) = sum_v c_v log p_v
    ratio = [diff[i] @ law.counts.T for i, law in enumerate(laws)]
    weight = [float(mu[p]) * law.pmf for p, law in zip(prompts.tolist(), laws, strict=True)]
    return torch.from_numpy(np.concatenate(ratio)), torch.from_numpy(np.concatenate(weight))


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
        raise InputError(f"correct: returned shape {tuple(ok.shape)}, expected {tuple(x.shape)}")
    return ok.bool()


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
        raise InputError("data: vocab_size/horizon differ from the model's")
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
