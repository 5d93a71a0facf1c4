"""The paper's update rules as pure functions on parameter vectors (a leaf: imports nothing of
lmcoverage, so every layer may use it).

Written as *ascent on the log-likelihood*, like the paper. ``theta`` is ``(d,)`` or ``(C, d)``
(C independent chains, e.g. a step-size grid); ``grad`` has the same shape and is the gradient
of log pi_theta (already averaged over a mini-batch of K sequences); ``lr`` is a float or a
``(C,)`` tensor:

- :func:`sgd_update` (Eq. 14, sequence-level; Eq. 21 when ``grad`` is one token's gradient),
- :func:`normalized_sgd_update` (Eq. 17-18),
- :func:`sign_sgd_update` (Eq. 20),
- :func:`adam_update` (Adam with bias correction, for comparison),
- :func:`project_ball` (Euclidean projection onto {||theta|| <= radius}),
- :func:`truncated_kl_weights` (the truncated distillation weights of Eq. 24-26, Lemma I.4),
- :func:`make_update` (one of the rules above by name, with its state) and :func:`run_updates`
  (the online loop: a gradient per step, one update, parameters recorded at chosen steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

LearningRate = float | Tensor
#: theta -> gradient-based update -> theta, e.g. ``make_update("sgd", lr=0.1)``.
Update = Callable[[Tensor, Tensor], Tensor]
#: The sequence-level rules :func:`make_update` knows.
RULES: tuple[str, ...] = ("sgd", "normalized_sgd", "sign_sgd", "adam")


def check_positive(name: str, value: LearningRate) -> None:
    """ValueError naming ``name`` unless ``value`` (float or tensor) is finite and > 0."""
    if isinstance(value, Tensor):
        if value.numel() == 0 or not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
            raise ValueError(f"{name}: must be finite and > 0, got {value.tolist()}")
    elif not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be finite and > 0, got {value!r}")


def check_radius(radius: float | None) -> None:
    """ValueError unless ``radius`` is None (no constraint) or finite and > 0."""
    if radius is not None:
        check_positive("radius", radius)


def _per_chain(value: LearningRate, theta: Tensor) -> LearningRate:
    """Broadcast a float or a (C,) tensor against theta (d,) / (C, d)."""
    if isinstance(value, Tensor) and value.ndim == 1 and theta.ndim == 2:
        if value.shape[0] != theta.shape[0]:
            raise ValueError(
                f"lr: expected one value per chain ({theta.shape[0]}), got shape "
                f"{tuple(value.shape)}"
            )
        return value.to(theta.dtype)[:, None]
    if isinstance(value, Tensor) and value.ndim > 0 and theta.ndim == 1:
        raise ValueError(
            f"lr: expected a scalar for a single theta, got shape {tuple(value.shape)}"
        )
    return value


def project_ball(theta: Tensor, radius: float | None) -> Tensor:
    """Euclidean projection of ``theta`` (``(d,)`` or ``(C, d)``, rows projected independently)
    onto the ball {||theta|| <= radius}; ``radius=None`` means no constraint."""
    if radius is None:
        return theta
    # Points of the ball are returned unchanged (``radius / norm`` is not exactly 1 on the sphere:
    # torch divides a scalar by a tensor through a reciprocal).
    norm = theta.norm(dim=-1, keepdim=True)
    return torch.where(norm > radius, theta * (radius / norm), theta)


def sgd_update(
    theta: Tensor, grad: Tensor, lr: LearningRate, radius: float | None = None
) -> Tensor:
    """theta <- Proj(theta + lr * grad): sequence-level SGD (Eq. 14); token-level (Eq. 21) when
    ``grad`` is one token's gradient."""
    check_positive("lr", lr)
    check_radius(radius)
    return project_ball(theta + _per_chain(lr, theta) * grad, radius)


def normalized_sgd_update(
    theta: Tensor, grad: Tensor, lr: LearningRate, lam: LearningRate, radius: float | None = None
) -> Tensor:
    """theta <- Proj(theta + lr * g / (lam + ||g||)) (Eq. 18); the step is shorter than ``lr``."""
    check_positive("lr", lr)
    check_positive("lam", lam)
    check_radius(radius)
    norm = grad.norm(dim=-1, keepdim=True)
    step = _per_chain(lr, theta) * grad / (_per_chain(lam, theta) + norm)
    return project_ball(theta + step, radius)


def sign_sgd_update(
    theta: Tensor, grad: Tensor, lr: LearningRate, radius: float | None = None
) -> Tensor:
    """theta <- Proj(theta + lr * sign(g)) (Eq. 20: Adam without moment averaging)."""
    check_positive("lr", lr)
    check_radius(radius)
    return project_ball(theta + _per_chain(lr, theta) * torch.sign(grad), radius)


@dataclass
class AdamState:
    """First and second moment estimates and the step count of :func:`adam_update`."""

    m: Tensor
    v: Tensor
    step: int = 0


def adam_update(
    theta: Tensor,
    grad: Tensor,
    state: AdamState | None,
    lr: LearningRate,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    radius: float | None = None,
) -> tuple[Tensor, AdamState]:
    """One bias-corrected Adam ascent step, then projection. Returns ``(theta, state)``;
    pass ``state=None`` on the first call."""
    check_positive("lr", lr)
    check_radius(radius)
    if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
        raise ValueError(f"betas: each must be in [0, 1), got {betas}")
    if state is None:
        state = AdamState(torch.zeros_like(theta), torch.zeros_like(theta))
    m = betas[0] * state.m + (1.0 - betas[0]) * grad
    v = betas[1] * state.v + (1.0 - betas[1]) * grad * grad
    step = state.step + 1
    m_hat = m / (1.0 - betas[0] ** step)
    v_hat = v / (1.0 - betas[1] ** step)
    new = project_ball(theta + _per_chain(lr, theta) * m_hat / (v_hat.sqrt() + eps), radius)
    return new, AdamState(m, v, step)


def make_update(
    rule: str,
    lr: LearningRate,
    *,
    lam: LearningRate | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    radius: float | None = None,
) -> Update:
    """The update ``(theta, grad) -> theta`` of ``rule`` (one of :data:`RULES`) with its
    hyper-parameters bound; Adam's moments live in the returned closure (one per run)."""
    if rule == "sgd":
        return lambda theta, g: sgd_update(theta, g, lr, radius)
    if rule == "normalized_sgd":
        if lam is None:
            raise ValueError("lam: normalized_sgd needs lambda (Eq. 18)")
        lam_ = lam
        return lambda theta, g: normalized_sgd_update(theta, g, lr, lam_, radius)
    if rule == "sign_sgd":
        return lambda theta, g: sign_sgd_update(theta, g, lr, radius)
    if rule == "adam":
        state: list[AdamState | None] = [None]

        def adam(theta: Tensor, g: Tensor) -> Tensor:
            theta, state[0] = adam_update(theta, g, state[0], lr, betas, radius=radius)
            return theta

        return adam
    raise ValueError(f"method: choose one of {', '.join(RULES)}, got {rule!r}")


def run_updates(
    theta0: Tensor,
    gradient: Callable[[int, Tensor], Tensor],
    update: Update,
    steps: int,
    record_at: Sequence[int],
) -> Tensor:
    """The online loop: for t = 0..steps-1, theta <- update(theta, gradient(t, theta)).

    Returns:
        (len(recorded), *theta0.shape) theta after each step count in ``record_at`` (0 = the
        start), in increasing order of steps.
    """
    wanted = set(record_at)
    theta = theta0.clone()
    out = [theta.clone()] if 0 in wanted else []
    for t in range(steps):
        theta = update(theta, gradient(t, theta))
        if t + 1 in wanted:
            out.append(theta.clone())
    return torch.stack(out)


def truncated_kl_weights(token_kl: Tensor, log_n: float) -> Tensor:
    """Weights alpha_h of the truncated distillation gradient (Eq. 24-26, Lemma I.4).

    With eps_h = ``token_kl[..., h]`` and A = ``log_n``: alpha_h = 1 while the running sum
    sum_{j<=h} eps_j <= A (Eq. 25: a token whose running sum equals A exactly gets weight 1),
    the fraction (A - sum_{j<h} eps_j) / eps_h at the crossing token, then 0; so
    sum_h alpha_h eps_h = min(A, sum_h eps_h). ``log_n = inf`` gives all ones (plain
    distillation).

    Args:
        token_kl: (batch, H) token-level KLs, >= 0 and finite.
        log_n: A = log N >= 0.

    Returns:
        (batch, H) weights in [0, 1], same dtype, no gradient.
    """
    if token_kl.ndim != 2:
        raise ValueError(f"token_kl: expected (batch, H), got shape {tuple(token_kl.shape)}")
    if token_kl.shape[1] < 1:
        raise ValueError("token_kl: H must be >= 1")
    eps = token_kl.detach()
    if not bool(torch.isfinite(eps).all()) or bool((eps < 0).any()):
        raise ValueError("token_kl: token KLs must be finite and >= 0")
    if not (isinstance(log_n, int | float) and log_n >= 0 and not math.isnan(log_n)):
        raise ValueError(f"log_n: must be >= 0, got {log_n!r}")
    if math.isinf(log_n):
        return torch.ones_like(eps)
    through = torch.cumsum(eps, dim=1)  # sum_{j<=h}
    before = torch.cat([torch.zeros_like(through[:, :1]), through[:, :-1]], dim=1)  # sum_{j<h}
    safe = torch.where(eps > 0, eps, torch.ones_like(eps))
    frac = torch.where(eps > 0, (log_n - before) / safe, 0.0)
    frac = torch.where(through <= log_n, 1.0, frac)
    # cummin keeps the 1, ..., 1, fraction, 0, ..., 0 shape under float rounding
    return torch.cummin(frac.clamp(0.0, 1.0), dim=1).values


def truncation_point(eps: Tensor, log_n: float, horizon: int) -> tuple[Tensor, Tensor]:
    """:func:`truncated_kl_weights` for a token KL ``eps`` that is the same at every position
    (tokens i.i.d. given x), in closed form: ``(ones, frac)`` per row.

    alpha_h = 1 for the first ``ones`` tokens, ``frac`` for token ones + 1 (if ones < H), 0
    after; sum_h alpha_h eps = min(log_n, H eps). ``eps``: (R,) >= 0.
    """
    safe = torch.where(eps > 0, eps, torch.ones_like(eps))
    ones = torch.floor(log_n / safe)
    # Eq. 25 counts the token whose running sum (ones + 1) * eps equals A exactly: correct the
    # floor when the division rounded across an integer
    ones = torch.where((ones + 1) * eps <= log_n, ones + 1, ones)
    ones = torch.where(ones * eps > log_n, ones - 1, ones)
    ones = torch.where(eps * horizon <= log_n, float(horizon), ones.clamp(max=horizon))
    frac = torch.where(ones < horizon, (log_n - ones * eps) / safe, 0.0).clamp(0.0, 1.0)
    return ones.long(), frac
