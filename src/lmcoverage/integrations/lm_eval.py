"""Score tables from lm-evaluation-harness ``--log_samples`` files (no re-scoring).

lm-eval writes, per task, ``OUTPUT/<model>/samples_<task>_<date>.jsonl``: one line per
document with its ``doc_id``, the requests' ``arguments`` and the model's ``resps``. For a
``loglikelihood`` request (``multiple_choice`` and ``loglikelihood`` tasks) the arguments are
``(context, continuation)`` and the response is ``(log-likelihood, is_greedy)``: the model's
``log pi_hat(continuation | context)`` summed over the continuation's tokens.

:func:`read_samples` turns one file into :class:`Pairs`, one per (task, doc_id, request
index); :func:`import_scores` joins the candidates' files with the reference's (same keys,
same context and continuation) into a :class:`~lmcoverage.scoretable.ScoreTable` whose
``loglik`` is the candidate's log-likelihood and ``loglik_data`` the reference's (the
log-ratio of Eq. 1 is their difference), ``group`` the task name.

**EOS.** lm-eval scores the continuation without an end-of-sequence token, so these are
log-probabilities of the prefix event "the response starts with y", not of "exactly y and
stop" as ``lmcoverage score`` scores a text response (:mod:`lmcoverage.engine.rows`). The table
records ``eos: false`` in its provenance.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable

#: (task, doc_id, request index): one loglikelihood request of one document.
Key = tuple[str, int, int]

_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d.\-]+\.jsonl$")


@dataclass(frozen=True)
class Pairs:
    """The loglikelihood requests of one samples file.

    ``model``: the model's name; ``source``: the file; ``rows``: per key, ``(context,
    continuation, log-likelihood)``; ``dtype``: the model dtype lm-eval reports (or None).
    """

    model: str
    source: Path
    rows: dict[Key, tuple[str, str, float]]
    dtype: str | None = None


def task_name(path: Path) -> str:
    """The task of ``samples_<task>_<date>.jsonl`` (another file name: its stem)."""
    match = _SAMPLES_NAME.match(path.name)
    return match["task"] if match else path.stem


def _results_config(path: Path) -> dict[str, Any] | None:
    """The newest ``results_*.json`` lm-eval wrote next to ``path`` (None if there is none)."""
    for results in sorted(path.parent.glob("results_*.json"), reverse=True):
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def model_name(path: Path, results: dict[str, Any] | None) -> str:
    """The model's name: the last part of the results file's ``model_name`` (the
    ``pretrained=`` argument: a directory or a hub id), else of the folder lm-eval named after
    it (``/`` written as ``__``), so it matches ``lmcoverage score``'s name for that
    directory."""
    name = None
    if results is not None:
        config = results.get("config")
        args = config.get("model_args") if isinstance(config, dict) else None
        name = results.get("model_name") or (args.get("pretrained")
                                             if isinstance(args, dict) else None)
    if isinstance(name, str) and name.strip("/"):
        return name.rstrip("/").rsplit("/", 1)[-1]
    return path.parent.name.rsplit("__", 1)[-1] or path.stem


def _ordered(args: dict[str, Any]) -> list[Any]:
    """The values of lm-eval's ``{"<name>_0": .., "<name>_1": ..}`` objects in index order."""
    try:
        return [args[k] for k in sorted(args, key=lambda k: int(str(k).rsplit("_", 1)[-1]))]
    except ValueError:
        return list(args.values())


def _pair(value: object) -> tuple[Any, ...] | None:
    """The arguments of one request as a tuple (lm-eval 0.4 writes ``{"arg_0": .., "arg_1":
    ..}``; older files a list)."""
    if isinstance(value, dict):
        return tuple(_ordered(value))
    if isinstance(value, list | tuple):
        return tuple(value)
    return None


def _requests(row: dict[str, Any], where: str) -> list[tuple[str, str]]:
    args = row["arguments"]
    if isinstance(args, dict):
        items = _ordered(args)
    elif isinstance(args, list):
        items = args
    else:
        raise InputError(f"{where}: 'arguments' must be an object or a list of requests")
    out = []
    for i, item in enumerate(items):
        pair = _pair(item)
        if pair is None or not pair:
            raise InputError(f"{where}: request {i} has no arguments")
        if len(pair) == 1:
            raise InputError(f"{where}: a loglikelihood_rolling request (one argument); "
                             "import reads loglikelihood requests (context, continuation) "
                             "of multiple_choice or loglikelihood tasks")
        if len(pair) != 2 or not isinstance(pair[0], str) or not isinstance(pair[1], str):
            kind = "generate_until" if len(pair) == 2 and isinstance(pair[1], dict) else "another"
            raise InputError(f"{where}: a {kind} request, not loglikelihood (context, "
                             "continuation); import reads multiple_choice or loglikelihood "
                             "tasks")
        out.append((pair[0], pair[1]))
    return out


def _logliks(row: dict[str, Any], n: int, where: str) -> list[float]:
    resps = row.get("filtered_resps", row.get("resps"))
    if not isinstance(resps, list) or len(resps) != n:
        raise InputError(f"{where}: needs {n} responses in 'filtered_resps' (or 'resps') for "
                         f"its {n} requests")
    out = []
    for i, resp in enumerate(resps):
        value = resp
        while isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
            value = value[0]  # resps: [[ (ll, greedy) ]]; filtered_resps: [ (ll, greedy) ]
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise InputError(f"{where}: response {i} is not (log-likelihood, is_greedy); "
                             "import reads loglikelihood requests")
        try:
            ll = float(value[0])
        except (TypeError, ValueError):
            raise InputError(f"{where}: response {i}: log-likelihood {value[0]!r} is not a "
                             "number") from None
        if math.isnan(ll) or ll > 1e-9:
            raise InputError(f"{where}: response {i}: log-likelihood {ll} must be <= 0")
        out.append(min(ll, 0.0))
    return out


def read_samples(path: str | os.PathLike[str]) -> Pairs:
    """The loglikelihood requests of one lm-eval samples file.

    Raises:
        InputError: a missing or empty file, a row without ``doc_id``/``arguments``/``resps``,
            a request of another type (``generate_until``, ``loglikelihood_rolling``), a
            document listed twice.
    """
    from lmcoverage.io import read_jsonl_numbered

    p = Path(path)
    task = task_name(p)
    results = _results_config(p)
    rows: dict[Key, tuple[str, str, float]] = {}
    for line, row in read_jsonl_numbered(p):
        where = f"{p}:{line}"
        missing = [k for k in ("doc_id", "arguments") if k not in row]
        if "resps" not in row and "filtered_resps" not in row:
            missing.append("resps")
        if missing:
            raise InputError(f"{where}: missing {', '.join(repr(k) for k in missing)} "
                             "(not an lm-eval --log_samples row)")
        doc = row["doc_id"]
        if not isinstance(doc, int) or isinstance(doc, bool):
            raise InputError(f"{where}: doc_id must be an integer, got {doc!r}")
        requests = _requests(row, where)
        for i, ((context, continuation), ll) in enumerate(
                zip(requests, _logliks(row, len(requests), where), strict=True)):
            if (task, doc, i) in rows:
                raise InputError(f"{where}: doc_id {doc} appears twice")
            rows[(task, doc, i)] = (context, continuation, ll)
    config = results.get("config") if results else None
    dtype = config.get("model_dtype") if isinstance(config, dict) else None
    return Pairs(model=model_name(p, results), source=p, rows=rows,
                 dtype=str(dtype).removeprefix("torch.") if dtype else None)


def merge(parts: Sequence[Pairs]) -> list[Pairs]:
    """One :class:`Pairs` per model name (a model's files of several tasks united), in order
    of first appearance.

    Raises:
        InputError: two files of one model holding the same task's documents.
    """
    merged: dict[str, Pairs] = {}
    for part in parts:
        seen = merged.get(part.model)
        if seen is None:
            merged[part.model] = part
            continue
        clash = seen.rows.keys() & part.rows.keys()
        if clash:
            task = sorted(clash)[0][0]
            raise InputError(f"{part.source}: model {part.model!r} already has task {task!r} "
                             f"from {seen.source}")
        merged[part.model] = Pairs(part.model, seen.source, {**seen.rows, **part.rows},
                                   seen.dtype or part.dtype)
    return list(merged.values())


def _describe(keys: set[Key], limit: int = 3) -> str:
    shown = ", ".join(f"{task} doc {doc} request {i}" for task, doc, i in sorted(keys)[:limit])
    more = len(keys) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def import_scores(candidates: Sequence[str | os.PathLike[str]],
                  reference: Sequence[str | os.PathLike[str]]) -> ScoreTable:
    """A ScoreTable of the candidates' lm-eval log-likelihoods against the reference's.

    Rows: one example per (task, doc_id, request index) in sorted order (``example_id`` 0..n-1,
    ``group`` the task); ``loglik``: the candidate's log-likelihood of the continuation given
    the context, ``loglik_data``: the reference's. Provenance: ``source: "lm-eval"``, ``eos:
    false``, ``reference`` (its name and files), ``candidates`` ({name: file}), ``dtype`` (one
    name, or {name: dtype} when the candidates differ).

    Raises:
        InputError: see :func:`read_samples`; a candidate and the reference covering different
            requests (the missing ones are named) or giving a request different texts.
    """
    if not candidates:
        raise InputError("give at least one candidate samples file")
    if not reference:
        raise InputError("--reference: give the reference model's samples file(s)")
    refs = merge([read_samples(p) for p in reference])
    if len(refs) != 1:
        raise InputError(f"--reference: files of {len(refs)} models "
                         f"({', '.join(r.model for r in refs)}); give one model's")
    ref = refs[0]
    cands = merge([read_samples(p) for p in candidates])
    keys = sorted(ref.rows)
    for cand in cands:
        extra = cand.rows.keys() - ref.rows.keys()
        lacking = ref.rows.keys() - cand.rows.keys()
        if extra or lacking:
            parts = []
            if lacking:
                parts.append(f"lacks {len(lacking)} of the reference's requests "
                             f"({_describe(lacking)})")
            if extra:
                parts.append(f"has {len(extra)} the reference {ref.source} lacks "
                             f"({_describe(extra)})")
            raise InputError(f"{cand.source}: candidate {cand.model!r} covers other documents "
                             f"than the reference: {'; '.join(parts)}")
        for key in keys:
            if cand.rows[key][:2] != ref.rows[key][:2]:
                raise InputError(f"{cand.source}: {_describe({key})}: context or continuation "
                                 f"differs from the reference {ref.source}")
    n = len(keys)
    data = np.array([ref.rows[k][2] for k in keys], dtype=np.float64)
    table = ScoreTable.from_columns(
        model=[c.model for c in cands for _ in keys],
        example_id=np.tile(np.arange(n, dtype=np.int64), len(cands)),
        loglik=np.array([c.rows[k][2] for c in cands for k in keys], dtype=np.float64),
        loglik_data=np.tile(data, len(cands)),
        group=[k[0] for _ in cands for k in keys],
    )
    # One name when the candidates agree, else {model: dtype} (as ``score`` records it), so
    # that a mixed import still gets the below-float32 note.
    dtypes = {c.model: c.dtype for c in cands if c.dtype}
    kinds = set(dtypes.values())
    return table.with_provenance(
        source="lm-eval",
        eos=False,
        reference=f"lm-eval {ref.model} ({', '.join(str(p) for p in reference)})",
        candidates={c.model: str(c.source) for c in cands},
        dtype=(kinds.pop() if len(kinds) == 1 else dtypes) or None,
    )
