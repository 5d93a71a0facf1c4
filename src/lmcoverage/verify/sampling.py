"""Sampling K responses per prompt from a candidate (a model directory plus decoding settings).

A candidate is written ``DIR`` or ``DIR@temperature=0.8,top_p=0.95``
(:func:`lmcoverage.decoding.spec.parse_candidate`). Prompt rows are those of
:mod:`lmcoverage.engine.rows` (``prompt`` text, ``messages`` or ``prompt_ids``); responses stop
at the model's stop tokens (EOS, chat end-of-turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmcoverage.errors import InputError


def check_candidates(candidates: Sequence[str]) -> list[tuple[str, Any]]:
    """``(model path, DecodingSpec)`` of every candidate, checked before any model loads.

    Raises:
        InputError: a bad decoding spec, a path that is not a model
            (see :func:`lmcoverage.models.hf.check_model_dir`).
    """
    from lmcoverage.decoding.spec import parse_candidate
    from lmcoverage.models.hf import check_model_dir

    if not candidates:
        raise InputError("--model: give at least one candidate")
    if len(set(candidates)) != len(candidates):
        raise InputError("--model: a candidate is given twice")
    out = []
    for text in candidates:
        try:
            path, spec = parse_candidate(text)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        check_model_dir(path)
        out.append((path, spec))
    return out


def sample_texts(
    path: str,
    spec: Any,
    rows: Sequence[dict[str, Any]],
    k: int,
    max_new_tokens: int,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    source: str = "prompts",
    first_index: int = 0,
) -> list[list[str]]:
    """``out[i][j]``: the j-th of ``k`` responses (text, without the stop token) to prompt row
    ``rows[i]``, drawn by :func:`lmcoverage.engine.rows.sample_rows`; ``first_index``:
    ``rows[0]``'s index in the whole input when ``rows`` is a shard of it (same samples)."""
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(path)
    model = load_causal_lm(path, device=device)
    drawn = sample_rows(model, tokenizer, rows, k, spec, seed=seed,
                        max_new_tokens=max_new_tokens, progress=progress,
                        where=[f"{source}: row {first_index + i + 1}" for i in range(len(rows))],
                        first_index=first_index)
    return [[s["response"] for s in drawn[i * k:(i + 1) * k]] for i in range(len(rows))]
