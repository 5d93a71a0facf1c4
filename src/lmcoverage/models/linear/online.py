"""One-pass stochastic optimisation of a linear model on fresh samples of pi_D: SGD (Eq. 14),
normalized SGD (Eq. 17-18), SignSGD (Eq. 20), Adam, token-level SGD (Eq. 21) and truncated
distillation (Eq. 24-26), vectorised over chains (e.g. a step-size grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear._base import DTYPE, _check_int, token_kl_from_log_probs
from lmcoverage.models.linear.model import LinearARModel
from lmcoverage.models.linear.monte_carlo import _sample_prompts
from lmcoverage.models.linear.policies import SequencePolicy, _check_pair, _prompt_vector
from lmcoverage.updates import LearningRate, make_update, run_updates, truncated_kl_weights

Method = Literal["sgd", "normalized_sgd", "sign_sgd", "adam", "token_sgd"]
METHODS: tuple[str, ...] = ("sgd", "normalized_sgd", "sign_sgd", "adam", "token_sgd")


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
        raise InputError(f"method: choose one of {', '.join(METHODS)}, got {method!r}")
    t_total = _check_int("steps", steps, 1)
    k = _check_int("batch_size", batch_size, 1)
    every = t_total if record_every is None else _check_int("record_every", record_every, 1)
    for name, value in (("lr", lr), ("lam", lam)):
        v = torch.as_tensor(value, dtype=DTYPE)
        if v.ndim > 1 or not bool(torch.isfinite(v).all()) or bool((v <= 0).any()):
            raise InputError(
                f"{name}: must be finite and > 0 (a float or a (C,) tensor), got {v.tolist()}"
            )
    if distill_log_n is not None and not (distill_log_n >= 0):
        raise InputError(f"distill_log_n: must be >= 0, got {distill_log_n!r}")
    if distill_log_n is not None and method == "token_sgd":
        raise InputError("method: distill_log_n is not supported with 'token_sgd'")
    th0 = model.check_theta(theta0, "theta0")
    sizes = {th0.shape[0]} if th0.ndim == 2 else set()
    sizes |= {int(torch.as_tensor(v).shape[0]) for v in (lr, lam) if torch.as_tensor(v).ndim == 1}
    if chains is not None:
        sizes.add(_check_int("chains", chains, 1))
    if len(sizes) > 1:
        raise InputError(f"theta0: the number of chains is ambiguous: {sorted(sizes)}")
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
    record_at = sorted({0, *range(every, t_total + 1, every), t_total})

    def token_steps(t: int, th: Tensor) -> Tensor:
        """Eq. 21: one projected step per token of step t's K sequences; the new theta."""
        for j in range(k):
            th = model.rollout(th, xs[t, j].expand(c), ys[t, j].expand(c, -1), lr=lr_c).theta
        return th

    def gradient(t: int, th: Tensor) -> Tensor:
        """(C, d) mean over step t's K sequences of the (truncated, Eq. 24-26) gradient."""
        r = model.rollout(th.repeat_interleave(k, 0), xs[t].repeat(c), ys[t].repeat(c, 1))
        grads = r.token_grads
        if distill_log_n is not None:
            eps = token_kl_from_log_probs(lp_data[t].repeat(c, 1, 1), r.token_log_probs)
            grads = grads * truncated_kl_weights(eps, distill_log_n)[..., None]
        return grads.sum(1).view(c, k, model.dim).mean(1)

    if method == "token_sgd":
        traj = run_updates(theta, token_steps, lambda _, new: new, t_total, record_at)
    else:
        update = make_update(method, lr_c, lam=lam_c, betas=betas, radius=model.radius)
        traj = run_updates(theta, gradient, update, t_total, record_at)
    return OnlineFitResult(traj[-1], traj, torch.tensor(record_at, dtype=torch.long))
