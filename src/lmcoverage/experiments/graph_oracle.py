"""Hand-built graph models with known sequence probabilities, to test the analysis untrained.

:class:`OracleModel` turns a map ``problem -> {response: probability}`` into a
:class:`~lmcoverage.experiments.graph_common.SequenceModel`; the maps below are pi_D itself and
the feature-blind optima of Figures 1 and 2 (the paper's Appendix C), derived by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from lmcoverage.tasks import Problem

Path_ = tuple[int, ...]


class OracleModel:
    """A hand-built model: ``distribution(problem)`` gives its exact sequence probabilities.

    Responses missing from the mapping have probability 0. Greedy decoding follows the
    autoregressive model the sequence distribution induces: at each step, the token with the
    largest total mass among responses extending the prefix (ties: smallest token id).
    """

    def __init__(self, distribution: Callable[[Problem], Mapping[Path_, float]]) -> None:
        self.distribution = distribution

    def _dist(self, problem: Problem) -> dict[Path_, float]:
        dist = {tuple(r): float(p) for r, p in self.distribution(problem).items() if p > 0}
        total = sum(dist.values())
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            raise InputError(f"oracle distribution sums to {total}, not 1")
        return dist

    def score(self, problems: Sequence[Problem], responses: Sequence[Sequence[Sequence[int]]]
              ) -> list[np.ndarray]:
        out = []
        for problem, rs in zip(problems, responses, strict=True):
            dist = self._dist(problem)
            out.append(np.array([math.log(dist[tuple(r)]) if tuple(r) in dist else -math.inf
                                 for r in rs], dtype=np.float64))
        return out

    def sample(self, problems: Sequence[Problem], n: int, seed: int) -> list[list[Path_]]:
        """``n`` responses per problem drawn from the distribution (numpy, seeded)."""
        rng = np.random.default_rng(seed)
        out = []
        for problem in problems:
            paths, probs = zip(*self._dist(problem).items(), strict=True)
            out.append([paths[i] for i in rng.choice(len(paths), size=n, p=np.array(probs))])
        return out

    def greedy(self, problems: Sequence[Problem]) -> list[Path_]:
        out = []
        for problem in problems:
            dist = self._dist(problem)
            prefix: Path_ = ()
            length = max(len(r) for r in dist)
            while len(prefix) < length:
                mass: dict[int, float] = {}
                for r, p in dist.items():
                    if len(r) > len(prefix) and r[: len(prefix)] == prefix:
                        mass[r[len(prefix)]] = mass.get(r[len(prefix)], 0.0) + p
                if not mass:
                    break
                best = max(mass.values())
                prefix = prefix + (min(t for t, m in mass.items() if m == best),)
            out.append(prefix)
        return out


def data_distribution(problem: Problem) -> dict[Path_, float]:
    """pi_D(.|x) itself: the perfect model."""
    return {tuple(r): float(p) for r, p in problem.support}


def uniform_valid_paths(problem: Problem) -> dict[Path_, float]:
    """Uniform over the valid paths: 1/2 on each two-way decision, perfect elsewhere."""
    paths = [tuple(r) for r in problem.valid_paths]
    return {r: 1.0 / len(paths) for r in paths}


def opposite_path(problem: Problem) -> Path_:
    """The valid path that differs from the response ``y*`` at every decision position.

    In Figure 1 this is the other class's rule (parity-match vs parity-opposite), so a
    feature-blind model that knows both rules but not the class spreads mass over ``y*`` and
    this path only.
    """
    star = tuple(problem.response_ids)
    paths = [tuple(r) for r in problem.valid_paths]
    decisions = [i for i in range(len(star)) if len({r[i] for r in paths}) > 1]
    for r in paths:
        if all(r[i] != star[i] for i in decisions):
            return r
    raise InputError("problem has no valid path opposite to its response")


def rule_mixture(rule_weights: Mapping[int, float]) -> Callable[[Problem], dict[Path_, float]]:
    """The Bayes-optimal feature-blind model for a mixture of Figure 1's classes.

    ``rule_weights`` maps class 1 (parity-match), 2 (parity-opposite) and 3 (uniform over
    valid paths) to prior weights. A model that cannot compute the hidden feature predicts the
    sequence-level mixture ``sum_k w_k pi_k(y|x)``. Pre-training optimum (1/3 each): ``y*``
    gets 1/2 * 5/6 = 5/12; fine-tuned optimum (0.9, 0.1, 0): ``y*`` gets 0.9 on G1, 0.1 on G2.
    Needs the problem's class (1 or 2) to tell which valid path is which rule's.
    """
    total = sum(rule_weights.values())
    if total <= 0 or any(w < 0 for w in rule_weights.values()):
        raise InputError(f"rule_weights must be >= 0 with a positive sum, got {rule_weights}")
    w = {k: float(v) / total for k, v in rule_weights.items()}

    def distribution(problem: Problem) -> dict[Path_, float]:
        if problem.group not in (1, 2):
            raise InputError(f"rule_mixture needs a class-1 or class-2 problem, got "
                             f"{problem.group}")
        star, other = tuple(problem.response_ids), opposite_path(problem)
        rule_path = {problem.group: star, 3 - problem.group: other}
        paths = [tuple(r) for r in problem.valid_paths]
        dist = {r: w.get(3, 0.0) / len(paths) for r in paths}
        for label in (1, 2):
            dist[rule_path[label]] += w.get(label, 0.0)
        return dist

    return distribution
