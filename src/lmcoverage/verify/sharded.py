"""Sharded ``verify`` sampling: :func:`verify_texts_sharded` runs
:func:`~lmcoverage.verify.sampling.sample_texts` over prompt shards through
:mod:`lmcoverage.sharding` (resumable, local or Ray)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcoverage.sharding import (
    ShardFormat,
    data_sha256,
    decoding_plan,
    model_stamp,
    run_sharded,
    shard_count,
)

if TYPE_CHECKING:
    from lmcoverage.engine.candidates import Candidate


def verify_texts_sharded(
    candidates: Sequence[Candidate],
    rows: list[dict[str, Any]],
    samples: int,
    out: Path,
    executor: str = "local",
    address: str | None = None,
    shards: int | None = None,
    progress: bool = True,
    **options: Any,
) -> list[list[list[str]]]:
    """``texts[c][i][j]``: :func:`lmcoverage.verify.sampling.sample_texts` of every candidate
    over shards of ``rows``, the same texts as unsharded calls.

    One task per shard samples all candidates (each model loaded once per task); shards are
    cut at the engine's decoding batches and draw with global row indices, as in
    :func:`~lmcoverage.engine.sharded.sample_sharded`. ``options``: ``max_new_tokens``,
    ``seed``, ``device``, ``source``, ``dtype``, ``batch_size``.
    """
    from lmcoverage.io import atomic_write_json

    plan = decoding_plan(len(rows), options.get("batch_size", "auto"), samples,
                         shard_count(executor, address, shards))
    fingerprint = {"command": "verify", "candidates": [(model_stamp(c.path), c.decoding)
                                                       for c in candidates],
                   "data_sha256": data_sha256(rows), "samples": samples, "options": options}
    work = functools.partial(_verify_shard, list(candidates), rows, samples, options)
    fmt = ShardFormat(".json", atomic_write_json, lambda path: json.loads(path.read_text()))
    _, parts = run_sharded(work, plan, out, fingerprint, fmt, executor, address, progress)
    return [[texts for part in parts for texts in part[c]] for c in range(len(candidates))]


def _verify_shard(candidates: list[Candidate], rows: list[dict[str, Any]], samples: int,
                  options: dict[str, Any], shard: list[int]) -> list[list[list[str]]]:
    from lmcoverage.verify.sampling import sample_texts

    mine = [rows[i] for i in shard]
    return [sample_texts(c, mine, samples, progress=False, first_index=shard[0], **options)
            for c in candidates]
