"""The maximum likelihood estimator over Theta (a concave problem), with its duality gap."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from numpy.typing import ArrayLike
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear._base import DTYPE, _check_int
from lmcoverage.models.linear.model import LinearARModel
from lmcoverage.updates import project_ball


@dataclass(frozen=True)
class MLEResult:
    """Maximum likelihood over Theta.

    Attributes:
        theta: (d,) the estimate.
        objective: mean log-likelihood (1/n) sum_i log pi_theta(y_i|x_i) at ``theta``.
        gap: Frank-Wolfe duality gap max_{u in Theta} <grad, u - theta>
            = R ||grad|| - <grad, theta>, an upper bound on (optimal objective - objective).
        iterations: Newton iterations used. converged: gap <= tol.
    """

    theta: Tensor
    objective: float
    gap: float
    iterations: int
    converged: bool


def _ball_qp(hess: Tensor, b: Tensor, radius: float) -> Tensor:
    """argmin_{||u|| <= radius} 1/2 u'Hu - b'u for PSD H (exact, by eigendecomposition)."""
    lam, q = torch.linalg.eigh(hess)
    lam = lam.clamp(min=0.0)
    c = q.T @ b
    scale = max(float(lam.max()), 1.0)
    null = lam <= 1e-12 * scale
    in_range = bool((c[null].abs() <= 1e-12 * max(float(c.abs().max()), 1e-300)).all())
    if in_range:
        u0 = q @ torch.where(null, 0.0, c / torch.where(null, 1.0, lam))
        if float(u0.norm()) <= radius:
            return u0

    def norm_at(nu: float) -> float:
        return float((c / (lam + nu)).norm())

    lo, hi = 0.0, float(b.norm()) / radius + 1e-300
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if norm_at(mid) > radius:
            lo = mid
        else:
            hi = mid
    u = q @ (c / (lam + hi))
    return project_ball(u, radius)


def fit_mle(
    model: LinearARModel,
    x: ArrayLike | Tensor,
    y: ArrayLike | Tensor,
    theta0: ArrayLike | Tensor | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> MLEResult:
    """Maximum likelihood argmax_{theta in Theta} (1/n) sum_i log pi_theta(y_i | x_i).

    The objective is concave; each iteration maximises its second-order model exactly over the
    ball and backtracks along the segment, stopping once the duality gap is <= ``tol``.

    Args:
        x: (n,) prompts. y: (n, H) responses. theta0: (d,) start in Theta (default 0).
    """
    if not (tol > 0):
        raise InputError(f"tol: must be > 0, got {tol!r}")
    _check_int("max_iter", max_iter, 1)
    xt = model.check_prompts(x)
    if xt.numel() == 0:
        raise InputError("x: needs at least one example")
    yt = model.check_responses(y, xt.shape[0])
    feats = model.sequence_features(xt, yt).reshape(-1, model.vocab_size, model.dim)
    chosen = feats[torch.arange(feats.shape[0]), yt.reshape(-1)].sum(0)  # (d,)
    n = xt.shape[0]
    theta = (
        torch.zeros(model.dim, dtype=DTYPE)
        if theta0 is None
        else model.check_theta(theta0, "theta0")
    )
    if theta.ndim != 1:
        raise InputError(f"theta0: expected shape ({model.dim},), got {tuple(theta.shape)}")
    radius = model.radius

    def evaluate(th: Tensor, second: bool) -> tuple[float, Tensor, Tensor | None]:
        logits = feats @ th
        lse = torch.logsumexp(logits, -1)
        p = torch.exp(logits - lse[:, None])
        mean = torch.einsum("kv,kvd->kd", p, feats)
        obj = float((chosen @ th - lse.sum()) / n)
        grad = (chosen - mean.sum(0)) / n
        hess = None
        if second:
            second_moment = torch.einsum("kv,kvd,kve->de", p, feats, feats)
            hess = (second_moment - mean.T @ mean) / n
        return obj, grad, hess

    gap = math.inf
    obj = -math.inf
    it = 0
    for it in range(1, max_iter + 1):
        obj, grad, hess = evaluate(theta, True)
        gap = max(radius * float(grad.norm()) - float(grad @ theta), 0.0)
        if gap <= tol:
            return MLEResult(theta, obj, gap, it - 1, True)
        assert hess is not None
        target = _ball_qp(hess, hess @ theta + grad, radius)
        direction = target - theta
        slope = float(grad @ direction)
        t = 1.0
        while t > 1e-12:
            cand = project_ball(theta + t * direction, radius)
            # Armijo, with slack for rounding once the predicted gain is below float resolution
            if evaluate(cand, False)[0] >= obj + 1e-4 * t * slope - 1e-14 * (1.0 + abs(obj)):
                break
            t *= 0.5
        else:
            break
        theta = cand
    obj, grad, _ = evaluate(theta, False)
    gap = max(radius * float(grad.norm()) - float(grad @ theta), 0.0)
    return MLEResult(theta, obj, gap, it, gap <= tol)
