"""Autoregressive linear instances for the theory experiments (Sec. 3-6).

An :class:`IIDInstance` has features phi(x, y_1:h) = F[x, y_h] (a (P, V, d) table), so tokens are
i.i.d. given the prompt and a response is summarised by its token counts. That gives

- the sequence gradient in closed form from counts: grad log pi_theta(y|x)
  = sum_v c_v F[x, v] - H * E_{pi_theta(.|x)} F[x, .] (Eq. 3; :meth:`IIDInstance.
  expected_features` gives the second term);
- exact Cov_N (Eq. 4) and KL of many thetas at once by enumerating count vectors
  (:class:`CountEnumeration`), dropping count vectors of negligible pi_D-mass (reported).

Instances: :func:`heterogeneous_instance` and :func:`graded_instance` (Prop 5.1's
separation, Lemmas I.6-I.7), :func:`prop32_instance` (Prop 3.2: KL grows with H), and the
position-dependent :func:`pivotal_instance` (:class:`PositionalInstance`, Thm 4.2). The model
objects are the library's :class:`lmcoverage.models.linear.LinearARModel` on the same tables;
count vectors, their multinomial law and token KLs come from :mod:`lmcoverage.models.linear`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.metrics import coverage_mass
from lmcoverage.models.linear import (
    DTYPE,
    LinearARModel,
    LinearPolicy,
    count_pmfs,
    count_vectors,
    token_kl_from_log_probs,
)

__all__ = [
    "INSTANCES",
    "CountEnumeration",
    "IIDInstance",
    "PositionalInstance",
    "count_vectors",
    "graded_instance",
    "heterogeneous_instance",
    "pivotal_instance",
    "prop32_instance",
    "sgd_instance",
]


@dataclass(frozen=True)
class IIDInstance:
    """A well-specified instance: pi_D = pi_{theta_star} on the feature table ``features``.

    Attributes:
        features: (P, V, d) phi(x, y_1:h) = features[x, y_h].
        mu: (P,) prompt distribution.
        theta_star: (d,) data parameters, ||theta_star|| <= radius.
        theta0: (d,) default start of online methods.
        radius: Theta = {||theta|| <= radius}.
        prompt_names: labels for reports.
    """

    features: Tensor
    mu: Tensor
    theta_star: Tensor
    theta0: Tensor
    radius: float = 1.0
    prompt_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        f = self.features
        if f.ndim != 3 or not bool(torch.isfinite(f).all()):
            raise InputError(f"features: expected a finite (P, V, d) table, got {tuple(f.shape)}")
        p, _, d = f.shape
        if self.mu.shape != (p,) or abs(float(self.mu.sum()) - 1.0) > 1e-9 or bool(
            (self.mu < 0).any()
        ):
            raise InputError(f"mu: expected a probability vector of length {p}")
        for name, th in (("theta_star", self.theta_star), ("theta0", self.theta0)):
            if th.shape != (d,) or float(th.norm()) > self.radius * (1 + 1e-9):
                raise InputError(f"{name}: expected shape ({d},) inside the radius-"
                                 f"{self.radius:g} ball, got norm {float(th.norm()):.4g}")

    @property
    def dim(self) -> int:
        return int(self.features.shape[2])

    @property
    def num_prompts(self) -> int:
        return int(self.features.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.features.shape[1])

    def model(self, horizon: int) -> LinearARModel:
        """The library's linear model class on this feature table, responses of length H."""
        return LinearARModel(self.features, horizon, radius=self.radius)

    def data_policy(self, horizon: int) -> LinearPolicy:
        """pi_D = pi_{theta_star} as a sequence distribution."""
        return self.model(horizon).policy(self.theta_star)

    def token_log_probs(self, theta: Tensor) -> Tensor:
        """(..., P, V) log pi_theta(v | x) for theta (..., d)."""
        logits = torch.einsum("pvd,...d->...pv", self.features, theta.to(DTYPE))
        return torch.log_softmax(logits, dim=-1)

    def expected_features(self, theta: Tensor) -> Tensor:
        """(..., P, d) E_{v ~ pi_theta(.|x)} F[x, v]."""
        return torch.einsum("...pv,pvd->...pd", self.token_log_probs(theta).exp(), self.features)

    def data_token_probs(self) -> NDArray[np.float64]:
        """(P, V) pi_D(v | x) as numpy."""
        return np.asarray(self.token_log_probs(self.theta_star).exp().numpy(), dtype=np.float64)

    def sample_counts(
        self, horizon: int, shape: tuple[int, ...], rng: np.random.Generator
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Fresh (x, y) summarised as ``(x: shape, counts: shape + (V,))``, x ~ mu, y ~ pi_D."""
        _check_horizon(horizon)
        x = rng.choice(self.num_prompts, size=shape, p=self.mu.numpy())
        counts = rng.multinomial(horizon, self.data_token_probs()[x])
        return x, counts

    def token_kl(self, theta: Tensor) -> Tensor:
        """(..., P) KL(pi_D(.|x) || pi_theta(.|x)) per token."""
        return token_kl_from_log_probs(self.token_log_probs(self.theta_star),
                                       self.token_log_probs(theta))

    def kl(self, theta: Tensor, horizon: int) -> Tensor:
        """(...,) exact sequence KL = H * sum_x mu(x) KL_token(x)."""
        _check_horizon(horizon)
        return horizon * (self.token_kl(theta) * self.mu).sum(-1)


def _check_horizon(horizon: int) -> None:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise InputError(f"horizon: must be an integer >= 1, got {horizon!r}")


class CountEnumeration:
    """Exact metrics of many thetas on an :class:`IIDInstance` at horizon H.

    For each prompt, the count vectors with pi_D-probability above ``min_prob`` are kept; the
    total mass dropped (an upper bound on the error of every Cov_N) is ``dropped_mass``.
    """

    def __init__(self, inst: IIDInstance, horizon: int, min_prob: float = 1e-15) -> None:
        _check_horizon(horizon)
        if not 0.0 <= min_prob < 1.0:
            raise InputError(f"min_prob: must be in [0, 1), got {min_prob}")
        self.inst = inst
        self.horizon = horizon
        log_pd = np.log(inst.data_token_probs())  # (P, V)
        mu = inst.mu.numpy()
        laws = count_pmfs(log_pd, horizon, min_prob)
        self.counts: list[NDArray[np.float64]] = [law.counts for law in laws]
        self.weights: list[NDArray[np.float64]] = [m * law.pmf for m, law in zip(mu, laws,
                                                                                  strict=True)]
        dropped = 0.0
        for m, law in zip(mu, laws, strict=True):
            dropped += m * law.dropped
        self.dropped_mass = dropped
        self.log_pd = log_pd

    def log_ratios(self, theta: Tensor) -> list[NDArray[np.float64]]:
        """Per prompt, (R, M_p) log pi_D(y|x) - log pi_theta(y|x) for theta (R, d)."""
        lp_m = self.inst.token_log_probs(theta).numpy()  # (R, P, V)
        out = []
        for p, counts in enumerate(self.counts):
            diff = self.log_pd[p][None, :] - lp_m[:, p, :]  # (R, V)
            out.append(diff @ counts.T)
        return out

    def coverage(self, theta: Tensor, ns: ArrayLike) -> NDArray[np.float64]:
        """(R, len(ns)) exact Cov_N of each row of theta (R, d) (Eq. 4)."""
        th = theta.reshape(-1, self.inst.dim)
        total = np.zeros((th.shape[0], len(np.atleast_1d(ns))))
        for ratio, w in zip(self.log_ratios(th), self.weights, strict=True):
            total += coverage_mass(ratio, w, np.atleast_1d(ns))
        return total


def _v(token: float) -> list[float]:
    """The Lemma I.6 directions v(0) = [1, 0], v(+-1) = [1/2, +-sqrt(3)/2]."""
    return [1.0, 0.0] if token == 0 else [0.5, math.copysign(math.sqrt(3) / 2, token)]


def heterogeneous_instance(
    scale_a: float = 1000.0,
    scale_r: float = 10.0,
    mass_a: float = 0.75,
    theta_star: tuple[float, float, float] = (0.312, 0.0, 0.95),
) -> IIDInstance:
    """Prop 5.1 instance: d = 3, V = {-1, 0, +1} (ids 0, 1, 2), Theta = unit ball.

    Prompt A (mass 0.75) has phi(A, y_1:h) = scale_a * [v(y_h), 0] (large steps make SGD
    oscillate, Lemma I.6); prompt R has phi(R, y_1:h) = scale_r * y_h * e_3 (small steps leave
    it unlearned, Lemma I.7). Start theta0 = [v(+1), 0].
    """
    if not 0.0 < mass_a < 1.0:
        raise InputError(f"mass_a: must be in (0, 1), got {mass_a}")
    tokens = (-1.0, 0.0, 1.0)
    feat_a = [[scale_a * c for c in (*_v(t), 0.0)] for t in tokens]
    feat_r = [[0.0, 0.0, scale_r * t] for t in tokens]
    return IIDInstance(
        features=torch.tensor([feat_a, feat_r], dtype=DTYPE),
        mu=torch.tensor([mass_a, 1.0 - mass_a], dtype=DTYPE),
        theta_star=torch.tensor(theta_star, dtype=DTYPE),
        theta0=torch.tensor([*_v(1.0), 0.0], dtype=DTYPE),
        prompt_names=("A", "R"),
    )


def graded_instance(
    rare_masses: tuple[float, ...] = (0.0018, 0.0072, 0.029, 0.115),
    scale_a: float = 1000.0,
    scale_r: float = 20.0,
    theta_a: float = 0.28,
    theta_r: float = 0.48,
) -> IIDInstance:
    """The graded variant: prompt A as in :func:`heterogeneous_instance`
    (theta_star coordinate ``theta_a`` along v(0)) plus one rare prompt R_i per mass, each with
    its own coordinate: phi(R_i, y_1:h) = scale_r * y_h * e_{3+i}, theta_star_{3+i} = theta_r.
    Larger H breaks SGD on more of the rare prompts, so its best Cov_N grows gradually with H.
    """
    masses = [float(m) for m in rare_masses]
    if not masses or min(masses) <= 0 or sum(masses) >= 1:
        raise InputError(f"rare_masses: need positive masses summing to < 1, got {rare_masses}")
    k = len(masses)
    d = 2 + k
    tokens = (-1.0, 0.0, 1.0)
    feats = torch.zeros(1 + k, 3, d, dtype=DTYPE)
    for j, t in enumerate(tokens):
        feats[0, j, :2] = scale_a * torch.tensor(_v(t), dtype=DTYPE)
        for i in range(k):
            feats[1 + i, j, 2 + i] = scale_r * t
    star = torch.tensor([theta_a, 0.0] + [theta_r] * k, dtype=DTYPE)
    theta0 = torch.zeros(d, dtype=DTYPE)
    theta0[:2] = torch.tensor(_v(1.0), dtype=DTYPE)
    return IIDInstance(
        features=feats,
        mu=torch.tensor([1.0 - sum(masses), *masses], dtype=DTYPE),
        theta_star=star,
        theta0=theta0,
        prompt_names=("A", *[f"R{i + 1}" for i in range(k)]),
    )


INSTANCES: dict[str, Callable[[], IIDInstance]] = {
    "two-prompt": heterogeneous_instance,
    "graded": graded_instance,
}


def sgd_instance(name: str) -> IIDInstance:
    """The SGD/distillation testbed by name: ``"two-prompt"`` or ``"graded"``."""
    if name not in INSTANCES:
        raise InputError(f"instance: choose one of {', '.join(INSTANCES)}, got {name!r}")
    return INSTANCES[name]()


def prop32_instance(n: int, scale: float = 1.0, theta_star: float = 1.0) -> IIDInstance:
    """Prop 3.2: d = 1, X = {0, 1}, V = {-1, +1} (ids 0, 1), mu(1) = 1/(2n), phi(0, .) = 0,
    phi(1, y_1:h) = scale * y_h, Theta = [-1, 1]; pi_D = pi_{theta_star}, start at 0."""
    if n < 1:
        raise InputError(f"n: must be >= 1, got {n}")
    rare = 1.0 / (2 * n)
    return IIDInstance(
        features=torch.tensor([[[0.0], [0.0]], [[-scale], [scale]]], dtype=DTYPE),
        mu=torch.tensor([1.0 - rare, rare], dtype=DTYPE),
        theta_star=torch.tensor([theta_star], dtype=DTYPE),
        theta0=torch.zeros(1, dtype=DTYPE),
        prompt_names=("0", "1"),
    )


@dataclass(frozen=True)
class PositionalInstance:
    """pi_D = pi_{theta_star} on a (P, H, V, d) table: phi(x, y_1:h) = features[x, h-1, y_h].

    Tokens at different positions are independent given x, so KL and sigma_star^2 (Eq. 8) are
    exact sums over positions, and sampling is one vectorized draw per position.
    """

    features: Tensor
    mu: Tensor
    theta_star: Tensor
    radius: float

    @property
    def horizon(self) -> int:
        return int(self.features.shape[1])

    def model(self) -> LinearARModel:
        """The library's linear model on this table."""
        return LinearARModel(self.features, self.horizon, radius=self.radius)

    def token_log_probs(self, theta: Tensor) -> Tensor:
        """(..., P, H, V) log pi_theta(v | x, position h) for theta (..., d)."""
        logits = torch.einsum("phvd,...d->...phv", self.features, theta.to(DTYPE))
        return torch.log_softmax(logits, dim=-1)

    def sample(
        self, num: int, rng: np.random.Generator
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(x: (num,), y: (num, H))`` with x ~ mu, y ~ pi_D(.|x)."""
        x = rng.choice(self.features.shape[0], size=num, p=self.mu.numpy())
        cdf = np.cumsum(self.token_log_probs(self.theta_star).exp().numpy(), axis=-1)[x]
        u = rng.random((num, self.horizon, 1))
        y = np.minimum((u > cdf).sum(-1), self.features.shape[2] - 1)
        return x, y

    def kl(self, theta: Tensor) -> Tensor:
        """(...,) exact sequence KL: sum_x mu(x) sum_h KL(pi_D(.|x,h) || pi_theta(.|x,h))."""
        per = token_kl_from_log_probs(self.token_log_probs(self.theta_star),
                                      self.token_log_probs(theta)).sum(-1)  # (..., P)
        return (per * self.mu).sum(-1)

    def inherent_variance(self) -> float:
        """sigma_star^2 (Eq. 8) exactly: sum_x mu(x) sum_h tr Cov_{pi_D(.|x,h)} phi."""
        p = self.token_log_probs(self.theta_star).exp()  # (P, H, V)
        mean = torch.einsum("phv,phvd->phd", p, self.features)
        var = torch.einsum("phv,phv->ph", p, ((self.features - mean[:, :, None]) ** 2).sum(-1))
        return float((var.sum(1) * self.mu).sum())

    def log_ratios(self, theta: Tensor, x: NDArray[np.int64], y: NDArray[np.int64]) -> Tensor:
        """(R, num) log pi_D(y|x) - log pi_theta(y|x) for thetas (R, d) and responses (num, H)."""
        diff = self.token_log_probs(self.theta_star) - self.token_log_probs(theta)  # (R,P,H,V)
        h = np.arange(self.horizon)
        return diff[:, x[:, None], h[None, :], y].sum(-1)


def pivotal_instance(
    horizon: int,
    pivotal: int | None,
    rng: np.random.Generator,
    num_prompts: int = 8,
    vocab_size: int = 4,
    pivot_scale: float = 3.0,
    pivot_theta: float = 0.5,
    det_scale: float = 40.0,
    radius_factor: float = 1.25,
) -> PositionalInstance:
    """A random feature map with few "pivotal" positions (Thm 4.2's sigma_star^2 at work).

    d = 1 + H. Position h has its own coordinate e_{h+1}: at a pivotal position the candidates
    get random Gaussian features pivot_scale * g * e_{h+1} and theta_star_{h+1} = +-pivot_theta,
    so the token is genuinely random; at any other position one random candidate gets
    det_scale * e_0 and theta_star_0 = 1, so the token is deterministic up to exp(-det_scale).
    ``pivotal``: the number of pivotal positions (the first ones), ``None`` for all H.
    Theta is the ball of radius radius_factor * ||theta_star||.
    """
    _check_horizon(horizon)
    k = horizon if pivotal is None else int(pivotal)
    if not 0 <= k <= horizon:
        raise InputError(f"pivotal: must be in [0, H={horizon}], got {pivotal}")
    d = 1 + horizon
    feats = np.zeros((num_prompts, horizon, vocab_size, d))
    theta = np.zeros(d)
    theta[0] = 1.0
    for h in range(horizon):
        if h < k:
            feats[:, h, :, h + 1] = pivot_scale * rng.standard_normal((num_prompts, vocab_size))
            theta[h + 1] = pivot_theta * rng.choice([-1.0, 1.0])
        else:
            chosen = rng.integers(vocab_size, size=num_prompts)
            feats[np.arange(num_prompts), h, chosen, 0] = det_scale
    star = torch.tensor(theta, dtype=DTYPE)
    return PositionalInstance(
        features=torch.tensor(feats, dtype=DTYPE),
        mu=torch.full((num_prompts,), 1.0 / num_prompts, dtype=DTYPE),
        theta_star=star,
        radius=radius_factor * float(star.norm()),
    )
