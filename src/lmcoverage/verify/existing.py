"""Verdicts for samples already drawn (``lmcoverage verify --samples FILE``), without sampling.

A samples file is any JSONL whose rows carry ``model`` (the candidate's name), ``problem`` (or
``doc_id``, as in lm-eval's per-sample logs) and ``response`` (text); ``sample_index`` and
token ids are optional. ``lmcoverage sample`` writes such rows. The verifier sees the sample
row itself, or, when prompt rows are given, the prompt row of the same problem updated with
the sample row's fields (so ``answer`` may live in either).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.verify.verdicts import problem_id
from lmcoverage.verify.verifiers import Verifier


def read_samples(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, dict[str, Any]]]:
    """``(place, row)`` of every sample row of ``paths``, each checked for ``model``,
    ``problem``/``doc_id`` and ``response``.

    Raises:
        InputError: a row lacking one of them (file and line named); a model whose samples
            are in two files.
    """
    from lmcoverage.io import read_jsonl_numbered

    out: list[tuple[str, dict[str, Any]]] = []
    home: dict[str, str] = {}
    for path in paths:
        for lineno, row in read_jsonl_numbered(path):
            where = f"{path}:{lineno}"
            model = row.get("model")
            if not isinstance(model, str) or not model:
                raise InputError(f"{where}: needs 'model' (the candidate's name), got "
                                 f"{model!r}")
            if row.get("problem") is None and row.get("doc_id") is None:
                raise InputError(f"{where}: needs 'problem' (or 'doc_id'): which prompt the "
                                 "sample answers")
            if not isinstance(row.get("response"), str):
                raise InputError(f"{where}: 'response' must be a string, got "
                                 f"{row.get('response')!r}")
            if home.setdefault(model, str(path)) != str(path):
                raise InputError(f"{where}: model {model!r} is named in two samples files "
                                 f"({home[model]} and {path}); rename one candidate")
            out.append((where, row))
    return out


def judge_samples(
    samples: Sequence[tuple[str, dict[str, Any]]],
    verifier: Verifier,
    prompts: Sequence[dict[str, Any]] | None = None,
    source: str = "prompts",
) -> list[dict[str, Any]]:
    """Verdict rows (as :func:`lmcoverage.verify.verdicts.judge` writes them) for sample rows
    from :func:`read_samples`; ``sample_index`` counts each (model, problem)'s samples when a
    row has none. ``prompts``: rows of the prompts file (``source``), joined by problem id.

    Raises:
        InputError: a sample whose problem is not among ``prompts``; a row the verifier needs
            an ``answer`` for and lacks; a verifier error (see :class:`Verifier`).
    """
    by_problem = None
    if prompts is not None:
        by_problem = {problem_id(row, i): row for i, row in enumerate(prompts)}
    merged: list[tuple[str, str, dict[str, Any]]] = []
    for where, row in samples:
        problem = str(row["problem"] if row.get("problem") is not None else row["doc_id"])
        if by_problem is not None:
            if problem not in by_problem:
                raise InputError(f"{where}: problem {problem!r} is not in {source} (its "
                                 f"problems are e.g. {list(by_problem)[:3]})")
            row = {**by_problem[problem], **row}
        merged.append((where, problem, row))
    for where, _, row in merged:
        verifier.check_rows([row], where)
    counter: dict[tuple[str, str], int] = {}
    out = []
    for where, problem, row in merged:
        key = (row["model"], problem)
        index = row.get("sample_index", counter.get(key, 0))
        counter[key] = counter.get(key, 0) + 1
        verdict = {"model": row["model"], "problem": problem, "sample_index": index,
                   "response": row["response"],
                   "correct": verifier(row, row["response"], f"{where}: ")}
        if row.get("group") is not None:
            verdict["group"] = str(row["group"])
        out.append(verdict)
    return out
