"""On-policy estimates for the offset tournament (Eq. 32) from Hugging Face checkpoints.

For each candidate j, sample responses to every held-out prompt (``engine.sample_with_logp``),
then score all of them under every candidate k (``engine.score_responses``): the
(candidates, candidates, prompts, samples) log-likelihoods feed
:func:`~lmcoverage.select.onpolicy_from_samples`.

Both terms of Eq. 32 live on one response space, by the EOS convention of
:mod:`lmcoverage.engine.rows`: a held-out text response is scored with the EOS token appended,
and a sample ends at a stop token (kept and scored) or at the cap ``L`` = the longest held-out
response in tokens (EOS included). So every held-out response is a point of the space
"responses that stop within L tokens, or the first L tokens of one that does not", on which
each candidate's capped generation is a proper distribution.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable
from lmcoverage.select.tournament import onpolicy_from_samples


def _dirs_for_table(table: ScoreTable, patterns: Sequence[str]) -> list[Path]:
    """The model directories in the table's model order, matched by ``lmcoverage score`` names."""
    from lmcoverage.engine.candidates import parse_candidates

    by_name = {c.name: c.path for c in parse_candidates(patterns, "--model")}
    missing = [m for m in table.models if m not in by_name]
    if missing:
        raise InputError(f"--model: no directory for the table's model(s) {missing}; give the "
                         f"same directories as to lmcoverage score (got {sorted(by_name)})")
    return [by_name[m] for m in table.models]


def onpolicy_by_sampling(
    table: ScoreTable,
    data: str | os.PathLike[str],
    models: Sequence[str],
    n: float,
    samples: int = 16,
    max_new_tokens: int | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    trust_remote_code: bool = False,
    progress: bool = True,
) -> NDArray[np.float64]:
    """``onpolicy[j, k]`` = hatCov^{pi_j}_N(pi_k || pi_j) estimated from samples (Eq. 32).

    Args:
        table: the ScoreTable ``lmcoverage score --data data`` wrote for these ``models``.
        data: the held-out JSONL the table was scored on (its prompts are sampled from).
        models: the model directories or glob patterns given to ``lmcoverage score``.
        n: the threshold N >= 1.
        samples: responses sampled per prompt from each candidate.
        max_new_tokens: longest sampled response (default: the longest held-out response in
            tokens, EOS included). A sample also ends at a stop token (the tokenizer's EOS or
            a chat end-of-turn token), which is kept and scored.
        temperature: sampling temperature (1 samples the candidate itself, as Eq. 32 needs).
        seed: sampling seed; every candidate uses it (common random numbers).
        device, trust_remote_code, progress: as for ``lmcoverage score``.

    Returns:
        (candidates, candidates) float64, rows and columns in the table's model order, weighted
        by the table's example weights; diagonal NaN.
    """
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine import load_causal_lm, score_responses
    from lmcoverage.engine.rows import stop_token_ids
    from lmcoverage.engine.sampling import sample_with_logp
    from lmcoverage.engine.table import data_examples, encode_examples
    from lmcoverage.models.hf import load_tokenizer

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"--samples: must be a positive integer, got {samples!r}")
    dirs = _dirs_for_table(table, models)
    examples = data_examples(data)
    if len(examples) != table.num_examples or not np.array_equal(
            table.example_ids, np.arange(len(examples))):
        raise InputError(f"--data {data}: {len(examples)} examples, but the score table has "
                         f"{table.num_examples}; give the file the table was scored on")
    tokenizer = load_tokenizer(dirs[0], trust_remote_code)
    vocab = tokenizer.get_vocab()
    for d in dirs[1:]:
        if load_tokenizer(d, trust_remote_code).get_vocab() != vocab:
            raise InputError(f"--method offset: {d} and {dirs[0]} have different tokenizers; "
                             "cross-scoring samples needs one shared tokenizer")
    prompts, responses, _ = encode_examples(examples, dirs[0], trust_remote_code,
                                            tokenizer=tokenizer)
    cap = max(len(r) for r in responses) if max_new_tokens is None else max_new_tokens
    stops = stop_token_ids(tokenizer)  # one stop set for every candidate: one response space
    spec = DecodingSpec(temperature=temperature)

    drawn: list[list[list[list[int]]]] = []
    for j, d in enumerate(dirs):
        if progress:
            print(f"sampling {table.models[j]} ({j + 1}/{len(dirs)})", file=sys.stderr)
        model = load_causal_lm(d, trust_remote_code=trust_remote_code, device=device)
        drawn.append([[s.ids for s in group] for group in sample_with_logp(
            model, prompts, samples, cap, spec, seed=seed, stop_token_ids=stops,
            progress=progress)])
    k = len(dirs)
    logliks = np.empty((k, k, len(prompts), samples), dtype=np.float64)
    for o, d in enumerate(dirs):
        if progress:
            print(f"cross-scoring under {table.models[o]} ({o + 1}/{k})", file=sys.stderr)
        model = load_causal_lm(d, trust_remote_code=trust_remote_code, device=device)
        for j in range(k):
            scores = score_responses(model, prompts, drawn[j], progress=progress)
            logliks[j, o] = np.stack(scores)
    return onpolicy_from_samples(logliks, n, weights=table.example_column("weight"))
