"""``torch.optim`` optimizers for any model (transformers included) with the paper's update rules,
written as *descent on a loss* (``p.grad`` of the negative log-likelihood): :class:`ProjectedSGD`
(Eq. 14 / Eq. 21), :class:`NormalizedSGD` (Eq. 17-18), :class:`SignSGD` (Eq. 20). The norm in
normalized SGD and the projection act on the concatenation of a parameter group's tensors.
:func:`token_level_steps` runs Eq. 21 (one optimizer step per token) with any model;
:func:`truncated_distillation_loss` is the truncated distillation loss (Eq. 24-26).

The functional rules on parameter vectors (``sgd_update``, ``normalized_sgd_update``,
``sign_sgd_update``, ``adam_update``, ``project_ball``, ``truncated_kl_weights``) live in the leaf
module :mod:`lmcoverage.updates` and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.updates import (
    AdamState,
    LearningRate,
    adam_update,
    check_positive,
    check_radius,
    normalized_sgd_update,
    project_ball,
    sgd_update,
    sign_sgd_update,
    truncated_kl_weights,
)

__all__ = [
    "OPTIMIZERS",
    "AdamState",
    "LearningRate",
    "NormalizedSGD",
    "ProjectedSGD",
    "SignSGD",
    "adam_update",
    "make_optimizer",
    "normalized_sgd_update",
    "project_ball",
    "sgd_update",
    "sign_sgd_update",
    "token_level_steps",
    "truncated_distillation_loss",
    "truncated_kl_weights",
]


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
        check_positive("lr", defaults["lr"])
        check_radius(defaults.get("radius"))
        super().__init__(params, defaults)
        for group in self.param_groups:
            radius = group["radius"]
            norm = _global_norm(list(group["params"]))
            if radius is not None and norm > radius * (1.0 + 1e-6):
                raise InputError(
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
        check_positive("lam", lam)
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
        raise InputError(f"horizon: must be >= 1, got {horizon}")
    losses = torch.empty(horizon, dtype=torch.float64)
    for h in range(horizon):
        optimizer.zero_grad()
        loss = token_loss(h)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses[h] = float(loss.detach())
    return losses


def truncated_distillation_loss(token_logprobs: Tensor, token_kl: Tensor, log_n: float) -> Tensor:
    """Loss whose gradient is the truncated distillation gradient (Eq. 26), averaged over the batch:
    -mean_b sum_h alpha_h * log pi_theta(y_h | x, y_<h), y drawn from the teacher.

    Args:
        token_logprobs: (batch, H) student log-probs of the teacher-sampled tokens (with grad).
        token_kl: (batch, H) KL(teacher || student) at each prefix (weights are detached).
        log_n: A = log N; ``inf`` gives plain (untruncated) distillation.
    """
    if token_logprobs.shape != token_kl.shape:
        raise InputError(
            f"token_logprobs: shape {tuple(token_logprobs.shape)} differs from token_kl's "
            f"{tuple(token_kl.shape)}"
        )
    alpha = truncated_kl_weights(token_kl, log_n).to(token_logprobs.dtype)
    return -(alpha * token_logprobs).sum(dim=1).mean()


#: ``TrainConfig.optimizer`` name -> (torch optimizer, the TrainConfig fields it reads).
#: ``weight_decay`` and ``betas`` apply to AdamW only; ``optimizer_options`` adds keywords
#: (``lam`` for normalized SGD, ``radius`` for the projected rules, ``eps`` for AdamW).
OPTIMIZERS: dict[str, tuple[Callable[..., torch.optim.Optimizer], tuple[str, ...]]] = {
    "adamw": (torch.optim.AdamW, ("lr", "betas", "weight_decay")),
    "sgd": (ProjectedSGD, ("lr",)),
    "normalized-sgd": (NormalizedSGD, ("lr",)),
    "signsgd": (SignSGD, ("lr",)),
}


def make_optimizer(
    name: str, params: Iterable[Any], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0, options: dict[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (:data:`OPTIMIZERS`) over ``params``.

    ``normalized-sgd`` needs ``options={"lam": ...}`` (Eq. 17-18). InputError on an unknown
    name or an option the optimizer does not take.
    """
    if name not in OPTIMIZERS:
        raise InputError(f"optimizer: unknown {name!r}; choose from {', '.join(OPTIMIZERS)}")
    cls, fields = OPTIMIZERS[name]
    given = {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay}
    kwargs = {k: given[k] for k in fields}
    kwargs.update(options or {})
    if name == "normalized-sgd" and "lam" not in kwargs:
        raise InputError("optimizer normalized-sgd: needs optimizer_options lam > 0 (Eq. 17)")
    try:
        return cls(params, **kwargs)
    except TypeError as exc:
        raise InputError(f"optimizer {name}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"optimizer {name}: {exc}") from None
