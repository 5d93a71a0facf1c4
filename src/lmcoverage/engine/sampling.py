"""KV-cached sampling of N responses per prompt, the prompt computed once.

Each prompt runs once; its cache row is repeated for its N samples, which then decode together
one token per step. Randomness is per prompt: prompt ``i`` draws its uniforms from
``numpy.random.default_rng([seed, i])`` and tokens come from the inverse CDF of the float64
softmax, so the samples of a prompt depend on ``seed`` and on ``i`` only, not on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lmcoverage.engine._hf import (
    as_ids,
    check_fits,
    context_length,
    forward,
    inference,
    model_device,
    preallocate,
    progress_bar,
    run_prompts,
    select_rows,
    vocab_size,
)
from lmcoverage.engine.scoring import DEFAULT_BATCH_SIZE, _check_batch_size


def _draw(logprobs: torch.Tensor, uniforms: torch.Tensor, temperature: float) -> torch.Tensor:
    """Tokens ``(B,)`` from next-token log-probs ``(B, V)``: inverse CDF at ``uniforms`` (0, 1]
    of ``softmax(logprobs / temperature)`` in float64; argmax when temperature is 0."""
    if temperature == 0:
        return logprobs.argmax(dim=-1)
    probs = torch.softmax(logprobs.double() / temperature, dim=-1)
    cdf = probs.cumsum(dim=-1)
    target = (uniforms.to(cdf.device) * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, target)[:, 0].clamp(max=probs.shape[-1] - 1)


def sample_responses(
    model: Any,
    prompts: Sequence[Sequence[int]],
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    stop_token_id: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> list[list[list[int]]]:
    """Sample ``n`` responses for every prompt from ``softmax(logits / temperature)``.

    Args:
        model: any Hugging Face causal LM.
        prompts: P non-empty prompts (token ids).
        n: samples per prompt (>= 1).
        max_new_tokens: response length cap (>= 1); prompt + cap must fit the context.
        temperature: >= 0; 0 is greedy decoding (all n samples equal).
        seed: same seed, same samples (independently of ``batch_size``).
        stop_token_id: if given, a response ends after this token (which is kept in it).
        batch_size: decoding rows per forward pass (prompts per pass: ``max(1, batch_size//n)``).
        progress: show a rich progress bar over prompts.

    Returns:
        ``out[i][k]``: the k-th sample for prompt i, a list of token ids.
    """
    _check_batch_size(batch_size)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
    vocab, ctx = vocab_size(model), context_length(model)
    if stop_token_id is not None and not 0 <= stop_token_id < vocab:
        raise ValueError(f"stop_token_id must lie in [0, {vocab}), got {stop_token_id!r}")
    prompt_ids = [as_ids(p, vocab, f"prompt {i}") for i, p in enumerate(prompts)]
    for i, p in enumerate(prompt_ids):
        if not p:
            raise ValueError(f"prompt {i} is empty; every prompt needs at least one token")
        check_fits(len(p), max_new_tokens, ctx, f"prompt {i}")

    device = model_device(model)
    per_pass = max(1, batch_size // n)
    out: list[list[list[int]]] = []
    with inference(model), progress_bar(len(prompts), "sampling", progress) as advance:
        for start in range(0, len(prompt_ids), per_pass):
            chunk = list(range(start, min(start + per_pass, len(prompt_ids))))
            batch = run_prompts(model, [prompt_ids[i] for i in chunk])
            rows = torch.arange(len(chunk), device=device).repeat_interleave(n)
            uniforms = torch.from_numpy(
                np.concatenate(
                    [1.0 - np.random.default_rng([seed, i]).random((n, max_new_tokens))
                     for i in chunk]
                )
            )
            cache = preallocate(select_rows(batch.cache, rows), max_new_tokens)
            mask = batch.mask[rows]
            positions = batch.lengths[rows][:, None]
            logprobs = batch.next_logprobs[rows]
            tokens = torch.zeros((len(rows), max_new_tokens), dtype=torch.long, device=device)
            done = torch.zeros(len(rows), dtype=torch.bool, device=device)
            steps = 0
            for t in range(max_new_tokens):
                token = _draw(logprobs, uniforms[:, t], temperature)
                tokens[:, t] = token
                steps = t + 1
                if stop_token_id is not None:
                    done |= token == stop_token_id
                if steps == max_new_tokens or bool(done.all()):
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                logits, cache = forward(model, token[:, None], mask, positions + t, cache)
                logprobs = torch.log_softmax(logits[:, -1], dim=-1)
            samples = tokens[:, :steps].cpu().tolist()
            for k in range(len(chunk)):
                out.append([_truncate(s, stop_token_id) for s in samples[k * n : (k + 1) * n]])
            advance(len(chunk))
    return out


def _truncate(tokens: list[int], stop_token_id: int | None) -> list[int]:
    """``tokens`` up to and including the first ``stop_token_id``."""
    if stop_token_id is not None and stop_token_id in tokens:
        return tokens[: tokens.index(stop_token_id) + 1]
    return tokens
