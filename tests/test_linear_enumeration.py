"""Token-count enumeration (one implementation, lmcoverage.models.linear.enumeration) against
slow references: every sequence of V^H, and the multinomial law summed over sequences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lmcoverage.models.linear import count_pmfs, count_vectors
from lmcoverage.tasks.linear import count_vectors as task_count_vectors


@pytest.mark.parametrize(("v", "h"), [(1, 3), (2, 1), (2, 5), (3, 4), (4, 3)])
def test_count_vectors_are_every_count_of_a_sequence_in_lexicographic_order(v: int, h: int):
    reference = sorted({tuple(np.bincount(seq, minlength=v))
                        for seq in itertools.product(range(v), repeat=h)})
    got = count_vectors(v, h)
    assert got.dtype == np.int64 and got.shape == (math.comb(h + v - 1, v - 1), v)
    assert [tuple(r) for r in got.tolist()] == reference
    assert task_count_vectors is count_vectors  # the old import path is the same function


def test_count_pmfs_match_summing_sequence_probabilities():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=2)  # (P, V)
    h = 4
    laws = count_pmfs(np.log(p), h)
    for prompt, law in enumerate(laws):
        ref: dict[tuple[int, ...], float] = {}
        for seq in itertools.product(range(3), repeat=h):
            key = tuple(np.bincount(seq, minlength=3))
            ref[key] = ref.get(key, 0.0) + float(np.prod(p[prompt][list(seq)]))
        got = {tuple(int(c) for c in row): q for row, q in zip(law.counts, law.pmf, strict=True)}
        assert got.keys() == ref.keys() and law.dropped == 0.0
        for key, q in ref.items():
            assert got[key] == pytest.approx(q, rel=1e-12)
    pruned = count_pmfs(np.log(p), h, min_prob=0.01)
    for full, law in zip(laws, pruned, strict=True):
        assert law.dropped == pytest.approx(full.pmf[full.pmf <= 0.01].sum(), rel=1e-12)
        assert law.pmf.sum() + law.dropped == pytest.approx(1.0, rel=1e-12)
