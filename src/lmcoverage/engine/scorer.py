"""The one scorer protocol and the one ScoreTable builder.

A scorer gives exact ``log pi_hat(y|x)`` for any responses of each prompt
(:class:`SequenceScorer`): a Hugging Face causal LM through :class:`HFScorer` (a model
directory or the in-memory model of a ``Trainer``), or a hand-built model with known sequence
probabilities (:class:`~lmcoverage.experiments.graph_oracle.OracleModel`). What a prompt is
belongs to the scorer: token ids for a language model, a task problem for the graph oracle.

:func:`score_table` scores a scorer on :class:`~lmcoverage.engine.table.Examples` into a
one-model :class:`~lmcoverage.scoretable.ScoreTable`; :func:`examples_table` is the builder
every scoring path ends in (:func:`lmcoverage.engine.table.score_models` too, which scores
several decoding variants of one model in one pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine.scoring import (
    DEFAULT_BATCH_SIZE,
    held_out_then_correct,
    loglik_and_mass,
    score_variants,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from transformers import PreTrainedModel

    from lmcoverage.engine.table import Examples
    from lmcoverage.scoretable import ScoreTable

Prompt = TypeVar("Prompt", contravariant=True)
#: ``(prompts, held-out responses, correct sets or None)``, one entry per example.
Encoded = tuple[Sequence[Any], Sequence[Sequence[int]], Sequence[Sequence[Sequence[int]]] | None]


class SequenceScorer(Protocol[Prompt]):
    """A model of ``pi_hat(y|x)`` that scores any response exactly."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[Sequence[Sequence[int]]]
              ) -> list[np.ndarray]:
        """``log pi_hat(r|x)`` for every response ``r`` of every prompt ``x``: one float64
        array ``(len(responses[i]),)`` per prompt, values <= 0 (or -inf)."""
        ...


class HFScorer:
    """A Hugging Face causal LM as a :class:`SequenceScorer` of token-id prompts, scored by
    :func:`lmcoverage.engine.scoring.score_variants` under one decoding ``spec`` (each
    distinct prompt runs once)."""

    def __init__(self, model: PreTrainedModel, batch_size: int | str = DEFAULT_BATCH_SIZE,
                 progress: bool = False, spec: DecodingSpec | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.progress = progress
        self.spec = spec or DecodingSpec()

    def score(self, prompts: Sequence[Sequence[int]],
              responses: Sequence[Sequence[Sequence[int]]]) -> list[np.ndarray]:
        scores = score_variants(self.model, prompts, responses, [self.spec],
                                batch_size=self.batch_size, progress=self.progress)
        return [s[:, 0] for s in scores]


def examples_table(examples: Examples, name: str, loglik: np.ndarray,
                   mass: np.ndarray | None, loglik_data: np.ndarray | None = None
                   ) -> ScoreTable:
    """The ScoreTable rows of one model on ``examples``: ``loglik`` (examples,) of the
    held-out responses, ``mass`` (examples,) = ``pi_hat(G_x|x)`` or None; ``loglik_data``
    (default: the examples' own), weights, groups and reference counts from the examples;
    ``example_id`` is the example's position (:func:`example_rows` of every example)."""
    from lmcoverage.scoretable import ScoreTable

    return ScoreTable(example_rows(examples, name, loglik, mass, loglik_data))


def example_rows(examples: Examples, name: str, loglik: np.ndarray, mass: np.ndarray | None,
                 loglik_data: np.ndarray | None = None, start: int = 0,
                 stop: int | None = None) -> pa.Table:
    """The rows of :func:`examples_table` for the examples ``start:stop`` only (an unchecked
    Arrow table, :func:`lmcoverage.scoretable.columns_table`): what a
    :class:`~lmcoverage.scoretable.ScoreTableWriter` writes a batch at a time. ``loglik``,
    ``mass`` and ``loglik_data`` cover every example."""
    from lmcoverage.scoretable import columns_table

    stop = len(examples) if stop is None else stop

    def part(values: Any) -> Any:
        return None if values is None else values[start:stop]

    return columns_table(
        model=[name] * (stop - start),
        example_id=np.arange(start, stop, dtype=np.int64),
        loglik=loglik[start:stop],
        loglik_data=part(examples.loglik_data if loglik_data is None else loglik_data),
        weight=part(examples.weight),
        group=part(examples.group),
        mass_correct=part(mass),
        ref_correct=part(examples.ref_correct),
        ref_samples=part(examples.ref_samples),
    )


def score_table(scorer: SequenceScorer[Any], examples: Examples, name: str,
                encoded: Encoded | None = None) -> ScoreTable:
    """A one-model ScoreTable of ``scorer`` on ``examples``.

    ``encoded``: the examples as the scorer's prompts, held-out responses and correct sets
    (default: the examples' token ids). Each prompt's held-out response and its correct set
    are scored in one call (:func:`~lmcoverage.engine.scoring.held_out_then_correct`), so
    ``mass_correct`` makes Pass@N exact.
    """
    from lmcoverage.errors import InputError

    if encoded is None:
        if examples.prompt_ids is None or examples.response_ids is None:
            raise InputError(f"{examples.source}: score_table needs token ids or encoded=")
        encoded = (examples.prompt_ids, examples.response_ids, examples.correct_ids)
    prompts, responses, correct = encoded
    scores = scorer.score(prompts, held_out_then_correct(responses, correct))
    loglik, mass = loglik_and_mass(scores, responses, correct)
    return examples_table(examples, name, loglik, mass)
