"""Teacher-forced sequence log-likelihoods, prompt computed once (the paper's Sec. 2, Eq. 1).

``log pi_hat(y|x) = sum_h log pi_hat(y_h | x, y_<h)``: the prompt is masked (not scored), token
log-probabilities come from a float32 log-softmax and are summed in float64. Each prompt's keys
and values are computed once and shared by all of its responses; continuation rows continue at
``position_ids = len(prompt) + t`` whatever the padding, so a response's score does not depend
on the batch size or on which other responses share its batch (up to float32 kernel rounding,
far below 1e-4 nats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from lmcoverage.decoding.spec import DecodingSpec, token_logprobs
from lmcoverage.engine._hf import (
    as_ids,
    check_fits,
    context_length,
    forward,
    inference,
    model_device,
    progress_bar,
    run_prompts,
    select_rows,
    vocab_size,
)
from lmcoverage.errors import EnvError, InputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcoverage.engine._hf import PromptBatch

T = TypeVar("T")
#: Rows per pass of the callers that give a number (``HFScorer``, the Trainer callback).
DEFAULT_BATCH_SIZE = 64
#: Most logits (rows x positions x vocabulary) one continuation pass may produce: batches of long
#: responses under large vocabularies get fewer rows (2^27 float32 = 512 MiB).
LOGITS_BUDGET = 2**27
#: ``batch_size="auto"`` per device type: (padded tokens per forward pass, logits per pass).
#: On CPU a pass holds at most 2,048 tokens and 2^25 float32 logits (128 MiB; the log-softmax
#: makes a second copy), so memory stays bounded whatever the input size.
AUTO_BUDGETS = {"cpu": (2048, 2**25), "cuda": (32768, 2**28)}
#: Rows (sequences) per pass under ``batch_size="auto"``.
AUTO_MAX_ROWS = 512
_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass(frozen=True)
class Budget:
    """What one forward pass may hold: ``rows`` sequences (and prompts), ``tokens`` padded
    tokens (rows x width; None: no limit) and ``logits`` (rows x width x vocabulary)."""

    rows: int
    tokens: int | None = None
    logits: int = LOGITS_BUDGET

    def halved(self, doing: str = "scoring") -> Budget:
        """Half of every limit (after an out-of-memory error); EnvError when already 1 row
        (its message says what was being done: ``doing`` a single sequence)."""
        if self.rows == 1 and (self.tokens or 0) <= 1:
            raise EnvError(f"out of device memory {doing} a single sequence; use a smaller "
                           "model, --dtype bfloat16, or --device cpu")
        return Budget(max(1, self.rows // 2),
                      None if self.tokens is None else max(1, self.tokens // 2),
                      max(1, self.logits // 2))


def batch_budget(batch_size: int | str, device: str | torch.device = "cpu",
                 auto_budgets: dict[str, tuple[int, int]] = AUTO_BUDGETS) -> Budget:
    """The :class:`Budget` of ``batch_size``: an int is a number of rows (the logits cap
    :data:`LOGITS_BUDGET` still applies); ``"auto"`` is the (tokens, logits) budget of
    ``auto_budgets`` (scoring's :data:`AUTO_BUDGETS` by default) for ``device``'s type
    (rows up to :data:`AUTO_MAX_ROWS`)."""
    _check_batch_size(batch_size)
    if batch_size == "auto":
        tokens, logits = auto_budgets.get(torch.device(device).type, auto_budgets["cpu"])
        return Budget(AUTO_MAX_ROWS, tokens, logits)
    assert isinstance(batch_size, int)
    return Budget(batch_size)


def _check_batch_size(batch_size: int | str, auto: bool = True) -> None:
    """InputError unless ``batch_size`` is a positive int (or ``"auto"`` when ``auto``)."""
    if batch_size == "auto" and auto:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer{' or auto' if auto else ''}, "
                         f"got {batch_size!r}")


def _fits(rows: int, width: int, budget: Budget) -> bool:
    return rows <= budget.rows and (budget.tokens is None or rows * width <= budget.tokens)


def _next_chunk(pending: Sequence[int], start: int, counts: Sequence[int],
                lengths: Sequence[int], budget: Budget) -> list[int]:
    """The prompts ``pending[start:stop]`` (sorted by length, ascending) of one prompt pass:
    at most ``budget.rows`` prompts, about ``budget.rows`` responses and ``budget.tokens``
    padded prompt tokens; at least one prompt."""
    stop, rows = start + 1, counts[pending[start]]
    while stop < len(pending):
        i = pending[stop]
        if rows + counts[i] > budget.rows or not _fits(stop - start + 1, lengths[i], budget):
            break
        rows += counts[i]
        stop += 1
    return list(pending[start:stop])


def _row_batches(items: list[T], lengths: Sequence[int], budget: Budget,
                 vocab: int) -> list[list[T]]:
    """Consecutive runs of ``items`` (sorted by ``lengths``, ascending) within ``budget``: rows,
    padded tokens and (rows x longest length x ``vocab``) logits; at least one item each."""
    out, start = [], 0
    while start < len(items):
        stop = start + 1
        while (stop < len(items) and _fits(stop - start + 1, lengths[stop], budget)
               and (stop - start + 1) * lengths[stop] * vocab <= budget.logits):
            stop += 1
        out.append(items[start:stop])
        start = stop
    return out


def _score_rows(
    model: PreTrainedModel,
    prompt_batch: PromptBatch,
    rows: torch.Tensor,
    responses: list[list[int]],
    ctx: int | None,
    specs: Sequence[DecodingSpec],
) -> np.ndarray:
    """Log-likelihoods ``(B, M)`` (float64) of ``responses`` under each of the M ``specs``, row r
    continuing prompt ``rows[r]``; one forward pass serves every spec.

    ``rows: (B,)`` indices into the prompt batch; responses are non-empty.
    """
    device = model_device(model)
    lengths = torch.tensor([len(r) for r in responses])
    first = torch.tensor([r[0] for r in responses], device=device)
    first_logits = prompt_batch.next_logits[rows]
    scores = torch.stack([token_logprobs(first_logits, first, spec) for spec in specs],
                         dim=1).double()
    width = int(lengths.max()) - 1
    if width == 0:
        return scores.cpu().numpy()
    inputs = torch.zeros((len(responses), width), dtype=torch.long)
    targets = torch.zeros((len(responses), width), dtype=torch.long)
    for b, r in enumerate(responses):
        inputs[b, : len(r) - 1] = torch.as_tensor(r[:-1])
        targets[b, : len(r) - 1] = torch.as_tensor(r[1:])
    real = torch.arange(width)[None, :] < (lengths[:, None] - 1)
    positions = prompt_batch.lengths[rows].cpu()[:, None] + torch.arange(width)[None, :]
    if ctx is not None:
        positions = positions.clamp(max=ctx - 1)  # only padded slots can reach past the context
    mask = torch.cat([prompt_batch.mask[rows], real.long().to(device)], dim=1)
    logits, _ = forward(
        model,
        inputs.to(device),
        mask,
        positions.to(device),
        cache=select_rows(prompt_batch.cache, rows),
    )
    real, targets = real.to(device), targets.to(device)
    rest = torch.stack([
        torch.where(real, token_logprobs(logits, targets, spec), 0.0).double().sum(dim=1)
        for spec in specs
    ], dim=1)
    return (scores + rest).cpu().numpy()


def score_responses(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[Sequence[int]]],
    batch_size: int | str = "auto",
    progress: bool = True,
) -> list[np.ndarray]:
    """Sequence log-likelihoods ``log pi_hat(y|x)`` of many responses per prompt.

    Args:
        model: any Hugging Face causal LM (``AutoModelForCausalLM``), on any device; it runs
            in eval mode (its train/eval mode is restored afterwards).
        prompts: P prompts, each a non-empty list of token ids.
        responses: for each prompt, its responses (lists of token ids; empty scores 0).
        batch_size: continuation rows (and at most this many prompts) per forward pass, or
            ``"auto"`` (the default): a token budget per pass (:data:`AUTO_BUDGETS`) that halves
            and retries when the device runs out of memory.
        progress: show a rich progress bar over prompts.

    Returns:
        One float64 array per prompt, ``(len(responses[i]),)``, values <= 0.

    Raises:
        ValueError: mismatched lengths, an empty prompt, token ids outside the vocabulary,
            prompt + response longer than the model's context, or a bad ``batch_size``.
    """
    scores = score_variants(model, prompts, responses, [DecodingSpec()], batch_size, progress)
    return [s[:, 0] for s in scores]


def score_variants(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[Sequence[int]]],
    specs: Sequence[DecodingSpec],
    batch_size: int | str = "auto",
    progress: bool = True,
    first_index: int = 0,
) -> list[np.ndarray]:
    """``log pi_spec(y|x)`` of many responses per prompt under M decoding variants of one model.

    Each spec's pi is the exact distribution its decoding samples from
    (:func:`~lmcoverage.decoding.spec.decoding_logprobs`: temperature-scaled, truncated,
    renormalised per token), so a response with a token outside a truncated set scores -inf.
    All M variants come from one forward pass per batch: extra variants cost only their
    per-token truncation, not another pass of the model. Entries with the same prompt are
    grouped, so each distinct prompt runs once, and a response repeated under one prompt is
    scored once.

    Args:
        model, prompts, responses, batch_size, progress: as for :func:`score_responses`.
        specs: M >= 1 decoding settings.
        first_index: ``prompts[0]``'s index in the whole input when they are a chunk of it
            (error messages name prompts by that index).

    Returns:
        One float64 array per prompt, ``(len(responses[i]), M)``, values <= 0 (or -inf).
    """
    _check_batch_size(batch_size)
    specs = list(specs)
    if not specs:
        raise InputError("specs: give at least one DecodingSpec")
    if len(prompts) != len(responses):
        raise InputError(
            f"prompts and responses must have the same length, got {len(prompts)} and "
            f"{len(responses)}"
        )
    vocab, ctx = vocab_size(model), context_length(model)
    prompt_ids = []
    response_ids = []
    for i, (prompt, group) in enumerate(zip(prompts, responses, strict=True), first_index):
        p = as_ids(prompt, vocab, f"prompt {i}")
        if not p:
            raise InputError(f"prompt {i} is empty; every prompt needs at least one token")
        rs = [as_ids(r, vocab, f"prompt {i} response {j}") for j, r in enumerate(group)]
        for j, r in enumerate(rs):
            check_fits(len(p), len(r), ctx, f"prompt {i} response {j}")
        prompt_ids.append(p)
        response_ids.append(rs)

    # Rows that share a prompt are grouped (the prompt runs once) and repeated responses of a
    # prompt are scored once; results go back to every (prompt, response) place.
    # The lists are the callers' own (no copies) and the tuple keys are dropped before the
    # model runs: memory for ids is held once.
    prompt_index: dict[tuple[int, ...], int] = {}
    unique_prompts: list[list[int]] = []
    unique_keys: list[dict[tuple[int, ...], int]] = []
    unique_responses: list[list[list[int]]] = []
    places = []
    for p, rs in zip(prompt_ids, response_ids, strict=True):
        g = prompt_index.setdefault(tuple(p), len(unique_prompts))
        if g == len(unique_prompts):
            unique_prompts.append(p)
            unique_keys.append({})
            unique_responses.append([])
        where = []
        for r in rs:
            j = unique_keys[g].setdefault(tuple(r), len(unique_responses[g]))
            if j == len(unique_responses[g]):
                unique_responses[g].append(r)
            where.append((g, j))
        places.append(where)
    del prompt_index, unique_keys, prompt_ids, response_ids
    scores = _score_unique(model, unique_prompts, unique_responses, specs, batch_size,
                           progress, vocab, ctx)
    return [np.array([scores[g][j] for g, j in where], dtype=np.float64).reshape(-1, len(specs))
            for where in places]


def _score_unique(model: PreTrainedModel, prompt_ids: list[list[int]],
                  response_ids: list[list[list[int]]], specs: list[DecodingSpec],
                  batch_size: int | str, progress: bool, vocab: int,
                  ctx: int | None) -> list[np.ndarray]:
    """The loop of :func:`score_variants` over distinct prompts (checked ids).

    Prompts by length and, within a prompt pass, responses by length: less padding. Results go
    back to their original places, and no score depends on its batch-mates, so when a pass
    runs out of device memory the budget halves and the pass is redone (scores unchanged).
    """
    out = [np.zeros((len(rs), len(specs)), dtype=np.float64) for rs in response_ids]
    counts = [sum(1 for r in rs if r) for rs in response_ids]  # empty responses score 0
    budget = batch_budget(batch_size, model_device(model))
    lengths = [len(p) for p in prompt_ids]
    pending = sorted((i for i in range(len(prompt_ids)) if counts[i]), key=lambda i: lengths[i])
    with inference(model), progress_bar(len(pending), "prompts scored", progress) as advance:
        start = 0
        while start < len(pending):
            chunk = _next_chunk(pending, start, counts, lengths, budget)
            try:
                done = _score_chunk(model, chunk, prompt_ids, response_ids, specs, budget,
                                    vocab, ctx)
            except _OOM:
                budget = budget.halved()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            for (i, j), value in done:
                out[i][j] = value
            start += len(chunk)
            advance(len(chunk))
    return out


def _score_chunk(model: PreTrainedModel, chunk: list[int], prompt_ids: list[list[int]],
                 response_ids: list[list[list[int]]], specs: list[DecodingSpec], budget: Budget,
                 vocab: int, ctx: int | None) -> list[tuple[tuple[int, int], np.ndarray]]:
    """``((prompt, response), scores (M,))`` of every non-empty response of the prompts in
    ``chunk``: one prompt pass, then continuation passes within ``budget``."""
    batch = run_prompts(model, [prompt_ids[i] for i in chunk])
    items = sorted(
        ((local, i, j) for local, i in enumerate(chunk)
         for j, r in enumerate(response_ids[i]) if r),
        key=lambda item: len(response_ids[item[1]][item[2]]),
    )
    done = []
    for part in _row_batches(items, [len(response_ids[i][j]) for _, i, j in items], budget,
                             vocab):
        rows = torch.tensor([local for local, _, _ in part], device=batch.lengths.device)
        values = _score_rows(model, batch, rows, [response_ids[i][j] for _, i, j in part],
                             ctx, specs)
        done += [((i, j), value) for (_, i, j), value in zip(part, values, strict=True)]
    return done


def mass_correct(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    correct_sets: Sequence[Sequence[Sequence[int]]],
    batch_size: int | str = "auto",
    progress: bool = True,
) -> np.ndarray:
    """The model's probability of each prompt's correct set, ``pi_hat(G_x | x)``.

    ``G_x`` is an enumerable set of responses (pi_D's support, or the valid paths), so
    ``Pass@N = E_x[1 - (1 - pi_hat(G_x|x))^N]`` is exact without sampling (the Pass@N of Sec. 2).
    Duplicates in a set are counted once; an empty set has mass 0. The sum is a float64
    log-sum-exp of the scores, clipped to 1 against float32 rounding.

    Returns:
        (P,) float64 probabilities in [0, 1].
    """
    unique = [list(dict.fromkeys(tuple(r) for r in group)) for group in correct_sets]
    scores = score_responses(model, prompts, unique, batch_size=batch_size, progress=progress)
    return np.array([mass_from_scores(s) for s in scores], dtype=np.float64)


def held_out_then_correct(
    responses: Sequence[Sequence[int]], correct: Sequence[Sequence[Sequence[int]]] | None
) -> list[list[Sequence[int]]]:
    """Per prompt, the responses to score in one engine call: the held-out response first, then
    the distinct correct responses (the held-out one listed once even when it is correct)."""
    if correct is None:  # the held-out response alone (no copy)
        return [[r] for r in responses]
    return [
        list(dict.fromkeys([tuple(r), *map(tuple, correct[i])]))
        for i, r in enumerate(responses)
    ]


def loglik_and_mass(
    scores: Sequence[np.ndarray],
    responses: Sequence[Sequence[int]],
    correct: Sequence[Sequence[Sequence[int]]] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split the scores of :func:`held_out_then_correct` lists into ``(loglik, mass_correct)``.

    ``loglik``: (prompts,) log pi_hat of the held-out responses; ``mass_correct``: (prompts,)
    pi_hat of each prompt's correct set (float64 log-sum-exp), or None without correct sets.
    """
    loglik = np.array([s[0] for s in scores], dtype=np.float64)
    if correct is None:
        return loglik, None
    mass = np.array([
        mass_from_scores(s if tuple(r) in set(map(tuple, c)) else s[1:])
        for s, r, c in zip(scores, responses, correct, strict=True)
    ])
    return loglik, mass


def mass_from_scores(scores: np.ndarray) -> float:
    """``min(1, sum(exp(scores)))`` as a float64 log-sum-exp; 0 for no scores.

    ``scores``: (responses,) log-likelihoods of distinct responses of one prompt.
    """
    if scores.size == 0:
        return 0.0
    from scipy.special import logsumexp

    return float(min(1.0, np.exp(logsumexp(scores))))
