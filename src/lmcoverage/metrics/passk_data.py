"""Reading per-problem sample counts for Pass@k from JSONL, and Pass@k with intervals."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.io import read_jsonl
from lmcoverage.metrics.passk import pass_at_k


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_pass_counts(path: str | os.PathLike[str]) -> tuple[list[str], NDArray[np.int64],
                                                             NDArray[np.int64]]:
    """Per-problem ``(problems, n, c)`` from JSONL.

    Two row forms (not mixed in one file): counts ``{"problem": p, "n": 10, "c": 3}`` (one row
    per problem), or per-sample ``{"problem": p, "correct": true}`` (rows are tallied).
    """
    rows = read_jsonl(path)
    counts_form = "n" in rows[0] or "c" in rows[0]
    n: dict[str, int] = {}
    c: dict[str, int] = {}
    drawn: dict[tuple[str, str], int] = {}
    for lineno, row in enumerate(rows, start=1):
        where = f"{path}: row {lineno}"
        if "problem" not in row:
            raise InputError(f"{where}: missing field 'problem'")
        problem = str(row["problem"])
        if counts_form:
            if "correct" in row:
                raise InputError(f"{where}: mixes the 'n'/'c' and 'correct' row forms")
            for key in ("n", "c"):
                if key not in row:
                    raise InputError(f"{where}: missing field {key!r}")
                if not _is_whole(row[key]) or not 0 <= row[key] < 2**63:
                    raise InputError(f"{where}: field {key!r} must be an integer from 0 to "
                                     f"2**63 - 1, got {row[key]!r}")
            if row["c"] > row["n"]:
                raise InputError(f"{where}: c={row['c']} exceeds n={row['n']}")
            if problem in n:
                raise InputError(f"{where}: problem {problem!r} appears twice")
            n[problem], c[problem] = row["n"], row["c"]
        else:
            if "n" in row or "c" in row:
                raise InputError(f"{where}: mixes the 'n'/'c' and 'correct' row forms")
            if "correct" not in row:
                raise InputError(f"{where}: missing field 'correct' (or 'n' and 'c')")
            value = row["correct"]
            if not (isinstance(value, bool) or value in (0, 1)):
                raise InputError(f"{where}: field 'correct' must be true/false, got {value!r}")
            if "sample_index" in row:
                draw = (problem, str(row["sample_index"]))
                if draw in drawn:
                    raise InputError(f"{where}: duplicate of row {drawn[draw]} (problem "
                                     f"{problem!r}, sample_index {draw[1]})")
                drawn[draw] = lineno
            n[problem] = n.get(problem, 0) + 1
            c[problem] = c.get(problem, 0) + int(bool(value))
    problems = list(n)
    return (problems, np.array([n[p] for p in problems], dtype=np.int64),
            np.array([c[p] for p in problems], dtype=np.int64))


def pass_at_k_with_ci(
    n: NDArray[np.int64], c: NDArray[np.int64], ks: list[int], confidence: float = 0.95
) -> list[dict[str, float]]:
    """Mean unbiased Pass@k over problems for each k, with a normal interval over problems.

    Returns one dict per k: ``k``, ``pass_at_k``, ``lo``, ``hi``, ``problems``.
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: must be in (0, 1), got {confidence}")
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    out = []
    for k in ks:
        if k > int(n.min()):
            worst = int(np.argmin(n))
            raise InputError(f"k={k} exceeds the n={int(n[worst])} samples of a problem "
                             "(the estimator needs k <= n)")
        per_problem = pass_at_k(n, c, k)
        mean = float(per_problem.mean())
        sem = float(per_problem.std(ddof=1) / np.sqrt(per_problem.size)) if n.size > 1 else 0.0
        out.append({"k": k, "pass_at_k": mean, "lo": max(0.0, mean - z * sem),
                    "hi": min(1.0, mean + z * sem), "problems": int(n.size)})
    return out
