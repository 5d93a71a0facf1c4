"""KV-cached sampling of N responses per prompt, the prompt computed once.

Each prompt runs once; its cache row is repeated for its N samples, which then decode together
one token per step. Tokens are drawn from the decoding distribution of a ``DecodingSpec``
(:func:`lmcoverage.decoding.spec.decoding_logprobs`, the function scoring uses too), and each
sample's log-prob under it is summed in float64.
Randomness is per prompt: prompt ``i`` draws its uniforms from ``numpy.random.default_rng([seed,
i])`` and tokens come from the inverse CDF of the float64 probabilities, so the samples of a
prompt depend on ``seed`` and on ``i`` only, not on the batch size (their log-probs only up to
float32 rounding of the logits, which depends on the batch's shape: 4.8e-7 nats at most in
``tests/test_sampling_batching.py``).

Batching is scoring's (:func:`lmcoverage.engine.scoring.batch_budget`): ``batch_size="auto"``
(the default) bounds each decode batch by :data:`AUTO_DECODE_BUDGETS`, and when the device runs
out of memory the budget halves and the prompts of the failed pass are redone (same samples).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from lmcoverage.decoding.spec import DecodingSpec, decoding_logprobs
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
from lmcoverage.engine.scoring import _OOM, Budget, _check_batch_size, batch_budget
from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcoverage.engine._hf import PromptBatch


@dataclass(frozen=True)
class Sample:
    """One sampled response.

    Attributes:
        ids: response token ids; they end with the stop token iff ``stopped``.
        logp: float64 log-prob of ``ids`` under the decoding distribution (0 for greedy).
        stopped: the response ended at a stop token (else it reached ``max_new_tokens``).
    """

    ids: list[int]
    logp: float
    stopped: bool


#: ``batch_size="auto"`` for sampling per device type: (sequences x (padded prompt length +
#: ``max_new_tokens``) per decode batch, the positions of KV cache it holds; logits, rows x
#: vocabulary, per step). 2^15 on CPU is 64 sequences of 512 positions (``--batch-size 64``, the
#: former default, at that length); rows stay under scoring's ``AUTO_MAX_ROWS``.
AUTO_DECODE_BUDGETS = {"cpu": (2**15, 2**25), "cuda": (2**18, 2**28)}


# Bytes of float64 CDF drawn from at once on a CPU: a group of rows whose CDF fits a core's
# L2 cache runs log-softmax, exp, cumsum and the search without a trip to memory (the whole
# batch at once, 32 x 49,152 tokens = 12.6 MB per pass, made the draw 6-10% of SmolLM2's
# sampling time; benchmarks/engine.md, section 4).
_DRAW_BYTES = 1 << 20


def _draw_step(logits: torch.Tensor, spec: DecodingSpec, uniforms: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: tokens ``(B,)`` drawn from ``spec``'s distribution over ``logits
    (B, V)`` at ``uniforms (B,)``, and their float64 log-probs ``(B,)``. On a CPU the rows go a
    few at a time (``_DRAW_BYTES``); each row's numbers are the same either way."""
    rows = len(logits)
    if logits.device.type == "cpu":
        rows = max(1, _DRAW_BYTES // (8 * logits.shape[-1]))
    tokens, logps = [], []
    for part, u in zip(logits.split(rows), uniforms.split(rows), strict=True):
        logprobs = decoding_logprobs(part, spec)
        token = _draw(logprobs, u)
        tokens.append(token)
        logps.append(logprobs.gather(1, token[:, None])[:, 0].double())
    return torch.cat(tokens), torch.cat(logps)


def _draw(logprobs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B,)`` from log-probs ``(B, V)``: inverse CDF at ``uniforms`` (0, 1] of the
    float64 probabilities (tokens of probability 0 are never drawn)."""
    cdf = logprobs.to(torch.float64, copy=True)
    cdf.exp_()
    cdf.cumsum_(dim=-1)
    target = (uniforms.to(cdf.device) * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, target)[:, 0].clamp(max=cdf.shape[-1] - 1)


def sample_responses(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    stop_token_id: int | None = None,
    batch_size: int | str = "auto",
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
        batch_size: sequences per decode batch (a prompt pass runs ``max(1, batch_size // n)``
            prompts), or ``"auto"`` (the default): sequences x (prompt + ``max_new_tokens``)
            per decode batch within :data:`AUTO_DECODE_BUDGETS` for the model's device,
            halved and redone when the device runs out of memory; the samples are the same
            either way.
        progress: show a rich progress bar over prompts.

    Returns:
        ``out[i][k]``: the k-th sample for prompt i, a list of token ids.
    """
    if not np.isfinite(temperature) or temperature < 0:
        raise InputError(f"temperature must be finite and >= 0, got {temperature!r}")
    spec = None if temperature == 0 else DecodingSpec(temperature=temperature)
    drawn = sample_with_logp(model, prompts, n, max_new_tokens, spec, seed=seed,
                             stop_token_ids=() if stop_token_id is None else (stop_token_id,),
                             batch_size=batch_size, progress=progress)
    return [[s.ids for s in group] for group in drawn]


def sample_with_logp(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    n: int,
    max_new_tokens: int,
    spec: DecodingSpec | None = DecodingSpec(),
    seed: int = 0,
    stop_token_ids: Collection[int] = (),
    batch_size: int | str = "auto",
    progress: bool = True,
    first_index: int = 0,
) -> list[list[Sample]]:
    """Sample ``n`` responses for every prompt from the decoding distribution ``spec``.

    Args:
        model, prompts, n, max_new_tokens, seed, batch_size, progress: as for
            :func:`sample_responses`.
        spec: decoding settings; None is greedy decoding (all n samples equal, logp 0).
        stop_token_ids: a response ends after the first of these tokens (kept in it).
        first_index: the index of ``prompts[0]`` in a larger prompt list this call is a shard
            of: prompt i draws as prompt ``first_index + i`` of the whole list would.

    Returns:
        ``out[i][k]``: the k-th :class:`Sample` for prompt i.
    """
    return sample_variants(model, prompts, n, max_new_tokens, [spec], seed=seed,
                           stop_token_ids=stop_token_ids, batch_size=batch_size,
                           progress=progress, first_index=first_index)[0]


def sample_variants(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    n: int,
    max_new_tokens: int,
    specs: Sequence[DecodingSpec | None],
    seed: int = 0,
    stop_token_ids: Collection[int] = (),
    batch_size: int | str = "auto",
    progress: bool = True,
    first_index: int = 0,
) -> list[list[list[Sample]]]:
    """``n`` samples per prompt under each of several decoding settings of one model, each
    prompt run once for all of them (its cache is shared by every variant's samples).

    Args: as for :func:`sample_with_logp`, with ``specs`` (M >= 1 settings) for ``spec``.

    Returns:
        ``out[m][i][k]``: the k-th :class:`Sample` for prompt i under ``specs[m]``, the same
        as :func:`sample_with_logp` with ``specs[m]`` and the same seed draws.
    """
    _check_batch_size(batch_size)
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not specs:
        raise InputError("specs: give at least one decoding setting")
    vocab, ctx = vocab_size(model), context_length(model)
    stops = sorted(set(as_ids(list(stop_token_ids), vocab, "stop_token_ids")))
    prompt_ids = [as_ids(p, vocab, f"prompt {i}") for i, p in enumerate(prompts)]
    for i, p in enumerate(prompt_ids):
        if not p:
            raise InputError(f"prompt {i} is empty; every prompt needs at least one token")
        check_fits(len(p), max_new_tokens, ctx, f"prompt {i}")

    budget = batch_budget(batch_size, model_device(model), AUTO_DECODE_BUDGETS)
    lengths = [len(p) for p in prompt_ids]
    out: list[list[list[Sample]]] = [[] for _ in specs]
    with inference(model), progress_bar(len(prompts), "prompts sampled", progress) as advance:
        start = 0
        while start < len(prompt_ids):
            stop = _prompt_pass(lengths, start, n, max_new_tokens, budget)
            try:
                done = _sample_pass(model, prompt_ids[start:stop], n, max_new_tokens, specs,
                                    seed, first_index + start, stops, budget, vocab)
            except _OOM:
                budget = budget.halved("sampling")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            for m, samples in enumerate(done):
                out[m] += samples
            advance(stop - start)
            start = stop
    return out


def prompt_passes(lengths: Sequence[int], n: int, max_new_tokens: int,
                  batch_size: int | str = "auto", device: str | torch.device = "cpu"
                  ) -> list[int]:
    """The prompt pass (0, 1, ...) of each of the prompts of ``lengths`` (tokens) in
    :func:`sample_variants` with these arguments on ``device``, as long as no pass runs out of
    memory; a call on the prompts of whole passes from the first of one runs the same passes
    (sharded sampling cuts there)."""
    budget = batch_budget(batch_size, device, AUTO_DECODE_BUDGETS)
    out: list[int] = []
    while len(out) < len(lengths):
        stop = _prompt_pass(lengths, len(out), n, max_new_tokens, budget)
        out += [out[-1] + 1 if out else 0] * (stop - len(out))
    return out


def _prompt_pass(lengths: Sequence[int], start: int, n: int, max_new_tokens: int,
                 budget: Budget) -> int:
    """``stop``: the prompts ``start..stop-1`` (in input order) of one prompt pass, as many as
    keep all their ``n`` samples in one decode batch of ``budget`` (``budget.rows`` sequences,
    sequences x (longest prompt + ``max_new_tokens``) <= ``budget.tokens``); at least one."""
    stop, width = start + 1, lengths[start]
    while stop < len(lengths):
        wider, rows = max(width, lengths[stop]), (stop - start + 1) * n
        if rows > budget.rows or (budget.tokens is not None
                                  and rows * (wider + max_new_tokens) > budget.tokens):
            break
        stop, width = stop + 1, wider
    return stop


def _decode_rows(budget: Budget, width: int, max_new_tokens: int, vocab: int) -> int:
    """Sequences per decode batch after a prompt pass of padded ``width``: at most
    ``budget.rows``, rows x (``width + max_new_tokens``) <= ``budget.tokens`` and rows x
    ``vocab`` <= ``budget.logits``; at least one."""
    rows = min(budget.rows, budget.logits // vocab)
    if budget.tokens is not None:
        rows = min(rows, budget.tokens // (width + max_new_tokens))
    return max(1, rows)


def _sample_pass(model: PreTrainedModel, prompts: list[list[int]], n: int, max_new_tokens: int,
                 specs: Sequence[DecodingSpec | None], seed: int, first: int, stops: list[int],
                 budget: Budget, vocab: int) -> list[list[list[Sample]]]:
    """``out[m][i][k]``: the samples of one prompt pass over ``prompts`` (prompt i draws as
    prompt ``first + i``), its ``len(prompts) * n`` sequences decoded in batches of
    :func:`_decode_rows`."""
    batch = run_prompts(model, prompts)
    uniforms = torch.from_numpy(np.concatenate(
        [1.0 - np.random.default_rng([seed, first + i]).random((n, max_new_tokens))
         for i in range(len(prompts))]))
    rows = torch.arange(len(prompts), device=batch.lengths.device).repeat_interleave(n)
    step = _decode_rows(budget, int(batch.mask.shape[1]), max_new_tokens, vocab)
    out = []
    for spec in specs:
        samples = [s for lo in range(0, len(rows), step)
                   for s in _decode(model, batch, rows[lo:lo + step], spec,
                                    uniforms[lo:lo + step], stops, max_new_tokens)]
        out.append([samples[k * n:(k + 1) * n] for k in range(len(prompts))])
    return out


def _decode(model: PreTrainedModel, batch: PromptBatch, rows: torch.Tensor,
            spec: DecodingSpec | None, uniforms: torch.Tensor, stops: list[int],
            max_new_tokens: int) -> list[Sample]:
    """One :class:`Sample` per row: row r continues prompt ``rows[r]`` of ``batch`` (its cache is
    left intact), decoding one token per step from ``spec``'s distribution at ``uniforms``
    ``(len(rows), max_new_tokens)``."""
    device = model_device(model)
    stop_tensor = torch.tensor(stops, dtype=torch.long, device=device)
    cache = preallocate(select_rows(batch.cache, rows), max_new_tokens)
    mask = batch.mask[rows]
    positions = batch.lengths[rows][:, None]
    logits = batch.next_logits[rows]
    tokens = torch.zeros((len(rows), max_new_tokens), dtype=torch.long, device=device)
    token_logp = torch.zeros((len(rows), max_new_tokens), dtype=torch.float64, device=device)
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)
    steps = 0
    for t in range(max_new_tokens):
        if spec is None:
            token = logits.argmax(dim=-1)
        else:
            token, token_logp[:, t] = _draw_step(logits, spec, uniforms[:, t])
        tokens[:, t] = token
        steps = t + 1
        if stops:
            done |= torch.isin(token, stop_tensor)
        if steps == max_new_tokens or bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        step_logits, cache = forward(model, token[:, None], mask, positions + t, cache)
        logits = step_logits[:, -1]
    ids, lps = tokens[:, :steps].cpu().tolist(), token_logp[:, :steps].cpu().numpy()
    return [_finish(ids[r], lps[r], stops) for r in range(len(rows))]


def _finish(tokens: list[int], logps: np.ndarray, stops: Sequence[int]) -> Sample:
    """The sample ``tokens`` up to and including the first stop token, with its log-prob."""
    end = next((t + 1 for t, tok in enumerate(tokens) if tok in stops), None)
    cut = len(tokens) if end is None else end
    return Sample(ids=tokens[:cut], logp=float(logps[:cut].sum()), stopped=end is not None)
