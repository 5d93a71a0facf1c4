"""Finite model families with a known pi_D, where Cov_N, KL and on-policy coverage are exact.

Used to check the selection theorems (Prop E.1, Thm 6.3, Thm 6.4) where the truth is known:
prompts x in a finite set with probabilities ``mu``, responses y in a finite set, pi_D and
every candidate given as a conditional probability table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics import coverage_profile
from lmcoverage.select.tournament import onpolicy_exact


@dataclass(frozen=True)
class HeldOut:
    """n held-out examples (x_i, y_i) ~ mu x pi_D and every candidate's log-likelihood of them.

    Attributes:
        prompt: (n,) prompt index of each example.
        response: (n,) response index.
        loglik: (candidates, n) log pi_j(y_i|x_i).
        loglik_data: (n,) log pi_D(y_i|x_i).
    """

    prompt: NDArray[np.int64]
    response: NDArray[np.int64]
    loglik: NDArray[np.float64]
    loglik_data: NDArray[np.float64]


@dataclass(frozen=True)
class FiniteFamily:
    """pi_D and candidates on finite prompt and response sets.

    Attributes:
        mu: (prompts,) prompt distribution.
        data: (prompts, responses) pi_D(y|x), rows sum to 1.
        models: (candidates, prompts, responses) pi_j(y|x), rows sum to 1 (zeros allowed).
        names: (candidates,) names.
    """

    mu: NDArray[np.float64]
    data: NDArray[np.float64]
    models: NDArray[np.float64]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        p, r = self.data.shape
        if self.mu.shape != (p,) or not np.isclose(self.mu.sum(), 1.0) or (self.mu < 0).any():
            raise InputError(f"mu: expected a probability vector of length {p}")
        for name, arr in (("data", self.data), ("models", self.models)):
            if (arr < 0).any() or not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-9):
                raise InputError(f"{name}: every conditional distribution must sum to 1")
        if self.models.shape[1:] != (p, r):
            raise InputError(f"models: expected shape (candidates, {p}, {r}), "
                             f"got {self.models.shape}")
        if len(self.names) != self.models.shape[0]:
            raise InputError(f"names: {len(self.names)} names for {self.models.shape[0]} models")

    @property
    def size(self) -> int:
        return int(self.models.shape[0])

    def _log_ratio(self) -> NDArray[np.float64]:
        """(candidates, prompts * responses) log pi_D - log pi_j on pi_D's support."""
        support = self.data > 0
        with np.errstate(divide="ignore"):
            log_d = np.log(self.data[support])
            log_m = np.log(self.models[:, support])
        return np.asarray(log_d[None, :] - log_m, dtype=np.float64)

    def _support_weights(self) -> NDArray[np.float64]:
        return np.asarray((self.mu[:, None] * self.data)[self.data > 0], dtype=np.float64)

    def coverage(self, ns: ArrayLike) -> NDArray[np.float64]:
        """Exact Cov_N(pi_D || pi_j) (Eq. 1): (candidates, *ns.shape)."""
        w = self._support_weights()
        return np.stack([coverage_profile(x, ns, w) for x in self._log_ratio()])

    def kl(self) -> NDArray[np.float64]:
        """Exact sequence-level KL(pi_D || pi_j): (candidates,)."""
        w = self._support_weights()
        x = self._log_ratio()
        with np.errstate(invalid="ignore"):
            return np.asarray((x * w).sum(axis=1), dtype=np.float64)

    def sample(self, n: int, rng: np.random.Generator) -> HeldOut:
        """Draw ``n`` held-out examples (x, y) ~ mu x pi_D with ``rng``."""
        if n < 1:
            raise InputError(f"n: need at least one held-out example, got {n}")
        prompt = rng.choice(self.mu.size, size=n, p=self.mu)
        response = _draw(self.data[prompt], rng)
        with np.errstate(divide="ignore"):
            loglik = np.log(self.models[:, prompt, response])
            loglik_data = np.log(self.data[prompt, response])
        return HeldOut(prompt, response, loglik, loglik_data)

    def onpolicy(self, prompts: NDArray[np.int64], n: float) -> NDArray[np.float64]:
        """Exact hatCov^{pi_j}_N(pi_k || pi_j) on the held-out ``prompts`` (Eq. 32)."""
        unique, counts = np.unique(prompts, return_counts=True)
        with np.errstate(divide="ignore"):
            logp = np.log(self.models[:, unique, :])
        return onpolicy_exact(logp, n, weights=counts)

    def sample_onpolicy(
        self, prompts: NDArray[np.int64], samples: int, rng: np.random.Generator
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Sample ``samples`` responses per distinct held-out prompt from every candidate.

        Returns:
            ``(sample_loglik, counts)``: (candidates, candidates, distinct prompts, samples)
            log pi_k(y|x) of responses y ~ pi_j(.|x) (the input of
            :func:`~lmcoverage.select.onpolicy_from_samples`), and each distinct prompt's
            number of held-out occurrences (its weight).
        """
        unique, counts = np.unique(prompts, return_counts=True)
        k = self.size
        out = np.empty((k, k, unique.size, samples), dtype=np.float64)
        for j in range(k):
            ys = _draw(np.repeat(self.models[j, unique], samples, axis=0), rng)
            ys = ys.reshape(unique.size, samples)
            with np.errstate(divide="ignore"):
                out[j] = np.log(self.models[:, unique[:, None], ys])
        return out, counts


def _draw(probs: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int64]:
    """One index per row of ``probs`` (rows, responses), drawn by inverse CDF."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1)


def misspecification_example(alpha: float, m: float) -> FiniteFamily:
    """A two-model class where the likelihood maximiser covers badly (Prop E.1).

    One prompt, three responses {a, b, s}; pi_D = ((1-p)/2, (1-p)/2, p) with
    p = alpha^2 / (8 log M).

    - ``cover`` (index 0): pi_D with b scaled by e^-alpha and a taking the freed mass, as in
      the paper's pi_1 = Ber(e^-alpha / 2): log pi_D/pi is alpha on b and
      -log(2 - e^-alpha) in [-alpha, 0] on a, so sup |log pi_D - log pi| = alpha exactly (the
      proposition's condition) and Cov_N = 0 for every N > e^alpha. Its KL is
      (1-p)/2 (alpha - log(2 - e^-alpha)) >= (1-p) (1 - e^-alpha)^2 >= (1-p) alpha^2/4.
    - ``mle`` (index 1): exact on {a, b} up to renormalisation, but M times too unlikely on s.
      Its KL is at most p log M = alpha^2/8 < (1-p) alpha^2/4, so it is the population
      likelihood maximiser, yet Cov_N = p = alpha^2 / (8 log M) for every 1 < N <= M (at N = M
      the ratio is a tie, which counts: :mod:`lmcoverage.metrics.threshold`).

    The paper takes p = alpha^2 / (32 log M) and two prompts; one prompt with the slice s as
    a third response keeps the same orders (Cov_N(mle) of order alpha^2 / log M, Cov_N(cover)
    = 0) with a slice four times heavier, so fewer held-out examples reach it.

    Args:
        alpha: the misspecification level in (0, 1/2].
        m: the factor M >= 4 by which ``mle`` under-weights the slice s.
    """
    if not 0.0 < alpha <= 0.5:
        raise InputError(f"alpha: must be in (0, 0.5], got {alpha}")
    if not 4.0 <= m < np.inf:
        raise InputError(f"m: must be a finite number >= 4, got {m}")
    p = alpha**2 / (8.0 * np.log(m))
    data = np.array([[(1 - p) / 2, (1 - p) / 2, p]])
    cover = np.array([[(1 - p) / 2 * (2 - np.exp(-alpha)), (1 - p) / 2 * np.exp(-alpha), p]])
    mle = np.array([[(1 - p / m) / 2, (1 - p / m) / 2, p / m]])
    return FiniteFamily(np.ones(1), data, np.stack([cover, mle]), ("cover", "mle"))


def _normalise(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(p / p.sum(axis=-1, keepdims=True), dtype=np.float64)


def _subset(
    mass: NDArray[np.float64], target: float, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """A random set of entries of ``mass`` (any shape) with total mass close to, at most, target.

    Greedy in a random order: an entry joins when it still fits under ``target``.
    """
    flat = mass.ravel()
    mask = np.zeros(flat.size, dtype=bool)
    total = 0.0
    for i in rng.permutation(flat.size):
        if total + flat[i] <= target:
            mask[i] = True
            total += flat[i]
    return mask.reshape(mass.shape)


def _per_prompt_subset(
    data: NDArray[np.float64], target: float, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """:func:`_subset` of each prompt's responses, with pi_D mass at most ``target`` each."""
    return np.stack([_subset(row, target, rng) for row in data])


def _on_subset(
    data: NDArray[np.float64], mask: NDArray[np.bool_], eps: float
) -> NDArray[np.float64]:
    """pi_D conditioned on ``mask`` with probability 1 - eps, the rest (prop. to pi_D) eps."""
    inside = np.where(mask, data, 0.0)
    outside = np.where(mask, 0.0, data)
    out_total = outside.sum(axis=1, keepdims=True)
    rest = np.divide(outside, out_total, out=np.zeros_like(outside), where=out_total > 0)
    return _normalise((1.0 - eps) * _normalise(inside) + eps * rest)


def _noise(data: NDArray[np.float64], s: float, rng: np.random.Generator
           ) -> tuple[NDArray[np.float64], str]:
    """``noise-s``: pi_D(y|x) exp(s g_xy), g ~ N(0, 1), renormalised."""
    return _normalise(data * np.exp(s * rng.standard_normal(data.shape))), f"noise-{s:g}"


def _slice(data: NDArray[np.float64], p: float, factor: float, rng: np.random.Generator
           ) -> tuple[NDArray[np.float64], str]:
    """``slice-p``: pi_D (prompts, responses) except on a random slice of (x, y) pairs of
    mass at most ``p`` under uniform mu, where it is ``factor`` times too small."""
    mask = _subset(data / data.shape[0], p, rng)
    return _normalise(np.where(mask, factor * data, data)), f"slice-{p:g}"


def _uniform_prompts(data: NDArray[np.float64],
                     candidates: list[tuple[NDArray[np.float64], str]]) -> FiniteFamily:
    """The family of ``(pi_j, name)`` candidates around pi_D ``data``, mu uniform."""
    prompts = data.shape[0]
    return FiniteFamily(np.full(prompts, 1.0 / prompts), data,
                        np.stack([model for model, _ in candidates]),
                        tuple(name for _, name in candidates))


def random_family(
    seed: int,
    prompts: int = 16,
    responses: int = 24,
    sigmas: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5),
    slices: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04),
    slice_factor: float = 1e-3,
    temperatures: tuple[float, ...] = (1.5,),
) -> FiniteFamily:
    """A random misspecified family for the Thm 6.3 check (no candidate equals pi_D).

    pi_D(.|x) ~ Dirichlet(1/2) per prompt, mu uniform. Candidates:

    - ``noise-s``: pi_D(y|x) exp(s g_xy), g ~ N(0, 1), renormalised: KL about s^2/2, coverage
      poor at small N and good at large N;
    - ``slice-p``: pi_D except on a random slice of (x, y) pairs of mass at most p, where it is
      ``slice_factor`` times too small: low KL, Cov_N about p for every N <= 1/slice_factor
      (the candidates maximum likelihood likes and coverage does not);
    - ``temp-b``: pi_D^b renormalised (b > 1 sharpens, b < 1 flattens).
    """
    rng = np.random.default_rng(seed)
    data = rng.dirichlet(np.full(responses, 0.5), size=prompts)
    candidates = [_noise(data, s, rng) for s in sigmas]
    candidates += [_slice(data, p, slice_factor, rng) for p in slices]
    candidates += [(_normalise(data**b), f"temp-{b:g}") for b in temperatures]
    return _uniform_prompts(data, candidates)


def bound_breaking_family(
    seed: int,
    prompts: int = 16,
    responses: int = 24,
    smooths: tuple[float, ...] = (0.85, 0.9),
    slices: tuple[float, ...] = (0.12, 0.16, 0.2),
    slice_factor: float = 1e-4,
    sigmas: tuple[float, ...] = (2.0,),
) -> FiniteFamily:
    """A misspecified family in which some candidates break Thm 6.3's bound at large N.

    pi_D(.|x) ~ Dirichlet(0.1) per prompt (peaked), mu uniform; no candidate equals pi_D.

    - ``smooth-l``: (1 - l) pi_D + l uniform: pi_D/pi <= 1/(1 - l), so Cov_M = 0 for
      M > 1/(1 - l), at a high KL (pi_D is peaked);
    - ``slice-p``: pi_D except on a random slice of (x, y) pairs of mass at most p, where it is
      ``slice_factor`` times too small: Cov_M about p for every M <= 1/slice_factor and the
      lowest KL of the family (about p log(1/slice_factor)), so the minimum-KL pick breaks
      the bound min_j Cov_(N^a) + N^-(1-a) + log(|Pi|/delta)/n once p exceeds N^-(1-a);
    - ``noise-s``: pi_D(y|x) exp(s g_xy), g ~ N(0, 1), renormalised.
    """
    rng = np.random.default_rng(seed)
    data = rng.dirichlet(np.full(responses, 0.1), size=prompts)
    data = _normalise(np.maximum(data, 1e-12))  # no response exactly impossible
    candidates = [((1.0 - lam) * data + lam / responses, f"smooth-{lam:g}") for lam in smooths]
    candidates += [_slice(data, p, slice_factor, rng) for p in slices]
    candidates += [_noise(data, s, rng) for s in sigmas]
    return _uniform_prompts(data, candidates)


def offset_family(
    seed: int,
    ns: tuple[float, ...] = (2, 4, 8, 16),
    prompts: int = 8,
    responses: int = 128,
    eps: float = 1e-6,
) -> FiniteFamily:
    """A family where the simple tournament is fooled at small N and the offset one is not.

    pi_D(.|x) ~ Dirichlet(20) (nearly uniform), mu uniform. Candidates:

    - ``good``: pi_D itself (Cov_N = 0 for N > 1);
    - ``sharp-N`` for N in ``ns``: pi_D renormalised on a random set of pi_D-mass at least
      1 - 1/(2N) per prompt, with mass ``eps`` on the rest: Cov_M about 1/(2N) for all
      moderate M, but opponents rarely beat it by a factor N since it is sharper than pi_D;
    - ``adversary-N``: pi_D renormalised on a random set of pi_D-mass at most 1/N: it beats
      ``good`` by a factor N on mass about 1/N, which the simple tournament charges to ``good``
      and the offset term (computed on ``good``'s own samples) cancels.
    """
    rng = np.random.default_rng(seed)
    data = rng.dirichlet(np.full(responses, 20.0), size=prompts)
    candidates = [(data, "good")]
    candidates += [(_on_subset(data, ~_per_prompt_subset(data, 1.0 / (2.0 * n), rng), eps),
                    f"sharp-{n:g}") for n in ns]
    candidates += [(_on_subset(data, _per_prompt_subset(data, (1.0 - 1e-3) / n, rng), eps),
                    f"adversary-{n:g}") for n in ns]
    return _uniform_prompts(data, candidates)
