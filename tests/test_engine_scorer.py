"""engine.scorer: one protocol for every scorer, one ScoreTable builder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from lmcoverage.engine.scorer import HFScorer, score_table
from lmcoverage.engine.scoring import mass_correct, score_responses
from lmcoverage.engine.table import Examples
from lmcoverage.errors import InputError
from tiny_llama import tiny_llama


class _TableScorer:
    """Known probabilities per (prompt, response); prompts are strings, not token ids."""

    def __init__(self, probs: dict[tuple[str, tuple[int, ...]], float]) -> None:
        self.probs = probs

    def score(self, prompts: Sequence[str], responses: Sequence[Sequence[Sequence[int]]]
              ) -> list[np.ndarray]:
        return [np.array([math.log(self.probs[x, tuple(r)]) if (x, tuple(r)) in self.probs
                          else -math.inf for r in rs])
                for x, rs in zip(prompts, responses, strict=True)]


def _examples(**extra: object) -> Examples:
    return Examples(group=["a", "b"], weight=np.array([0.25, 0.75]),
                    loglik_data=np.array([-0.1, -0.2]), **extra)  # type: ignore[arg-type]


def test_any_scorer_with_its_own_prompts_gives_the_table() -> None:
    scorer = _TableScorer({("x", (1,)): 0.5, ("x", (2,)): 0.25, ("z", (3,)): 0.125})
    table = score_table(scorer, _examples(), "toy",
                        encoded=(["x", "z"], [[1], [3]], [[[1], [2]], [[4]]]))
    assert table.models == ["toy"]
    np.testing.assert_allclose(table.matrix("loglik")[0], np.log([0.5, 0.125]))
    np.testing.assert_allclose(table.matrix("mass_correct")[0], [0.75, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(table.example_column("weight"), [0.25, 0.75])
    assert list(table.example_column("group")) == ["a", "b"]


def test_hf_scorer_matches_the_engine_and_keeps_reference_counts() -> None:
    model = tiny_llama(12, 16, seed=3)
    prompts, responses = [[1, 2], [3]], [[4, 5], [6]]
    correct = [[[4, 5], [7]], [[8]]]
    examples = _examples(prompt_ids=prompts, response_ids=responses, correct_ids=correct,
                         ref_correct=np.array([1, 0]), ref_samples=np.array([4, 4]))
    table = score_table(HFScorer(model, batch_size=2), examples, "tiny")
    want = [s[0] for s in score_responses(model, prompts, [[r] for r in responses],
                                          progress=False)]
    np.testing.assert_array_equal(table.matrix("loglik")[0], want)
    np.testing.assert_allclose(table.matrix("mass_correct")[0],
                               mass_correct(model, prompts, correct, progress=False),
                               rtol=1e-12)
    np.testing.assert_array_equal(table.example_column("ref_correct"), [1, 0])
    np.testing.assert_array_equal(table.example_column("ref_samples"), [4, 4])


def test_examples_without_token_ids_need_encoded() -> None:
    with pytest.raises(InputError, match="needs token ids or encoded"):
        score_table(_TableScorer({}), _examples(), "toy")
