"""Reference rows for coverage during training: held-out (x, y) with y ~ pi_D and log pi_D(y|x).

Two file shapes are read (JSONL, one row per response):

- a samples file as written by ``lmcoverage sample``: ``prompt_ids``, ``response_ids`` (used as
  they are, no re-tokenization) and ``logp``, the response's log-probability under the
  reference that sampled it, which plays pi_D;
- a ScoreTable-ready file as read by ``lmcoverage score --data``: ``prompt``, ``response`` texts
  and ``logp_data`` (tokenized with the trained model's tokenizer).

Optional ``group`` and ``weight`` fields mean what they mean for ``lmcoverage score``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.engine.table import Examples, data_examples
from lmcoverage.errors import InputError


def load_reference(path: str | os.PathLike[str]) -> Examples:
    """The reference rows of ``path`` as :class:`~lmcoverage.engine.table.Examples`.

    Rows that all carry ``prompt_ids`` and ``response_ids`` keep their token ids, with
    ``logp_data`` (or, failing that, ``logp``) as log pi_D(y|x); other files are read exactly as
    ``lmcoverage score --data`` reads them (texts and ``logp_data``).

    Raises:
        InputError: naming the file and line of a row without ids, texts or log-probability.
    """
    from lmcoverage.io import read_jsonl_numbered

    p = Path(path)
    numbered = read_jsonl_numbered(p)
    if not all("prompt_ids" in row and "response_ids" in row for _, row in numbered):
        examples = data_examples(p)
        if examples.loglik_data is None:
            raise InputError(f"{p}: reference rows need logp_data (log pi_D of the response), "
                             "or prompt_ids, response_ids and logp as written by "
                             "`lmcoverage sample`")
        return examples
    prompts, responses, groups, weights, data = [], [], [], [], []
    for line, row in numbered:
        where = f"{p}:{line}"
        prompts.append(_ids(row["prompt_ids"], "prompt_ids", where))
        responses.append(_ids(row["response_ids"], "response_ids", where))
        groups.append(str(row.get("group", "all")))
        weights.append(_number(row.get("weight", 1.0), "weight", where, 0.0, math.inf))
        key = "logp_data" if "logp_data" in row else "logp"
        if key not in row:
            raise InputError(f"{where}: needs logp (log-probability under the reference) or "
                             "logp_data")
        data.append(_number(row[key], key, where, -math.inf, 0.0))
    return Examples(
        group=groups,
        weight=np.array(weights, dtype=np.float64),
        loglik_data=np.array(data, dtype=np.float64),
        prompt_ids=prompts,
        response_ids=responses,
        source=str(p),
        lines=[line for line, _ in numbered],
    )


def _ids(value: Any, key: str, where: str) -> list[int]:
    """A non-empty list of non-negative token ids."""
    if (not isinstance(value, list) or not value
            or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)):
        raise InputError(f"{where}: {key} must be a non-empty list of token ids, got "
                         f"{str(value)[:60]}")
    return value


def _number(value: Any, key: str, where: str, low: float, high: float) -> float:
    """``value`` as a float in [low, high] (``"-inf"`` allowed for log-probabilities)."""
    if value in ("-inf", "-Infinity"):
        value = -math.inf
    if (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
            or not low <= value <= high or (key == "weight" and math.isinf(value))):
        raise InputError(f"{where}: {key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)
