"""What ``profile``, ``select`` and ``compare`` say about a score table besides its numbers:
its provenance and the warnings of :mod:`lmcoverage.metrics.warnings` (on stderr, so that
stdout stays the table or the csv/json data)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lmcoverage.scoretable import ScoreTable


def provenance_lines(prov: dict[str, Any]) -> list[str]:
    """One line per recorded field: reference, data (path and SHA-256), EOS, dtype, version,
    then each candidate's model and decoding settings."""
    lines = []
    for key in ("reference", "data", "eos", "dtype", "lmcoverage_version"):
        if key not in prov:
            continue
        value = prov[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"  {key}: {value}")
    for name, spec in (prov.get("candidates") or {}).items():
        lines.append(f"  candidate {name}: {spec}")
    for key in sorted(set(prov) - {"reference", "data", "eos", "dtype", "lmcoverage_version",
                                   "candidates"}):
        lines.append(f"  {key}: {prov[key]}")
    return lines


def table_notes(table: ScoreTable, ns: Sequence[float] | None = None,
                cov: ArrayLike | None = None, show_provenance: bool = True) -> dict[str, Any]:
    """Print the table's provenance and its warnings to stderr; return both for a JSON
    payload: ``{"provenance": {...}, "warnings": [...]}`` (``ns``, ``cov`` as in
    :func:`lmcoverage.metrics.warnings.degenerate_warnings`)."""
    from lmcoverage.metrics.warnings import degenerate_warnings

    prov = table.provenance
    if show_provenance and prov:
        typer.echo("provenance:\n" + "\n".join(provenance_lines(prov)), err=True)
    lines = degenerate_warnings(table, ns, cov)
    for line in lines:
        typer.echo(line, err=True)
    return {"provenance": prov, "warnings": lines}
