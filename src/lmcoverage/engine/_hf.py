"""Model-facing helpers shared by scoring and sampling: input checks, the prompt pass, cache rows.

Layout used everywhere: a batch of prompts is right-padded to ``(prompts, P)`` and run once with
a KV cache; continuation rows (responses, samples) pick their prompt's cache row and continue
with ``position_ids = prompt_length + t``, so padding never shifts an absolute position. The
attention mask is ``[prompt mask row | continuation mask]``: padded prompt slots are masked
out as keys. Works with transformers 5.x (``cache=`` in 5.2x, ``past_key_values=`` before).
"""

from __future__ import annotations

import copy
import functools
import inspect
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from transformers import Cache, PreTrainedModel


def vocab_size(model: PreTrainedModel) -> int:
    """Number of rows of the model's input embedding (the valid token ids are 0..size-1)."""
    return int(_embedding(model).num_embeddings)


def context_length(model: PreTrainedModel) -> int | None:
    """Maximum number of positions the model accepts, or None if its config does not say."""
    return config_context_length(model.config)


def config_context_length(config: object) -> int | None:
    """:func:`context_length` from a model config or from ``config.json`` as a dict (a
    model's limit known before it is loaded)."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
        value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def model_device(model: PreTrainedModel) -> torch.device:
    """Device of the model's input embedding (where inputs must go)."""
    return torch.device(_embedding(model).weight.device)


def _embedding(model: PreTrainedModel) -> torch.nn.Embedding:
    """The model's input embedding (typed: transformers declares a plain Module)."""
    return cast(torch.nn.Embedding, model.get_input_embeddings())


def as_ids(ids: Sequence[int], vocab: int, what: str) -> list[int]:
    """``ids`` as a list of ints (a list of ints itself, not a copy); ValueError naming ``what``
    unless every id lies in [0, vocab)."""
    try:
        out = ids if type(ids) is list and all(type(t) is int for t in ids) else [
            operator.index(tok) for tok in ids]
    except TypeError:
        raise InputError(f"{what}: token ids must be integers, got {list(ids)[:8]!r}") from None
    if out and (min(out) < 0 or max(out) >= vocab):
        bad = next(t for t in out if not 0 <= t < vocab)
        raise InputError(f"{what}: token id {bad} outside the model vocabulary [0, {vocab})")
    return out


def check_fits(prompt_len: int, continuation_len: int, ctx: int | None, what: str) -> None:
    """Raise ValueError if ``prompt_len + continuation_len`` exceeds the model's context."""
    if ctx is not None and prompt_len + continuation_len > ctx:
        raise InputError(
            f"{what}: prompt ({prompt_len} tokens) + response ({continuation_len} tokens) is "
            f"longer than the model's context of {ctx} positions"
        )


def _cache_kwarg(model: PreTrainedModel) -> str:
    """Name of the KV-cache argument of ``model.forward`` (``cache`` or ``past_key_values``)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def forward(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    cache: Cache | None = None,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Cache]:
    """One forward pass with a KV cache; returns ``(logits float32, updated cache)``.

    Shapes: ``input_ids, position_ids: (B, T)``; ``attention_mask: (B, cached + T)``;
    ``logits: (B, T, V)``, or ``(B, len(keep), V)`` when ``keep`` (positions) is given and the
    model supports ``logits_to_keep``.
    """
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "use_cache": True,
        _cache_kwarg(model): cache,
    }
    if keep is not None:
        kwargs["logits_to_keep"] = keep
    out = model(**kwargs)
    new_cache = out["cache"] if "cache" in out else out["past_key_values"]
    return out.logits.float(), new_cache


def select_rows(cache: Cache, rows: torch.Tensor) -> Cache:
    """A new cache holding rows ``rows`` (batch indices, repeats allowed) of ``cache``.

    The original is left intact: its layers are copied shallowly and each copy gets re-indexed
    tensors, so one prompt cache serves many continuation batches. Layers that keep plain
    ``keys``/``values`` tensors ``(batch, heads, positions, head_dim)`` (transformers 5.x
    dynamic layers) are re-indexed with ``index_select``, or with a zero-copy ``expand`` when
    every row is the same prompt (the cache update concatenates anyway); other layer types use
    their own ``batch_select_indices``.
    """
    new = copy.copy(cache)
    layers: list[Any] = [copy.copy(layer) for layer in cache.layers]  # layer types vary
    new.layers = layers
    n_cached = int(layers[0].keys.shape[0]) if layers else 0
    if rows.numel() == n_cached and bool(torch.equal(rows.cpu(), torch.arange(n_cached))):
        return new
    single = bool((rows == rows[0]).all())
    for layer in layers:
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not (isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor)
                and keys.dim() == 4 and keys.shape[0] == n_cached):
            layer.batch_select_indices(rows)
            continue
        index = rows.to(keys.device)
        if single:
            r = int(index[0])
            layer.keys = keys[r : r + 1].expand(len(index), -1, -1, -1)
            layer.values = values[r : r + 1].expand(len(index), -1, -1, -1)
        else:
            layer.keys = keys.index_select(0, index)
            layer.values = values.index_select(0, index)
    return new


@functools.cache
def _in_place_layer() -> type:
    """A transformers ``DynamicLayer`` that appends into preallocated buffers (no per-step
    ``torch.cat`` of the whole cache); every other method is the installed version's own."""
    from transformers.cache_utils import DynamicLayer

    class InPlaceLayer(DynamicLayer):  # type: ignore[misc]
        key_buffer: torch.Tensor
        value_buffer: torch.Tensor

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            start = self.get_seq_length()
            stop = start + key_states.shape[-2]
            if stop > self.key_buffer.shape[-2]:
                raise RuntimeError(f"preallocated cache of {self.key_buffer.shape[-2]} "
                                   f"positions is full")
            self.key_buffer[:, :, start:stop] = key_states
            self.value_buffer[:, :, start:stop] = value_states
            self.keys = self.key_buffer[:, :, :stop]
            self.values = self.value_buffer[:, :, :stop]
            return self.keys, self.values

    return InPlaceLayer


def preallocate(cache: Cache, extra: int) -> Cache:
    """Make room for ``extra`` more positions in every plain dynamic layer of ``cache`` (in
    place), so step-by-step decoding writes into buffers instead of re-concatenating the whole
    cache each step. Other layer types (sliding windows, quantized, ...) are left as they are.
    """
    from transformers.cache_utils import DynamicLayer

    layer: Any
    for layer in cache.layers:
        plain = type(layer) is DynamicLayer  # a bool, so the type of layer stays Any
        if not plain or not layer.is_initialized:
            continue
        length = layer.keys.shape[-2]
        key_buffer = layer.keys.new_empty((*layer.keys.shape[:2], length + extra,
                                           layer.keys.shape[-1]))
        value_buffer = layer.values.new_empty((*layer.values.shape[:2], length + extra,
                                               layer.values.shape[-1]))
        key_buffer[:, :, :length] = layer.keys
        value_buffer[:, :, :length] = layer.values
        layer.__class__ = _in_place_layer()
        layer.key_buffer, layer.value_buffer = key_buffer, value_buffer
        layer.keys, layer.values = key_buffer[:, :, :length], value_buffer[:, :, :length]
    return cache


@dataclass
class PromptBatch:
    """A right-padded batch of prompts after one cached forward pass.

    Attributes:
        lengths: (C,) int64 prompt lengths, on the model's device.
        mask: (C, P) attention mask of the padded prompts (1 = real token).
        cache: the model's KV cache for the C prompts.
        next_logits: (C, V) float32 logits of the first continuation token.
    """

    lengths: torch.Tensor
    mask: torch.Tensor
    cache: Cache
    next_logits: torch.Tensor


def run_prompts(model: PreTrainedModel, prompts: Sequence[Sequence[int]]) -> PromptBatch:
    """Run a batch of non-empty prompts once, right-padded, keeping the KV cache."""
    device = model_device(model)
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = torch.as_tensor(list(p), dtype=torch.long)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    positions = torch.arange(width)[None, :].expand(len(prompts), -1)
    last = lengths - 1
    keep_positions, inverse = torch.unique(last, return_inverse=True)
    supports_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
    logits, cache = forward(
        model,
        ids.to(device),
        mask.to(device),
        positions.to(device),
        keep=keep_positions.to(device) if supports_keep else None,
    )
    column = inverse if supports_keep else last
    final = logits[torch.arange(len(prompts), device=device), column.to(device)]
    return PromptBatch(
        lengths=lengths.to(device),
        mask=mask.to(device),
        cache=cache,
        next_logits=final,
    )


@contextmanager
def inference(model: PreTrainedModel) -> Iterator[None]:
    """``torch.inference_mode`` with the model in eval mode (no dropout); the model's previous
    train/eval mode is restored afterwards."""
    was_training = bool(model.training)
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


@contextmanager
def progress_bar(total: int, description: str,
                 enabled: bool) -> Iterator[Callable[..., None]]:
    """A rich progress bar over ``total`` units; yields ``advance(k)`` (a no-op when disabled)."""
    if not enabled or total == 0:
        yield lambda k=1: None
        return
    from lmcoverage.progress import standard_progress

    with standard_progress(transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k=1: bar.advance(task, k)
