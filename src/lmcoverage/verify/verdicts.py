"""Verdict files: one JSONL row per sampled response, and unbiased Pass@k from them.

A verdict row is ``{"model", "problem", "sample_index", "response", "correct"}`` (written by
``lmcoverage verify``), plus ``group`` when the prompt row has one. ``problem`` is the input
row's ``problem`` field when it has one, else its ``id`` field, else the row's 0-based position
in the prompts file (``lmcoverage sample`` writes the same ``problem`` into its rows). Pass@k
per model is the mean over problems of the unbiased estimator 1 - C(n - c, k) / C(n, k)
(:func:`lmcoverage.metrics.pass_at_k`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.verify.verifiers import Verifier


@dataclass(frozen=True)
class Counts:
    """Per-problem sample counts of one model: ``n[i]`` samples of ``problems[i]``, ``c[i]``
    of them correct."""

    problems: tuple[str, ...]
    n: NDArray[np.int64]
    c: NDArray[np.int64]


def problem_id(row: dict[str, Any], index: int) -> str:
    """The problem id of an input row: its ``problem`` field, else its ``id`` field, else its
    0-based position ``index`` (as text: ``1`` and ``"1"`` are one id)."""
    for key in ("problem", "id"):
        if row.get(key) is not None:
            return str(row[key])
    return str(index)


def check_problem_ids(rows: Sequence[dict[str, Any]], source: str = "prompts") -> None:
    """Refuse two prompt rows with one problem id (``1`` and ``"1"`` are the same id, and so is
    a row's position when another row names it): their samples would merge into one problem."""
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        problem = problem_id(row, i)
        if problem in seen:
            raise InputError(f"{source}: rows {seen[problem] + 1} and {i + 1} have the same "
                             f"problem id {problem!r}; give every prompt row its own 'problem'")
        seen[problem] = i


def powers_of_two(k_max: int) -> list[int]:
    """``[1, 2, 4, ...]`` up to ``k_max`` (>= 1)."""
    if k_max < 1:
        raise InputError(f"--samples: need at least one sample, got {k_max}")
    out = [1]
    while out[-1] * 2 <= k_max:
        out.append(out[-1] * 2)
    return out


def judge(
    model: str,
    rows: Sequence[dict[str, Any]],
    responses: Sequence[Sequence[str]],
    verifier: Verifier,
    source: str = "",
) -> list[dict[str, Any]]:
    """Verdict rows for ``responses[i][k]``, the k-th sample for prompt row ``rows[i]``.

    Raises:
        InputError: the verifier raised or returned a non-bool (naming the row, one line).
    """
    out = []
    for i, (row, samples) in enumerate(zip(rows, responses, strict=True)):
        problem = problem_id(row, i)
        where = f"{source}: row {i + 1}: " if source else f"row {i + 1}: "
        for k, text in enumerate(samples):
            verdict = {"model": model, "problem": problem, "sample_index": k,
                       "response": text, "correct": verifier(row, text, where)}
            if row.get("group") is not None:
                verdict["group"] = str(row["group"])
            out.append(verdict)
    return out


def counts_by_model(verdicts: Sequence[dict[str, Any]], source: str = "verdicts"
                    ) -> dict[str, Counts]:
    """Tally verdict rows into per-model, per-problem counts (problems in first-seen order).

    Rows without ``model`` count under the model ``""``. Every model must have every problem.
    """
    tallies: dict[str, dict[str, list[int]]] = {}
    drawn: dict[tuple[str, str, str], int] = {}
    for lineno, row in enumerate(verdicts, start=1):
        where = f"{source}: row {lineno}"
        if "problem" not in row:
            raise InputError(f"{where}: missing field 'problem'")
        if "correct" not in row:
            raise InputError(f"{where}: missing field 'correct'")
        value = row["correct"]
        if not isinstance(value, bool):
            raise InputError(f"{where}: field 'correct' must be true/false, got {value!r}")
        if "sample_index" in row:
            key = (str(row.get("model", "")), str(row["problem"]), str(row["sample_index"]))
            if key in drawn:
                raise InputError(f"{where}: duplicate of row {drawn[key]} (model {key[0]!r}, "
                                 f"problem {key[1]!r}, sample_index {key[2]})")
            drawn[key] = lineno
        per_problem = tallies.setdefault(str(row.get("model", "")), {})
        nc = per_problem.setdefault(str(row["problem"]), [0, 0])
        nc[0] += 1
        nc[1] += int(value)
    out = {}
    reference: set[str] | None = None
    for model, per_problem in tallies.items():
        if reference is None:
            reference = set(per_problem)
        elif set(per_problem) != reference:
            missing = sorted(reference ^ set(per_problem))[0]
            raise InputError(f"{source}: model {model!r} and the first model differ in their "
                             f"problems (e.g. {missing!r})")
        out[model] = Counts(tuple(per_problem),
                            np.array([v[0] for v in per_problem.values()], dtype=np.int64),
                            np.array([v[1] for v in per_problem.values()], dtype=np.int64))
    return out


def read_verdicts(path: str | os.PathLike[str]) -> dict[str, Counts]:
    """Per-model counts from a verdicts JSONL file (see :func:`counts_by_model`)."""
    from lmcoverage.io import read_jsonl

    return counts_by_model(read_jsonl(path), str(path))


def passk_rows(counts: dict[str, Counts], ks: Sequence[int], confidence: float = 0.95
               ) -> list[dict[str, Any]]:
    """Pass@k with a normal interval over problems, one row per (model, k).

    Rows: ``model``, ``k``, ``pass_at_k``, ``lo``, ``hi``, ``problems`` (see
    :func:`lmcoverage.metrics.passk_data.pass_at_k_with_ci`).
    """
    from lmcoverage.metrics.passk_data import pass_at_k_with_ci

    out = []
    for model, cnt in counts.items():
        for row in pass_at_k_with_ci(cnt.n, cnt.c, list(ks), confidence):
            out.append({"model": model, **row})
    return out


def passk_file_rows(path: str | os.PathLike[str], ks: Sequence[int],
                    confidence: float = 0.95, by_group: bool = False
                    ) -> list[dict[str, Any]] | None:
    """Per-model Pass@k rows for ``lmcoverage passk`` when ``path`` is a verdicts file (its
    rows carry ``model``); None for the other Pass@k files (per-problem counts or unlabelled
    per-sample rows), which ``passk`` reads as before. ``by_group``: the rows of all problems
    (``group`` "all") and then of each verdict ``group`` (rows without one are in "all" only).

    Raises:
        InputError: ``by_group`` on a file that is not a verdicts file.
    """
    from lmcoverage.io import read_jsonl

    rows = read_jsonl(path)
    if "model" not in rows[0]:
        if by_group:
            raise InputError(f"--by-group: {path} is not a verdicts file (rows with model, "
                             "problem, correct and group, as `lmcoverage verify` writes)")
        return None
    out = passk_rows(counts_by_model(rows, str(path)), ks, confidence)
    if not by_group:
        return out
    out = [{"group": "all", **r} for r in out]
    groups = dict.fromkeys(str(r["group"]) for r in rows if r.get("group") is not None)
    for group in groups:
        part = [r for r in rows if r.get("group") is not None and str(r["group"]) == group]
        out += [{"group": group, **r}
                for r in passk_rows(counts_by_model(part, f"{path} (group {group!r})"), ks,
                                    confidence)]
    return out
