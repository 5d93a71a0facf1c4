"""Sharded ``score`` and ``sample``: :func:`score_sharded` and :func:`sample_sharded` run
:func:`~lmcoverage.engine.table.score_models` and :func:`~lmcoverage.engine.rows.sample_rows`
over prompt shards through :mod:`lmcoverage.sharding` (resumable, local or Ray)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmcoverage.sharding import (
    ShardFormat,
    data_sha256,
    decoding_plan,
    model_stamp,
    plan_shards,
    run_sharded,
    shard_count,
    subset,
)

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.candidates import Candidate
    from lmcoverage.engine.table import Examples
    from lmcoverage.scoretable import ScoreTable


def score_sharded(
    candidates: Sequence[Candidate],
    examples: Examples,
    out: Path,
    executor: str = "local",
    address: str | None = None,
    shards: int | None = None,
    progress: bool = True,
    **options: Any,
) -> ScoreTable:
    """:func:`~lmcoverage.engine.table.score_models` of ``candidates`` with the examples
    sharded (rows sharing a prompt in one shard); the same ScoreTable (rows, order, columns)
    as the unsharded call.

    ``options`` go to ``score_models`` in every task (``batch_size``, ``device``, ...).
    """
    from lmcoverage.scoretable import ScoreTable

    model_dirs = [c.path for c in candidates]
    names = [c.name for c in candidates]
    options = {**options, "specs": [c.decoding for c in candidates]}
    fmt = ShardFormat(".parquet", lambda path, table: table.write_parquet(path),
                      ScoreTable.read_parquet)
    keys = _prompt_keys(examples)
    plan = plan_shards(keys, shard_count(executor, address, shards))
    fingerprint = {"command": "score", "models": [model_stamp(d) for d in model_dirs],
                   "names": list(names), "data_sha256": data_sha256(examples),
                   "options": options}
    work = functools.partial(_score_shard, list(model_dirs), list(names), examples, options)
    plan, tables = run_sharded(work, plan, out, fingerprint, fmt, executor, address, progress)
    return _merge_tables(tables, plan, len(examples))


def _score_shard(model_dirs: list[Path], names: list[str], examples: Examples,
                 options: dict[str, Any], rows: list[int]) -> ScoreTable:
    from lmcoverage.engine.table import score_models

    return score_models(model_dirs, subset(examples, rows), names=names, progress=False,
                        **options)


def _merge_tables(tables: Sequence[ScoreTable], plan: list[list[int]], n: int) -> ScoreTable:
    """One ScoreTable from shard tables (example ids 0..len(shard)-1 each) over ``n`` rows,
    with their provenance merged (:func:`~lmcoverage.scoretable.merge_provenance`)."""
    from lmcoverage.scoretable import ScoreTable, merge_provenance

    first = tables[0]
    models = first.models

    def gather(get: Callable[[ScoreTable], np.ndarray], shape: tuple[int, ...],
               dtype: DTypeLike = np.float64) -> np.ndarray:
        full = np.empty(shape, dtype=dtype)
        for rows, table in zip(plan, tables, strict=True):
            full[..., rows] = get(table)
        return full

    has = {c: first.has(c) for c in ("loglik_data", "mass_correct", "ref_correct")}
    return ScoreTable.from_matrix(
        gather(lambda t: t.matrix("loglik"), (len(models), n)), models,
        loglik_data=gather(lambda t: t.example_column("loglik_data"), (n,))
        if has["loglik_data"] else None,
        weight=gather(lambda t: t.example_column("weight"), (n,)),
        group=[str(g) for g in gather(lambda t: t.example_column("group"), (n,), object)],
        mass_correct=gather(lambda t: t.matrix("mass_correct"), (len(models), n))
        if has["mass_correct"] else None,
        ref_correct=gather(lambda t: t.example_column("ref_correct"), (n,), np.int64)
        if has["ref_correct"] else None,
        ref_samples=gather(lambda t: t.example_column("ref_samples"), (n,), np.int64)
        if has["ref_correct"] else None,
    ).with_provenance(**merge_provenance([t.provenance for t in tables]))


def _prompt_keys(examples: Examples) -> list[Hashable]:
    """Per row, what identifies its prompt (token ids, or an input row's prompt fields:
    ``prompt_ids``, ``prompt``, ``messages``)."""
    if examples.prompt_ids is not None:
        return [tuple(p) for p in examples.prompt_ids]
    assert examples.rows is not None  # a sharded run keeps its rows (data_examples(keep_rows))
    return [json.dumps([row.get(k) for k in ("prompt_ids", "prompt", "messages")],
                       sort_keys=True) for row in examples.rows]


# ---------------------------------------------------------------------- sample
def sample_sharded(
    model: Path,
    rows: list[dict[str, Any]],
    where: list[str],
    n: int,
    spec: DecodingSpec,
    out: Path,
    executor: str = "local",
    address: str | None = None,
    shards: int | None = None,
    progress: bool = True,
    *,
    prompt_lengths: Sequence[int] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """:func:`~lmcoverage.engine.rows.sample_rows` over shards of ``rows``; the same sample
    rows, in the same order, as one call.

    Shards are contiguous runs of rows cut between the engine's prompt passes (``batch_size //
    n`` prompts; under ``"auto"`` those of
    :func:`~lmcoverage.engine.sampling.prompt_passes` for ``prompt_lengths``, each row's prompt
    length in tokens, else between any rows) and each draws with its rows' global indices
    (``first_index``), so every sample and its ``logp`` are those of the unsharded run
    (without ``prompt_lengths`` under auto, the logp up to float32 rounding).
    ``options``: ``seed``, ``max_new_tokens``, ``batch_size``, ``device``, ``dtype``,
    ``trust_remote_code``.
    """
    from lmcoverage.io import read_jsonl, write_jsonl

    size, count = options.get("batch_size", "auto"), shard_count(executor, address, shards)
    if size == "auto" and prompt_lengths is not None:
        from lmcoverage.engine.sampling import prompt_passes

        plan = plan_shards(prompt_passes(prompt_lengths, n, options.get("max_new_tokens", 256),
                                         device=options.get("device", "cpu")), count)
    else:
        plan = decoding_plan(len(rows), size, n, count)
    fingerprint = {"command": "sample", "model": model_stamp(model),
                   "data_sha256": data_sha256(rows), "n": n, "spec": spec, "options": options}
    work = functools.partial(_sample_shard, model, rows, where, n, spec, options)
    fmt = ShardFormat(".jsonl", write_jsonl, read_jsonl)
    _, parts = run_sharded(work, plan, out, fingerprint, fmt, executor, address, progress)
    return [row for part in parts for row in part]



def _sample_shard(model: Path, rows: list[dict[str, Any]], where: list[str], n: int,
                  spec: DecodingSpec, options: dict[str, Any], shard: list[int]
                  ) -> list[dict[str, Any]]:
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    options = dict(options)
    trust = bool(options.pop("trust_remote_code", False))
    device = options.pop("device", "cpu")
    dtype = options.pop("dtype", "float32")
    tokenizer = load_tokenizer(model, trust_remote_code=trust)
    lm = load_causal_lm(model, trust_remote_code=trust, device=device, dtype=dtype)
    return sample_rows(lm, tokenizer, [rows[i] for i in shard], n, spec, progress=False,
                       where=[where[i] for i in shard], first_index=shard[0], **options)

