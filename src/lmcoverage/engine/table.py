"""Score model directories on held-out examples into a :class:`~lmcoverage.scoretable.ScoreTable`.

The library side of ``lmcoverage score``. Examples come from a task (token ids, exact
``log pi_D``, classes, correct sets) or from a JSONL file of texts, tokenized with the tokenizer
saved in each model directory. Each model is loaded once; every example's held-out response and
its correct set (if any) are scored in one engine call, so the prompt runs once per model.
"""

from __future__ import annotations

import glob
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmcoverage.engine.scoring import (
    DEFAULT_BATCH_SIZE,
    held_out_then_correct,
    loglik_and_mass,
    score_responses,
)
from lmcoverage.models.hf import check_model_dir, is_gguf, load_causal_lm, load_tokenizer

CorrectSet = Literal["valid", "support"]
_GLOB_CHARS = re.compile(r"[*?\[]")


def _natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (``checkpoint-200 < checkpoint-1000``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def resolve_model_dirs(patterns: Sequence[str]) -> list[Path]:
    """Expand model arguments: plain paths stay in order, each glob pattern expands to its
    matching directories (and ``*.gguf`` files) in natural order (step numbers compared as
    numbers).

    Raises:
        ValueError: no arguments, a pattern matching no directory, a directory given twice, or
            a path that is neither a safetensors model directory nor a GGUF file (see
            :func:`check_model_dir`).
    """
    if not patterns:
        raise ValueError("--model: give at least one model directory")
    out: list[Path] = []
    for pattern in patterns:
        if _GLOB_CHARS.search(pattern):
            matches = sorted((m for m in glob.glob(pattern)
                              if os.path.isdir(m) or (is_gguf(m) and os.path.isfile(m))),
                             key=_natural_key)
            if not matches:
                raise ValueError(f"--model: no directory matches the pattern {pattern!r}")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(pattern))
    seen: dict[Path, Path] = {}
    for p in out:
        key = p.resolve()
        if key in seen:
            raise ValueError(f"--model: directory given twice: {seen[key]} and {p}")
        seen[key] = p
        check_model_dir(p)
    return out


def model_names(dirs: Sequence[Path]) -> list[str]:
    """Unique, readable names: each path relative to the directories' common parent.

    ``runs/x/checkpoint-1000`` and ``runs/y/checkpoint-1000`` become ``x/checkpoint-1000`` and
    ``y/checkpoint-1000``; a single directory is named by its base name. A GGUF file loses its
    ``.gguf`` suffix: ``models/SmolLM2-135M-Instruct.Q4_1.gguf`` alone is
    ``SmolLM2-135M-Instruct.Q4_1`` (the file's stem).
    """
    resolved = [p.resolve() for p in dirs]
    parent = Path(os.path.commonpath(resolved)) if len(resolved) > 1 else resolved[0].parent
    names = [_drop_gguf(r.relative_to(parent) if r != parent else Path(r.name))
             for r in resolved]
    if len(set(names)) != len(names):
        names = [_drop_gguf(r) for r in resolved]
    if len(set(names)) != len(names):  # e.g. ``m`` and ``m.gguf`` side by side
        names = [r.as_posix() for r in resolved]
    return names


def _drop_gguf(path: Path) -> str:
    """``path`` as POSIX text, without a ``.gguf`` suffix."""
    return path.with_suffix("").as_posix() if is_gguf(path) else path.as_posix()


@dataclass(frozen=True)
class Examples:
    """Held-out examples for :func:`score_models`, one entry per example in every list.

    Either token ids (``prompt_ids``, ``response_ids``, ``correct_ids``; from a task) or texts
    (``prompt_text``, ``response_text``, ``correct_text``; tokenized per model directory).
    ``loglik_data``, ``correct_*`` are None when unknown. ``lines`` are the JSONL line numbers.
    """

    group: list[str]
    weight: np.ndarray
    loglik_data: np.ndarray | None = None
    prompt_ids: list[list[int]] | None = None
    response_ids: list[list[int]] | None = None
    correct_ids: list[list[list[int]]] | None = None
    prompt_text: list[str] | None = None
    response_text: list[str] | None = None
    correct_text: list[list[str]] | None = None
    source: str = ""
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(self.group)


def task_examples(
    task_name: str,
    n: int,
    seed: int,
    per_class: bool = False,
    correct: CorrectSet = "valid",
    options: dict[str, Any] | None = None,
) -> Examples:
    """Examples drawn from a task (``figure1-pretrain``, ``figure2-h8``, ...).

    With ``per_class=False``, ``n`` problems are drawn from the task's class mixture; with
    ``per_class=True``, ``n`` problems of each class (seeds ``seed``, ``seed+1``, ...), as in the
    paper's per-class validation sets. With mixture sampling every example weighs 1/n (the
    sample already follows the mixture); per class, ``weight`` is the class weight divided by
    the class's count (post-stratification), so either way every weighted mean over the
    examples estimates the mixture's expectation. ``correct`` picks the correct set for
    ``mass_correct``: the graph's valid paths or pi_D's support. ``options`` are the task's
    own (e.g. ``{"layers": 4}`` for a scaled-down variant), as in
    :func:`lmcoverage.tasks.get_task`.
    """
    from lmcoverage.tasks import get_task, mixture_weights

    if correct not in ("valid", "support"):
        raise ValueError(f"correct must be 'valid' or 'support', got {correct!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    task = get_task(task_name, **(options or {}))
    if per_class:
        problems = [p for k, g in enumerate(sorted(task.class_weights))
                    for p in task.sample(n, seed + k, group=g)]
    else:
        problems = task.sample(n, seed)
    groups = [p.group for p in problems]
    sets = [p.valid_paths if correct == "valid" else tuple(y for y, _ in p.support)
            for p in problems]
    return Examples(
        group=[str(g) for g in groups],
        weight=(mixture_weights(groups, task.class_weights) if per_class
                else np.full(len(problems), 1.0 / len(problems))),
        loglik_data=np.array([p.logp_data for p in problems], dtype=np.float64),
        prompt_ids=[list(p.prompt_ids) for p in problems],
        response_ids=[list(p.response_ids) for p in problems],
        correct_ids=[[list(y) for y in s] for s in sets],
        source=task_name,
    )


def _optional_number(row: dict[str, Any], key: str, where: str, upper: float) -> float | None:
    """``row[key]`` as a float <= upper (NaN refused), None when absent."""
    if key not in row or row[key] is None:
        return None
    value = row[key]
    if isinstance(value, str) and value in ("-inf", "-Infinity"):
        value = -math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: {key} must be a number, got {row[key]!r}")
    if value > upper:
        raise ValueError(f"{where}: {key} must be <= {upper}, got {value!r}")
    return float(value)


def data_examples(path: str | os.PathLike[str]) -> Examples:
    """Examples from a JSONL file of ``{"prompt", "response", "logp_data"?, "group"?,
    "weight"?, "valid_paths"?}`` rows (``valid_paths``: correct responses as texts, for
    ``mass_correct``). Optional numeric fields must be present on all rows or none.

    Raises:
        ValueError: naming the file and line of a malformed row.
    """
    from lmcoverage.io import read_jsonl_numbered

    p = Path(path)
    numbered = read_jsonl_numbered(p)
    lines = [line for line, _ in numbered]
    rows = [row for _, row in numbered]
    prompts, responses, groups = [], [], []
    weights: list[float] = []
    data: list[float | None] = []
    correct: list[list[str] | None] = []
    for row, line in zip(rows, lines, strict=True):
        where = f"{p}:{line}"
        for key in ("prompt", "response"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ValueError(f"{where}: {key!r} must be a non-empty string, got "
                                 f"{row.get(key)!r}")
        prompts.append(row["prompt"])
        responses.append(row["response"])
        groups.append(str(row.get("group", "all")))
        weight = _optional_number(row, "weight", where, math.inf)
        if weight is not None and (weight < 0 or math.isinf(weight)):
            raise ValueError(f"{where}: weight must be finite and >= 0, got {weight!r}")
        weights.append(1.0 if weight is None else weight)
        data.append(_optional_number(row, "logp_data", where, 0.0))
        paths = row.get("valid_paths")
        if paths is not None and (not isinstance(paths, list)
                                  or not all(isinstance(y, str) and y.strip() for y in paths)):
            raise ValueError(f"{where}: valid_paths must be a list of non-empty strings")
        correct.append(paths)
    for key, values in (("logp_data", data), ("valid_paths", correct)):
        missing = [line for line, v in zip(lines, values, strict=True) if v is None]
        if missing and len(missing) != len(values):
            raise ValueError(f"{p}:{missing[0]}: {key} is missing here but given on other rows; "
                             "give it on every row or on none")
    return Examples(
        group=groups,
        weight=np.array(weights, dtype=np.float64),
        loglik_data=None if data[0] is None else np.array(data, dtype=np.float64),
        prompt_text=prompts,
        response_text=responses,
        correct_text=None if correct[0] is None else [list(c or []) for c in correct],
        source=str(p),
        lines=lines,
    )


def _encode(tokenizer: Any, text: str, special: bool, where: str, model_dir: Path) -> list[int]:
    """Token ids of ``text``; ValueError if the tokenizer cannot encode it."""
    ids = list(tokenizer(text, add_special_tokens=special)["input_ids"])
    unk = tokenizer.unk_token_id
    if unk is not None and unk in ids and tokenizer.unk_token not in text:
        raise ValueError(f"{where}: the tokenizer of {model_dir} cannot encode {text!r} "
                         "(unknown token)")
    if not ids:
        raise ValueError(f"{where}: {text!r} encodes to no tokens with the tokenizer of "
                         f"{model_dir}")
    return ids


def encode_examples(
    examples: Examples, model_dir: Path, trust_remote_code: bool = False
) -> tuple[list[list[int]], list[list[int]], list[list[list[int]]] | None]:
    """``(prompts, responses, correct sets or None)`` as token ids for one model directory."""
    if examples.prompt_ids is not None and examples.response_ids is not None:
        return examples.prompt_ids, examples.response_ids, examples.correct_ids
    assert examples.prompt_text is not None and examples.response_text is not None
    assert examples.lines is not None
    tok = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    prompts, responses = [], []
    correct: list[list[list[int]]] = []
    for k, line in enumerate(examples.lines):
        where = f"{examples.source}:{line}"
        prompts.append(_encode(tok, examples.prompt_text[k], True, where, model_dir))
        responses.append(_encode(tok, examples.response_text[k], False, where, model_dir))
        if examples.correct_text is not None:
            correct.append([_encode(tok, y, False, where, model_dir)
                            for y in examples.correct_text[k]])
    return prompts, responses, correct if examples.correct_text is not None else None


def score_models(
    model_dirs: Sequence[Path],
    examples: Examples,
    names: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    trust_remote_code: bool = False,
    progress: bool = True,
) -> Any:
    """Score every model directory on ``examples``; returns a ScoreTable.

    Rows: ``loglik = log pi_hat(y|x)`` of the held-out response, ``loglik_data``,
    ``weight``, ``group`` from the examples, ``mass_correct = pi_hat(G_x|x)`` when correct sets
    are known (else null). ``example_id`` is the example's position (0-based).
    """
    from lmcoverage.scoretable import ScoreTable

    names = list(names) if names is not None else model_names(model_dirs)
    if len(names) != len(model_dirs):
        raise ValueError(f"names: expected {len(model_dirs)} names, got {len(names)}")
    tables = []
    for k, (model_dir, name) in enumerate(zip(model_dirs, names, strict=True)):
        prompts, responses, correct = encode_examples(examples, Path(model_dir),
                                                      trust_remote_code)
        model = load_causal_lm(model_dir, trust_remote_code=trust_remote_code, device=device)
        if progress:
            print(f"scoring {name} ({k + 1}/{len(model_dirs)})", file=sys.stderr)
        groups = held_out_then_correct(responses, correct)
        scores = score_responses(model, prompts, groups, batch_size=batch_size,
                                 progress=progress)
        loglik, mass = loglik_and_mass(scores, responses, correct)
        tables.append(ScoreTable.from_columns(
            model=[name] * len(examples),
            example_id=np.arange(len(examples), dtype=np.int64),
            loglik=loglik,
            loglik_data=examples.loglik_data,
            weight=examples.weight,
            group=examples.group,
            mass_correct=mass,
        ))
    return ScoreTable.concat(tables)
