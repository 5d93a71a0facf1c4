"""CLI: ``lmcoverage passk``: unbiased pass@k with intervals from counts or verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmcoverage.commands._output import FormatOption, OutOption, WideOption, check_output, emit
from lmcoverage.errors import InputError


def passk(
    file: Annotated[Path, typer.Argument(help="JSONL: {problem, n, c} per problem or "
                                         "{problem, correct} per sample.")],
    k: Annotated[list[int] | None, typer.Option(
        "--k", help="Values of k, e.g. --k 1 10 100 or --k 1,10,100.")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    by_group: Annotated[bool, typer.Option(
        help="Verdicts files: also each group (the verdicts' group field) separately.")]
    = False,
    fmt: FormatOption = None,
    out: OutOption = None,
    wide: WideOption = False,
) -> None:
    """Unbiased pass@k (1 - C(n-c, k) / C(n, k)) averaged over problems, with intervals."""
    from lmcoverage.metrics.passk_data import pass_at_k_with_ci, read_pass_counts

    check_output(out, {"FILE": file})
    ks = list(k) if k else [1]
    for value in ks:
        if value < 1:
            raise InputError(f"--k: k must be >= 1, got {value}")
    from lmcoverage.verify.verdicts import passk_file_rows

    verdict_rows = passk_file_rows(file, ks, confidence, by_group)  # `verify` output
    if verdict_rows is None:
        problems, n_arr, c_arr = read_pass_counts(file)
        rows, n_problems = pass_at_k_with_ci(n_arr, c_arr, ks, confidence), len(problems)
    else:
        rows, n_problems = verdict_rows, verdict_rows[0]["problems"]
    emit(rows, fmt, out, title=f"pass@k: {file.name} ({n_problems} problems; "
                               f"{confidence:.0%} interval lo..hi)",
         payload={"file": str(file), "confidence": confidence, "pass_at_k": rows}, wide=wide)


def register(app: typer.Typer) -> None:
    """Add ``passk`` to ``app``."""
    app.command("passk")(passk)
