"""Sampling K responses per prompt from a candidate (a model directory plus decoding settings).

A candidate is written ``DIR`` or ``DIR@temperature=0.8,top_p=0.95``
(:func:`lmcoverage.decoding.spec.parse_candidate`). Prompt rows give ``prompt`` text (encoded
with the model's tokenizer, with its special tokens) or ``prompt_ids``. Responses stop at the
tokenizer's EOS token and are decoded without special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmcoverage.errors import InputError


def encode_prompts(rows: Sequence[dict[str, Any]], tokenizer: Any, source: str
                   ) -> list[list[int]]:
    """Token ids of every row's prompt (``prompt_ids`` as given, else ``prompt`` encoded)."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source}: row {i + 1}"
        if "prompt_ids" in row:
            ids = row["prompt_ids"]
            if not isinstance(ids, list) or not ids or not all(
                    isinstance(t, int) and not isinstance(t, bool) for t in ids):
                raise InputError(f"{where}: prompt_ids must be a non-empty list of token ids")
            out.append(list(ids))
        elif isinstance(row.get("prompt"), str) and row["prompt"]:
            out.append(list(tokenizer(row["prompt"], add_special_tokens=True)["input_ids"]))
        else:
            raise InputError(f"{where}: needs a non-empty 'prompt' text or 'prompt_ids'")
    return out


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
) -> list[list[str]]:
    """``out[i][j]``: the j-th of ``k`` responses (text) to prompt row ``rows[i]``."""
    from lmcoverage.engine.sampling import sample_with_logp
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(path)
    prompts = encode_prompts(rows, tokenizer, source)
    model = load_causal_lm(path, device=device)
    stops = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    drawn = sample_with_logp(model, prompts, k, max_new_tokens, spec=spec, seed=seed,
                             stop_token_ids=stops, progress=progress)
    return [[tokenizer.decode(s.ids, skip_special_tokens=True) for s in per_prompt]
            for per_prompt in drawn]
