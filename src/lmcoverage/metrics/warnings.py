"""Warnings where a coverage answer is degenerate; shown by ``profile``, ``select``, ``compare``.

Two failure modes of a badly chosen pi_D (see the guide page "Choosing pi_D"):

- **A candidate is the reference.** When pi_D is scored as a candidate's own distribution
  (the same model and decoding settings as ``score --reference``, or ``loglik`` equal to
  ``loglik_data`` on every row), its log-ratio is 0 everywhere: Cov_N = 0 for every N > 1 and
  KL = 0 by construction, so every coverage-based selector picks it whatever its Best-of-N.
- **Coverage is saturated.** Every candidate has Cov_N >= 0.99 at every N asked: pi_D's
  responses are ones no candidate makes likely (e.g. a base model's mostly wrong samples), so
  Cov_N cannot rank the candidates; ask for larger N or use a reference of good responses
  (``lmcoverage reference`` or gold answers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from lmcoverage.scoretable import ScoreTable

#: every candidate at or above this Cov_N at every N asked is "saturated"
SATURATION = 0.99
#: nats: loglik within this of loglik_data on every row counts as "the reference itself"
SAME_ATOL = 1e-6


def reference_candidates(table: ScoreTable) -> list[tuple[str, str]]:
    """``(name, why)`` of every candidate that is the reference: the provenance names the same
    model and decoding settings for it and for ``reference``, or its ``loglik`` equals
    ``loglik_data`` (within :data:`SAME_ATOL`) on every row."""
    prov = table.provenance
    reference = prov.get("reference")
    specs = prov.get("candidates")
    specs = specs if isinstance(specs, dict) else {}
    found: dict[str, str] = {}
    for name in table.models:
        if isinstance(reference, str) and specs.get(name) == reference:
            found[name] = f"same model and decoding settings as the reference ({reference})"
    if table.has("loglik_data"):
        loglik, data = table.matrix("loglik"), table.example_column("loglik_data")
        same = np.isclose(loglik, data[None, :], rtol=0.0, atol=SAME_ATOL) | (
            np.isneginf(loglik) & np.isneginf(data)[None, :])
        for name, equal in zip(table.models, same.all(axis=1), strict=True):
            if equal and name not in found:
                found[name] = "loglik equals loglik_data on every row"
    return [(name, found[name]) for name in table.models if name in found]


def is_saturated(cov: ArrayLike, threshold: float = SATURATION) -> bool:
    """True when every entry of ``cov`` (models, ns) is >= ``threshold``."""
    values = np.asarray(cov, dtype=np.float64)
    return bool(values.size) and bool(np.all(values >= threshold))


#: Weights' dtypes below float32 (``--dtype``) that :func:`precision_warning` reports.
LOW_PRECISION = ("bfloat16", "float16")


def _below_float32(dtype: object) -> list[str]:
    """The names in a recorded dtype (a name, a list of names or ``{model: name}``) that are
    below float32, sorted."""
    values = dtype.values() if isinstance(dtype, dict) else (
        dtype if isinstance(dtype, list) else [dtype])
    return sorted({str(v) for v in values if str(v) in LOW_PRECISION})


def precision_warning(table: ScoreTable) -> str | None:
    """A line when the provenance says the table was scored below float32 (``dtype``), or that
    its ``loglik_data`` came from an ``lmcoverage reference`` built below float32
    (``reference_dtype``), with the accuracy measured in ``benchmarks/precision.md``; None
    when both are float32 (or unrecorded)."""
    scored = _below_float32(table.provenance.get("dtype"))
    built = _below_float32(table.provenance.get("reference_dtype"))
    if not scored and not built:
        return None
    what = ([f"scored in {' and '.join(scored)}"] if scored else []) + (
        [f"pi_D's logp_data (lmcoverage reference) computed in {' and '.join(built)}"]
        if built else [])
    redo = ("rescore" if not built else "rebuild the reference" if not scored
            else "rescore and rebuild the reference")
    measured = "" if "bfloat16" in scored + built else "float16's error was not measured; "
    return (f"note: {', and '.join(what)}, not float32: {measured}on SmolLM2-135M, "
            "bfloat16 moved per-response log-likelihoods by 0.17-0.18 nats on average "
            "(0.011-0.012 per token, max 0.97 over 16 tokens) and flipped the Cov_N indicator "
            f"of up to 1.7% of rows (N = 2-16); {redo} with --dtype float32 for exact numbers")


def degenerate_warnings(table: ScoreTable, ns: Sequence[float] | None = None,
                        cov: ArrayLike | None = None) -> list[str]:
    """One line per warning: a table scored below float32 (:func:`precision_warning`), each
    candidate that is the reference, and saturation of
    ``cov`` (models, len(ns)) when given (else computed from the table at ``ns``; skipped when
    the table has no ``loglik_data`` or ``ns`` is None)."""
    from lmcoverage.metrics.coverage import coverage_profile

    refs = reference_candidates(table)
    note = precision_warning(table)
    lines = [] if note is None else [note]
    lines += [f"warning: candidate {name!r} is the reference ({why}): its Cov_N (N > 1) and KL "
             "are 0 by construction, so coverage selectors pick it whatever its Best-of-N"
             for name, why in refs]
    if cov is None and ns is not None and table.has("loglik_data"):
        data, weight = table.example_column("loglik_data"), table.example_column("weight")
        cov = np.stack([coverage_profile(data - row, ns, weight)
                        for row in table.matrix("loglik")])
    if cov is None:
        return lines
    others = [i for i, m in enumerate(table.models) if m not in {name for name, _ in refs}]
    if others and is_saturated(np.asarray(cov)[others]):
        who = "every candidate" + (" but the reference" if refs else "")
        shown = "" if ns is None else " (" + ", ".join(f"{n:g}" for n in ns) + ")"
        lines.append(f"warning: coverage is saturated: {who} has Cov_N >= {SATURATION} at "
                     f"every N asked{shown}, so Cov_N cannot rank them; ask for larger N, or "
                     "use a reference of good responses (lmcoverage reference, or gold "
                     "answers) as pi_D")
    return lines
