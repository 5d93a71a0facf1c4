"""CLI: ``lmcoverage profile``: the coverage profile (and KL) of a score table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmcoverage.commands._notes import table_notes
from lmcoverage.commands._output import FormatOption, OutOption, WideOption, check_output, emit

if TYPE_CHECKING:
    from lmcoverage.scoretable import ScoreTable


def _flat_profile_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
    for key in ("cov", "cov_lo", "cov_hi", "cov_norm_lo", "cov_norm_hi", "pass_at"):
        for n, v in row.get(key, {}).items():
            flat[f"{key}_{n}"] = v
    return flat


def _shown_profile_row(row: dict[str, Any], by_group: bool) -> dict[str, Any]:
    """The printed row: KL, CE, each Cov_N with its interval in one cell, Pass@N."""
    shown: dict[str, Any] = {"model": row["model"]}
    if by_group:
        shown["group"] = row["group"]
    shown["KL"] = row.get("kl", "n/a")
    shown["CE"] = row["cross_entropy"]
    for n, cov in row.get("cov", {}).items():
        shown[f"Cov_{n}"] = f"{cov:.4f} [{row['cov_lo'][n]:.3f}, {row['cov_hi'][n]:.3f}]"
        if "cov_norm_lo" in row:  # p(x) at both ends of its interval (a reference table)
            shown[f"Cov_{n} p(x)"] = f"{row['cov_norm_lo'][n]:.3f}..{row['cov_norm_hi'][n]:.3f}"
    for n, value in row.get("pass_at", {}).items():
        shown[f"Pass@{n}"] = value
    return shown


def _add_normaliser_range(table: ScoreTable, rows: list[dict[str, Any]], ns: list[float],
                          confidence: float) -> None:
    """For a table from ``lmcoverage reference`` (ref_correct/ref_samples): each row's
    ``cov_norm_lo``/``cov_norm_hi``, Cov_N with p(x) at both ends of its interval."""
    from lmcoverage.metrics.normaliser import table_normaliser_range

    groups = table.example_column("group")
    for group in dict.fromkeys(r["group"] for r in rows):
        ranges = table_normaliser_range(table, ns, confidence,
                                        None if group == "all" else groups == group)
        if ranges is None:
            return
        for row in (r for r in rows if r["group"] == group):
            i = table.models.index(row["model"])
            row["cov_norm_lo"] = {f"{n:g}": float(v) for n, v in zip(ns, ranges[0][i],
                                                                      strict=True)}
            row["cov_norm_hi"] = {f"{n:g}": float(v) for n, v in zip(ns, ranges[1][i],
                                                                      strict=True)}


def profile(
    scores: Annotated[Path, typer.Argument(help="Score table (Parquet) from `lmcoverage score`.")],
    n: Annotated[list[float] | None, typer.Option(
        "--n", help="Thresholds N of Cov_N, e.g. --n 2 4 8 16 or --n 2,4,8,16.")] = None,
    by_group: Annotated[bool, typer.Option(help="Also show each group (class) separately.")]
    = False,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    fmt: FormatOption = None,
    out: OutOption = None,
    wide: WideOption = False,
) -> None:
    """Coverage profile Cov_N (with Wilson intervals), KL and cross-entropy per model.

    Cov_N and KL need pi_D's log-likelihoods (column loglik_data); exact Pass@N appears when the
    table has the models' correct-set mass (mass_correct).
    """
    from lmcoverage.metrics._validate import as_ns_list
    from lmcoverage.metrics.summary import summarize_scores
    from lmcoverage.scoretable import ScoreTable

    check_output(out, {"SCORES": scores})
    ns = list(n) if n else [2.0, 4.0, 8.0, 16.0]
    as_ns_list(ns, "--n")  # before reading the table
    table = ScoreTable.read_parquet(scores)
    rows = summarize_scores(table, ns, confidence=confidence, by_group=by_group)
    _add_normaliser_range(table, rows, ns, confidence)
    whole = [r for r in rows if r["group"] == "all"]
    notes = table_notes(table, ns, [list(r["cov"].values()) for r in whole]
                        if "cov" in rows[0] else None)
    emit([_flat_profile_row(r) for r in rows], fmt, out,
         title=f"Coverage profile: {scores.name} ({table.num_examples} examples; "
               f"Cov_N [{confidence:.0%} interval])",
         payload={"scores": str(scores), "ns": ns, "confidence": confidence, "models": rows,
                  **notes},
         display=[_shown_profile_row(r, by_group) for r in rows], wide=wide)
    if "kl" not in rows[0]:
        typer.echo("Cov_N and KL need pi_D (column loglik_data); to compare checkpoints "
                   "without it use `lmcoverage select`.", err=True)



def register(app: typer.Typer) -> None:
    """Add ``profile`` to ``app``."""
    app.command("profile")(profile)
