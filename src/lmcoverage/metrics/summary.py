"""Per-model metric summaries of a :class:`~lmcoverage.scoretable.ScoreTable`.

One vectorised pass over the (models, examples) matrices: Cov_N with intervals and KL when
pi_D's log-likelihoods are known, cross-entropy always, exact Pass@N when the correct-set mass
is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.metrics._validate import as_ns_list
from lmcoverage.metrics.coverage import coverage_profile_ci
from lmcoverage.metrics.divergences import cross_entropy, kl_divergence
from lmcoverage.metrics.passk import pass_at_n_exact
from lmcoverage.scoretable import ScoreTable


def _summarise_rows(
    loglik: NDArray[np.float64],
    loglik_data: NDArray[np.float64] | None,
    mass: NDArray[np.float64] | None,
    weight: NDArray[np.float64],
    ns: NDArray[np.float64],
    confidence: float,
) -> dict[str, Any]:
    row: dict[str, Any] = {"cross_entropy": cross_entropy(loglik, weight)}
    if loglik_data is not None:
        log_ratio = loglik_data - loglik
        cov, lo, hi = coverage_profile_ci(log_ratio, ns, weight, confidence)
        row["kl"] = kl_divergence(log_ratio, weight)
        row["cov"] = {f"{n:g}": float(v) for n, v in zip(ns, cov, strict=True)}
        row["cov_lo"] = {f"{n:g}": float(v) for n, v in zip(ns, lo, strict=True)}
        row["cov_hi"] = {f"{n:g}": float(v) for n, v in zip(ns, hi, strict=True)}
    if mass is not None:
        passes = pass_at_n_exact(mass, ns, weight)
        row["pass_at"] = {f"{n:g}": float(v) for n, v in zip(ns, passes, strict=True)}
    return row


def summarize_scores(
    table: ScoreTable, ns: ArrayLike, confidence: float = 0.95, by_group: bool = False
) -> list[dict[str, Any]]:
    """Per model (and, with ``by_group``, per model and group): the metrics of the table.

    Returns a list of dicts with keys ``model``, ``group`` ("all" for the whole mixture),
    ``examples``, ``cross_entropy``, and when available ``kl``, ``cov``/``cov_lo``/``cov_hi``
    (dicts N -> value, Eq. 1) and ``pass_at`` (dict N -> exact Pass@N).
    """
    n_arr = as_ns_list(ns)
    loglik = table.matrix("loglik")
    data = table.example_column("loglik_data") if table.has("loglik_data") else None
    mass = table.matrix("mass_correct") if table.has("mass_correct") else None
    weight = table.example_column("weight")
    groups = table.example_column("group")
    slices: list[tuple[str, NDArray[np.bool_]]] = [("all", np.ones(weight.size, dtype=bool))]
    if by_group:
        slices += [(str(g), groups == g) for g in sorted(set(groups.tolist()))]
    rows = []
    for i, model in enumerate(table.models):
        for name, mask in slices:
            if weight[mask].sum() <= 0:
                continue
            row = {"model": model, "group": name, "examples": int(mask.sum())}
            row.update(
                _summarise_rows(
                    loglik[i, mask],
                    None if data is None else data[mask],
                    None if mass is None else mass[i, mask],
                    weight[mask],
                    n_arr,
                    confidence,
                )
            )
            rows.append(row)
    return rows
