"""Coverage optimizers (SPEC.md section 4): projected SGD, normalized SGD, SignSGD, Adam,
token-level steps and the truncated distillation gradient.

Two layers:

* Functional updates on batched parameter vectors, for the autoregressive linear model (and any
  vector parameter), written as *ascent on the log-likelihood* like the paper. ``theta`` is
  ``(d,)`` or ``(C, d)`` (C independent chains, e.g. a step-size grid); ``grad`` has the same shape
  and is the gradient of log pi_theta (already averaged over a mini-batch of K sequences);
  ``lr`` is a float or a ``(C,)`` tensor:

  - :func:`sgd_update` (Eq. 14, sequence-level; Eq. 21 when ``grad`` is a token's gradient),
  - :func:`normalized_sgd_update` (Eq. 17-18),
  - :func:`sign_sgd_update` (Eq. 20),
  - :func:`adam_update` (Adam with bias correction, for comparison),
  - :func:`project_ball` (Euclidean projection onto {||theta|| <= radius}).

* ``torch.optim.Optimizer`` subclasses for any model (transformers included), *descent on a loss*
  (``p.grad`` of the negative log-likelihood): :class:`ProjectedSGD`, :class:`NormalizedSGD`,
  :class:`SignSGD`. The norm in normalized SGD and the projection act on the concatenation of a
  parameter group's tensors. :func:`token_level_steps` runs Eq. 21 (one optimizer step per token)
  with any model. :func:`truncated_kl_weights` and :func:`truncated_distillation_loss` implement
  the truncated distillation gradient (Eq. 24-26, weights of Lemma I.4) on ``(batch, H)`` tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

LearningRate = float | Tensor


def _check_positive(name: str, value: LearningRate) -> None:
    """ValueError naming ``name`` unless ``value`` (float or tensor) is finite and > 0."""
    if isinstance(value, Tensor):
        if value.numel() == 0 or not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
            raise ValueError(f"{name}: must be finite and > 0, got {value.tolist()}")
    elif not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be finite and > 0, got {value!r}")


def _check_radius(radius: float | None) -> None:
    if radius is not None:
        _check_positive("radius", radius)


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
    _check_positive("lr", lr)
    _check_radius(radius)
    return project_ball(theta + _per_chain(lr, theta) * grad, radius)


def normalized_sgd_update(
    theta: Tensor, grad: Tensor, lr: LearningRate, lam: LearningRate, radius: float | None = None
) -> Tensor:
    """theta <- Proj(theta + lr * g / (lam + ||g||)) (Eq. 18); the step is shorter than ``lr``."""
    _check_positive("lr", lr)
    _check_positive("lam", lam)
    _check_radius(radius)
    norm = grad.norm(dim=-1, keepdim=True)
    step = _per_chain(lr, theta) * grad / (_per_chain(lam, theta) + norm)
    return project_ball(theta + step, radius)


def sign_sgd_update(
    theta: Tensor, grad: Tensor, lr: LearningRate, radius: float | None = None
) -> Tensor:
    """theta <- Proj(theta + lr * sign(g)) (Eq. 20: Adam without moment averaging)."""
    _check_positive("lr", lr)
    _check_radius(radius)
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
    _check_positive("lr", lr)
    _check_radius(radius)
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


def _global_norm(tensors: list[Tensor]) -> float:
    """Euclidean norm of the concatenation of ``tensors`` (float64)."""
    return math.sqrt(sum(float((t.detach().double() ** 2).sum()) for t in tensors))


def _project_params_(params: list[Tensor], radius: float | None) -> None:
    """In-place projection of the concatenation of ``params`` onto the radius ball."""
    if radius is None or not params:
        return
    norm = _global_norm(params)
    if norm > radius:
        for p in params:
            p.mul_(radius / norm)


class _DescentOptimizer(torch.optim.Optimizer):
    """Shared plumbing: validated ``lr``/``radius``; ``_direction`` gives each update."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        _check_positive("lr", defaults["lr"])
        _check_radius(defaults.get("radius"))
        super().__init__(params, defaults)
        for group in self.param_groups:
            radius = group["radius"]
            norm = _global_norm(list(group["params"]))
            if radius is not None and norm > radius * (1.0 + 1e-6):
                raise ValueError(
                    f"params: ||params|| = {norm:.6g} lies outside the ball of radius {radius:g}"
                )

    def _direction(self, grads: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter group; returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p, d in zip(params, self._direction([p.grad for p in params], group), strict=True):
                p.add_(d, alpha=-group["lr"])
            _project_params_(list(group["params"]), group["radius"])
        return loss


class ProjectedSGD(_DescentOptimizer):
    """Plain SGD with optional projection onto {||params|| <= radius} (Eq. 14 / Eq. 21)."""

    def __init__(self, params: Iterable[Any], lr: float, radius: float | None = None) -> None:
        super().__init__(params, {"lr": lr, "radius": radius})

    def _direction(self, grads: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
        return grads


class NormalizedSGD(_DescentOptimizer):
    """Normalized SGD (Eq. 17-18): p <- Proj(p - lr * g / (lam + ||g||)), ||g|| over the whole
    parameter group. Every step is shorter than ``lr``."""

    def __init__(
        self, params: Iterable[Any], lr: float, lam: float, radius: float | None = None
    ) -> None:
        _check_positive("lam", lam)
        super().__init__(params, {"lr": lr, "lam": lam, "radius": radius})

    def _direction(self, grads: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
        scale = 1.0 / (group["lam"] + _global_norm(grads))
        return [g * scale for g in grads]


class SignSGD(_DescentOptimizer):
    """SignSGD (Eq. 20): p <- Proj(p - lr * sign(g))."""

    def __init__(self, params: Iterable[Any], lr: float, radius: float | None = None) -> None:
        super().__init__(params, {"lr": lr, "radius": radius})

    def _direction(self, grads: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
        return [torch.sign(g) for g in grads]


def token_level_steps(
    optimizer: torch.optim.Optimizer, token_loss: Callable[[int], Tensor], horizon: int
) -> Tensor:
    """Token-level SGD (Eq. 21) for any model: for h = 0..horizon-1, one optimizer step on
    ``token_loss(h)`` = -log pi(y_h | x, y_<h) evaluated at the current parameters.

    Returns:
        (horizon,) float64 tensor of the token losses before each step.
    """
    if horizon < 1:
        raise ValueError(f"horizon: must be >= 1, got {horizon}")
    losses = torch.empty(horizon, dtype=torch.float64)
    for h in range(horizon):
        optimizer.zero_grad()
        loss = token_loss(h)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses[h] = float(loss.detach())
    return losses


def truncated_kl_weights(token_kl: Tensor, log_n: float) -> Tensor:
    """Weights alpha_h of the truncated distillation gradient (Eq. 24-26, Lemma I.4).

    With eps_h = ``token_kl[..., h]`` and A = ``log_n``: alpha_h = 1 while the running sum
    sum_{j<=h} eps_j <= A, the fraction (A - sum_{j<h} eps_j) / eps_h at the crossing token,
    then 0; so sum_h alpha_h eps_h = min(A, sum_h eps_h). ``log_n = inf`` gives all ones
    (plain distillation).

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
    before = torch.cumsum(eps, dim=1)
    before = torch.cat([torch.zeros_like(before[:, :1]), before[:, :-1]], dim=1)  # sum_{j<h}
    remaining = log_n - before
    safe = torch.where(eps > 0, eps, torch.ones_like(eps))
    frac = torch.where(eps > 0, remaining / safe, torch.where(remaining > 0, 1.0, 0.0))
    # cummin keeps the 1, ..., 1, fraction, 0, ..., 0 shape under float rounding
    return torch.cummin(frac.clamp(0.0, 1.0), dim=1).values


def truncated_distillation_loss(token_logprobs: Tensor, token_kl: Tensor, log_n: float) -> Tensor:
    """Loss whose gradient is the truncated distillation gradient (Eq. 26), averaged over the batch:
    -mean_b sum_h alpha_h * log pi_theta(y_h | x, y_<h), y drawn from the teacher.

    Args:
        token_logprobs: (batch, H) student log-probs of the teacher-sampled tokens (with grad).
        token_kl: (batch, H) KL(teacher || student) at each prefix (weights are detached).
        log_n: A = log N; ``inf`` gives plain (untruncated) distillation.
    """
    if token_logprobs.shape != token_kl.shape:
        raise ValueError(
            f"token_logprobs: shape {tuple(token_logprobs.shape)} differs from token_kl's "
            f"{tuple(token_kl.shape)}"
        )
    alpha = truncated_kl_weights(token_kl, log_n).to(token_logprobs.dtype)
    return -(alpha * token_logprobs).sum(dim=1).mean()
