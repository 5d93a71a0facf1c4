"""Sampling K responses per prompt from a candidate (a model directory plus decoding settings).

A candidate is written ``DIR`` or ``DIR@temperature=0.8,top_p=0.95`` and parsed by
:func:`lmcoverage.engine.candidates.parse_candidates`. Prompt rows are those of
:mod:`lmcoverage.engine.rows` (``prompt`` text, ``messages`` or ``prompt_ids``); responses stop
at the model's stop tokens (EOS, chat end-of-turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmcoverage.engine.candidates import Candidate


def sample_texts(
    candidate: Candidate,
    rows: Sequence[dict[str, Any]],
    k: int,
    max_new_tokens: int,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    source: str = "prompts",
    first_index: int = 0,
    dtype: str = "float32",
    batch_size: int | str = "auto",
) -> list[list[str]]:
    """``out[i][j]``: the j-th of ``k`` responses (text, without the stop token) to prompt row
    ``rows[i]`` from ``candidate``, drawn by :func:`lmcoverage.engine.rows.sample_rows`;
    ``first_index``: ``rows[0]``'s index in the whole input when ``rows`` is a shard of it
    (same samples);
    ``dtype``: the weights' dtype (:func:`lmcoverage.models.hf.resolve_dtype`);
    ``batch_size``: as for :func:`lmcoverage.engine.sampling.sample_responses` (the samples do
    not depend on it)."""
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(candidate.path)
    model = load_causal_lm(candidate.path, device=device, dtype=dtype)
    drawn = sample_rows(model, tokenizer, rows, k, candidate.decoding, seed=seed,
                        max_new_tokens=max_new_tokens, batch_size=batch_size,
                        progress=progress,
                        where=[f"{source}: row {first_index + i + 1}" for i in range(len(rows))],
                        first_index=first_index)
    return [[s["response"] for s in drawn[i * k:(i + 1) * k]] for i in range(len(rows))]
