"""CLI: ``lmcoverage profile`` (coverage profile of a score table) and ``lmcoverage passk``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer

OUT_HELP = "Write the numbers to FILE: .json or .csv (by extension)."


def check_out_path(out: Path | None) -> None:
    """Refuse an ``--out`` whose extension is neither .json nor .csv, before any work."""
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"--out {out}: use a .json or .csv file name")
    if out is not None and out.is_dir():
        raise ValueError(f"--out {out}: is a directory")


def write_out(out: Path, payload: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Write ``payload`` as JSON or ``rows`` as CSV to ``out``, atomically."""
    from lmcoverage.io import atomic_write_json, atomic_write_text

    if out.suffix.lower() == ".json":
        atomic_write_json(out, payload)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out, buffer.getvalue())


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _flat_profile_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
    for key in ("cov", "cov_lo", "cov_hi", "pass_at"):
        for n, v in row.get(key, {}).items():
            flat[f"{key}_{n}"] = v
    return flat


def profile(
    scores: Annotated[Path, typer.Argument(help="Score table (Parquet) from `lmcoverage score`.")],
    n: Annotated[list[float] | None, typer.Option(
        "--n", help="Values of N, e.g. --n 2 4 8 16.")] = None,
    by_group: Annotated[bool, typer.Option(help="Also show each group (class) separately.")]
    = False,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    out: Annotated[Path | None, typer.Option(help=OUT_HELP)] = None,
) -> None:
    """Coverage profile Cov_N (with Wilson intervals), KL and cross-entropy per model.

    Cov_N and KL need pi_D's log-likelihoods (column loglik_data); exact Pass@N appears when the
    table has the models' correct-set mass (mass_correct).
    """
    from rich.console import Console
    from rich.table import Table

    from lmcoverage.metrics.summary import summarize_scores
    from lmcoverage.scoretable import ScoreTable

    check_out_path(out)
    ns = list(n) if n else [2.0, 4.0, 8.0, 16.0]
    table = ScoreTable.read_parquet(scores)
    rows = summarize_scores(table, ns, confidence=confidence, by_group=by_group)
    view = Table(title=f"Coverage profile: {scores.name} ({table.num_examples} examples)")
    view.add_column("model")
    if by_group:
        view.add_column("group")
    view.add_column("KL")
    view.add_column("CE")
    keys = [f"{v:g}" for v in ns]
    for key in keys:
        view.add_column(f"Cov_{key} [{confidence:.0%} CI]")
    has_pass = "pass_at" in rows[0]
    for key in keys if has_pass else []:
        view.add_column(f"Pass@{key}")
    for row in rows:
        cells = [row["model"]] + ([row["group"]] if by_group else [])
        cells += [_fmt(row["kl"]) if "kl" in row else "n/a", _fmt(row["cross_entropy"])]
        for key in keys:
            cells.append(
                f"{row['cov'][key]:.4f} [{row['cov_lo'][key]:.3f}, {row['cov_hi'][key]:.3f}]"
                if "cov" in row else "n/a"
            )
        cells += [_fmt(row["pass_at"][key]) for key in keys] if has_pass else []
        view.add_row(*cells)
    console = Console()
    console.print(view)
    if "kl" not in rows[0]:
        console.print("Cov_N and KL need pi_D (column loglik_data); to compare checkpoints "
                      "without it use `lmcoverage select`.")
    if out is not None:
        write_out(out, {"scores": str(scores), "ns": ns, "confidence": confidence,
                        "models": rows}, [_flat_profile_row(r) for r in rows])
        console.print(f"wrote {out}")


def passk(
    file: Annotated[Path, typer.Argument(help="JSONL: {problem, n, c} per problem or "
                                         "{problem, correct} per sample.")],
    k: Annotated[list[int] | None, typer.Option("--k", help="Values of k, e.g. --k 1 10 100.")]
    = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    out: Annotated[Path | None, typer.Option(help=OUT_HELP)] = None,
) -> None:
    """Unbiased pass@k (1 - C(n-c, k) / C(n, k)) averaged over problems, with intervals."""
    from rich.console import Console
    from rich.table import Table

    from lmcoverage.metrics.passk_data import pass_at_k_with_ci, read_pass_counts

    check_out_path(out)
    ks = list(k) if k else [1]
    for value in ks:
        if value < 1:
            raise ValueError(f"--k: k must be >= 1, got {value}")
    problems, n_arr, c_arr = read_pass_counts(file)
    rows = pass_at_k_with_ci(n_arr, c_arr, ks, confidence)
    view = Table(title=f"pass@k: {file.name} ({len(problems)} problems)")
    for col in ("k", "pass@k", f"{confidence:.0%} CI"):
        view.add_column(col)
    for row in rows:
        view.add_row(str(row["k"]), _fmt(row["pass_at_k"]), f"[{row['lo']:.4f}, {row['hi']:.4f}]")
    console = Console()
    console.print(view)
    if out is not None:
        write_out(out, {"file": str(file), "confidence": confidence, "pass_at_k": rows}, rows)
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``profile`` and ``passk`` to ``app``."""
    app.command("profile")(profile)
    app.command("passk")(passk)
