"""Enumerating responses: every sequence of V^H, or every token-count vector with its
multinomial probability (tokens i.i.d. given the prompt)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.models.linear._base import _check_int


def all_sequences(vocab_size: int, horizon: int) -> Tensor:
    """(V^H, H) every response in lexicographic order."""
    v = _check_int("vocab_size", vocab_size, 1)
    h = _check_int("horizon", horizon, 1)
    idx = torch.arange(v**h, dtype=torch.long)
    powers = v ** torch.arange(h - 1, -1, -1, dtype=torch.long)
    return (idx[:, None] // powers) % v


def count_vectors(vocab_size: int, horizon: int) -> NDArray[np.int64]:
    """(C(H+V-1, V-1), V) every vector of non-negative token counts summing to H, in
    lexicographic order (stars and bars: the V-1 bar positions among H+V-1 slots)."""
    h = _check_int("horizon", horizon, 1)
    v = _check_int("vocab_size", vocab_size, 1)
    combos = list(itertools.combinations(range(h + v - 1), v - 1))
    bars = np.array(combos, dtype=np.int64).reshape(len(combos), v - 1)
    edges = np.concatenate(
        [np.full((bars.shape[0], 1), -1), bars, np.full((bars.shape[0], 1), h + v - 1)], axis=1
    )
    return np.diff(edges, axis=1) - 1


@dataclass(frozen=True)
class CountPMF:
    """The multinomial law of the token counts of one prompt (tokens i.i.d. given x).

    Attributes:
        counts: (M, V) float64 count vectors whose probability is above ``min_prob``.
        pmf: (M,) their probabilities H! / prod_v c_v! * prod_v p_v^c_v.
        dropped: the probability of the count vectors left out.
    """

    counts: NDArray[np.float64]
    pmf: NDArray[np.float64]
    dropped: float


def count_pmfs(
    log_probs: NDArray[np.float64], horizon: int, min_prob: float = 0.0
) -> list[CountPMF]:
    """Per prompt, the count vectors of responses of length H and their probabilities.

    Args:
        log_probs: (P, V) log p(v | x) of each prompt's token distribution.
        min_prob: count vectors of probability <= ``min_prob`` are dropped (their mass is
            reported); 0 keeps every vector of positive probability.
    """
    from scipy.special import gammaln

    counts = count_vectors(log_probs.shape[1], horizon)
    log_coef = gammaln(horizon + 1) - gammaln(counts + 1).sum(1)
    out = []
    for lp in log_probs:
        terms = np.where(counts > 0, counts * lp, 0.0)
        pmf = np.exp(log_coef + terms.sum(1))
        keep = pmf > min_prob
        out.append(CountPMF(counts[keep].astype(np.float64), pmf[keep], float(pmf[~keep].sum())))
    return out


def _enumerate(
    mu: Tensor, vocab_size: int, horizon: int, max_sequences: int
) -> tuple[Tensor, Tensor]:
    """``(x, y)`` for every prompt in mu's support and every response."""
    prompts = torch.nonzero(mu > 0).squeeze(1)
    total = prompts.numel() * vocab_size**horizon
    if total > max_sequences:
        raise InputError(
            f"max_sequences: enumeration needs {total} (prompt, response) pairs, above the limit "
            f"{max_sequences}; use monte_carlo_metrics"
        )
    seqs = all_sequences(vocab_size, horizon)
    return prompts.repeat_interleave(seqs.shape[0]), seqs.repeat(prompts.numel(), 1)
