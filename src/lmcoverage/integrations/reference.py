"""Reference rows for coverage during training: held-out (x, y) with y ~ pi_D and log pi_D(y|x).

Rows are those of ``lmcoverage score --data`` (:func:`lmcoverage.engine.table.data_examples`:
``prompt``/``messages``/``prompt_ids`` and ``response``/``response_ids``, optional ``group``,
``weight``, ``valid_paths``), with log pi_D(y|x) from ``logp_data`` or, in a samples file as
written by ``lmcoverage sample``, from ``logp`` (the response's log-probability under the
reference that sampled it). Token ids in a row are used as they are (no re-tokenization).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from lmcoverage.engine.table import Examples, data_examples
from lmcoverage.errors import InputError


def load_reference(path: str | os.PathLike[str]) -> Examples:
    """The reference rows of ``path`` (JSONL or Parquet), read as ``lmcoverage score --data``
    reads them, with ``logp_data`` or, failing that, ``logp`` as log pi_D(y|x).

    Raises:
        InputError: naming the file and row of a malformed row, or a file without
            ``logp_data`` or ``logp`` on every row.
    """
    p = Path(path)
    examples = data_examples(p)
    if examples.loglik_data is not None:
        return examples
    rows, places = examples.rows or [], examples.where or []
    data = []
    for row, where in zip(rows, places, strict=True):
        value = row.get("logp")
        if value in ("-inf", "-Infinity"):
            value = -math.inf
        if (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
                or value > 0):
            raise InputError(f"{where}: reference rows need logp_data, or logp (the "
                             "response's log-probability under the reference, as written by "
                             f"`lmcoverage sample`) <= 0; got logp={value!r}")
        data.append(float(value))
    return dataclasses.replace(examples, loglik_data=np.array(data, dtype=np.float64))
