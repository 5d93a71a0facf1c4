"""Input rows of ``sample``, ``score`` and ``verify``: prompts and responses as token ids.

A row (a JSON object of a ``.jsonl`` file, or a row of a ``.parquet`` file with the same
columns) gives its prompt as ``prompt_ids`` (used as they are), else ``messages`` (a chat,
rendered with the tokenizer's chat template and ``add_generation_prompt=True``), else ``prompt``
text (tokenized with the tokenizer's special tokens, e.g. BOS). A response is ``response_ids``
(used as they are) or ``response`` text.

**EOS convention.** A response is a complete generation, scored as "produce exactly this and
stop". ``sample`` writes ``response_ids`` ending with the stop token when the sample stopped
(``stopped: true``) and without one when it reached ``max_new_tokens`` (``stopped: false``);
its ``response`` text leaves the stop token out. A ``response`` text without ids is tokenized
without special tokens and the tokenizer's EOS token is appended (unless the text's last token
already is a stop token); a tokenizer without an EOS token (the tasks' word-level tokenizers,
fixed-length responses) appends nothing. So a held-out text and an identical sample get the
same ids, and both terms of the offset tournament (Eq. 32) score the same events.

The encoders live in :mod:`lmcoverage.models.encoding` (re-exported here) so that
``lmcoverage train --data`` encodes rows exactly as ``score`` and ``sample`` do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.errors import InputError
from lmcoverage.models.encoding import (  # re-exported: the engine's row encoders
    complete,  # noqa: F401
    encode_prompt,
    encode_response,  # noqa: F401
    encode_text,  # noqa: F401
    end_token_id,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: End-of-turn tokens of common chat formats; a sample also stops at these when the tokenizer
#: has them (ChatML, Llama 3, Gemma, Phi-3).
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
#: Rows per Parquet record batch that :func:`iter_rows` decodes at a time.
PARQUET_BATCH_ROWS = 4096


def read_rows(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of a ``.jsonl`` or ``.parquet`` file, a Hugging Face
    ``datasets`` folder (``save_to_disk``) or an ``.arrow`` file
    (:mod:`lmcoverage.engine.arrow_rows`); ``where`` is ``FILE:LINE`` (JSONL) or ``FILE:row N``
    (1-based), for error messages. :func:`iter_rows` as a list.

    Raises:
        InputError: a missing, empty or malformed file.
    """
    return list(iter_rows(path))


def iter_rows(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The rows of :func:`read_rows`, read as they go: a JSONL line or a Parquet record batch
    at a time (Arrow inputs are read whole), so a pass over a large file holds few rows.

    Raises:
        InputError: a missing, empty or malformed file.
    """
    from lmcoverage.engine.arrow_rows import is_arrow_input, read_arrow_rows
    from lmcoverage.io import check_input_file, iter_jsonl_numbered

    p = Path(path)
    if is_arrow_input(p):
        yield from read_arrow_rows(p)
        return
    if p.suffix.lower() != ".parquet":
        yield from ((f"{p}:{line}", row) for line, row in iter_jsonl_numbered(p))
        return
    check_input_file(p)
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = 0
    try:
        batches = pq.ParquetFile(p).iter_batches(batch_size=PARQUET_BATCH_ROWS)
        for batch in batches:
            for row in batch.to_pylist():
                count += 1
                _no_nan(row, f"{p}:row {count}")
                yield f"{p}:row {count}", {k: v for k, v in row.items() if v is not None}
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{p}: not a readable Parquet file ({exc})") from None
    if not count:
        raise InputError(f"{p}: no rows")


def _no_nan(row: dict[str, Any], where: str) -> None:
    """InputError for a NaN field (it would come out of ``sample`` as the string "nan")."""
    bad = next((k for k, v in row.items() if isinstance(v, float) and v != v), None)
    if bad is not None:
        raise InputError(f"{where}: field {bad!r} is nan; write null or a number")


def stop_token_ids(tokenizer: PreTrainedTokenizerBase,
                   model: PreTrainedModel | None = None) -> list[int]:
    """Tokens that end a sample: the tokenizer's EOS, the model's generation-config EOS ids and
    the chat end-of-turn tokens (:data:`CHAT_END_TOKENS`) the tokenizer knows."""
    ids: set[int] = set()
    eos = end_token_id(tokenizer)
    if eos is not None:
        ids.add(eos)
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    for tok in extra if isinstance(extra, list | tuple) else [extra]:
        if isinstance(tok, int):
            ids.add(tok)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in CHAT_END_TOKENS if t in vocab)
    return sorted(ids)


def sample_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    n: int,
    spec: DecodingSpec = DecodingSpec(),
    seed: int = 0,
    max_new_tokens: int = 256,
    batch_size: int | str = "auto",
    progress: bool = True,
    where: Sequence[str] | None = None,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    """``n`` samples per input row from ``model`` decoded with ``spec`` (KV-cached, the prompt
    computed once per row; same seed, same samples).

    Args:
        model: any Hugging Face causal LM; tokenizer: its tokenizer.
        rows: input rows (see the module docstring for the prompt fields).
        n, seed, max_new_tokens, batch_size, progress: as for
            :func:`lmcoverage.engine.sampling.sample_with_logp`.
        where: per row, its place for error messages (default ``row N``).
        first_index: ``rows[0]``'s index in the whole input when ``rows`` is a shard of it
            (samples are the same as when the whole input is sampled in one call).

    Returns:
        ``len(rows) * n`` dicts, row by row: the input row's fields plus ``response`` (text,
        without the stop token), ``prompt_ids``, ``response_ids`` (ending with the stop token
        iff ``stopped``), ``sample_index`` (0..n-1), ``logp`` (float64 log-prob of
        ``response_ids`` under the decoding distribution) and ``stopped``.
    """
    return sample_rows_variants(model, tokenizer, rows, n, [spec], seed=seed,
                                max_new_tokens=max_new_tokens, batch_size=batch_size,
                                progress=progress, where=where, first_index=first_index)[0]


def sample_rows_variants(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    n: int,
    specs: Sequence[DecodingSpec],
    seed: int = 0,
    max_new_tokens: int = 256,
    batch_size: int | str = "auto",
    progress: bool = True,
    where: Sequence[str] | None = None,
    first_index: int = 0,
) -> list[list[dict[str, Any]]]:
    """:func:`sample_rows` under each of ``specs``, every prompt run once for all of them
    (:func:`lmcoverage.engine.sampling.sample_variants`): ``out[m]`` is
    ``sample_rows(..., specs[m], ...)``."""
    from lmcoverage.engine.sampling import sample_variants

    places = list(where) if where is not None else [f"row {i + 1}" for i in range(len(rows))]
    prompts = [encode_prompt(tokenizer, row, w) for row, w in zip(rows, places, strict=True)]
    stops = stop_token_ids(tokenizer, model)
    drawn = sample_variants(model, prompts, n, max_new_tokens, specs, seed=seed,
                            stop_token_ids=stops, batch_size=batch_size, progress=progress,
                            first_index=first_index)
    out: list[list[dict[str, Any]]] = []
    for per_spec in drawn:
        out.append([])
        for row, prompt, samples in zip(rows, prompts, per_spec, strict=True):
            for k, s in enumerate(samples):
                text_ids = s.ids[:-1] if s.stopped else s.ids
                out[-1].append({**row, "response": tokenizer.decode(text_ids),
                                "prompt_ids": prompt, "response_ids": s.ids,
                                "sample_index": k, "logp": s.logp, "stopped": s.stopped})
    return out
