"""CLI: ``lmcoverage compare``: does coverage predict Best-of-N better than loss?"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

COMPARE_HELP = """Predictiveness report: per candidate the coverage profile, KL, cross-entropy
and Pass@k; across candidates the Spearman correlation (bootstrap interval over prompts) of
Pass@N with Cov_(N/2), KL and cross-entropy, and the paired difference D_N = rho(Cov_(N/2)) -
rho(CE) with a BCa interval from a bootstrap over prompts and candidates; the picks of
tournament, cross-entropy, kl and oracle with their Pass@N and regret (with intervals); warnings
when a candidate is the reference or coverage is saturated. Writes a self-contained HTML report
and results.json (strict JSON). Fewer than 3 candidates: no correlation (one line), the rest is
still written.

SCORES holds pi_D's held-out responses scored under every candidate (loglik_data filled);
--verdicts is `lmcoverage verify`'s output for the same candidates. Examples are linked to
problems by the scored file's rows (their `problem` or `id` field, else their position): the
file --examples names, else the --data file `score` recorded (it must be unchanged), else, for
a task's table, example i is problem "i". --by-group also writes one report per group of the
table (REPORT.GROUP.html, results.GROUP.json).
"""


def compare(
    scores: Annotated[Path, typer.Argument(help="Score table (Parquet) with loglik_data.")],
    verdicts: Annotated[Path, typer.Option(help="Verdicts JSONL from `lmcoverage verify`.")],
    out: Annotated[Path, typer.Option(help="HTML report to write.")],
    results: Annotated[Path | None, typer.Option(
        help="results.json path (default: results.json next to --out).")] = None,
    examples: Annotated[Path | None, typer.Option(
        help="The file that was scored; its rows' `problem` fields link examples to "
             "problems (default: the --data file score recorded).")] = None,
    by_group: Annotated[bool, typer.Option(
        "--by-group", help="Also one report per group (the table's group column).")] = False,
    n: Annotated[list[int] | None, typer.Option(
        "--n", help="Values of N for Pass@N (default: 2, 4, ... up to the samples).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples over prompts.")] = 1000,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")]
    = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Write the predictiveness report (see ``lmcoverage compare --help``)."""
    from lmcoverage.io import check_output_path
    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.verify.predictiveness import (
        align,
        annotate,
        example_problems,
        predictiveness,
        reading,
        split_by_group,
    )
    from lmcoverage.verify.report import write_compare_report
    from lmcoverage.verify.verdicts import read_verdicts

    inputs = {"SCORES": scores, "--verdicts": verdicts, "--examples": examples}
    check_output_path(out, (".html", ".htm"), inputs)
    json_path = results if results is not None else out.parent / "results.json"
    check_output_path(json_path, (".json",), inputs, "--results")
    table = ScoreTable.read_parquet(scores)
    counts = read_verdicts(verdicts)
    data = align(table, counts, example_problems(table, examples))
    parts = {"": data}
    if by_group:
        parts.update(split_by_group(data, table.example_column("group").tolist()))
    reports = []  # every report computed before any is written
    for group, part in parts.items():
        numbers = annotate(predictiveness(part, ns=list(n) if n else None, bootstrap=bootstrap,
                                          confidence=confidence, seed=seed),
                           table, group or None)
        config = {"scores": str(scores), "verdicts": str(verdicts), "examples": examples,
                  "bootstrap": bootstrap, "confidence": confidence, "seed": seed,
                  "provenance": numbers["provenance"]}
        html, js = out, json_path
        if group:
            config["group"] = group
            tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", group)
            html = out.with_name(f"{out.stem}.{tag}{out.suffix}")
            js = json_path.with_name(f"{json_path.stem}.{tag}{json_path.suffix}")
        reports.append((group, part, numbers, config, html, js))
    from lmcoverage.commands._notes import provenance_lines

    if reports[0][2]["provenance"]:
        typer.echo("provenance:\n" + "\n".join(provenance_lines(reports[0][2]["provenance"])),
                   err=True)
    for line in reports[0][2]["warnings"]:
        typer.echo(line, err=True)
    for group, part, numbers, config, html, js in reports:
        write_compare_report(numbers, html, js, config)
        if group:
            typer.echo(f"group {group!r} ({len(part.problems)} problems):")
        typer.echo(reading({**numbers, "warnings": []}))  # the warnings went to stderr
        typer.echo(f"wrote {html} and {js}")


def register(app: typer.Typer) -> None:
    """Add ``compare`` to ``app``."""
    app.command("compare", help=COMPARE_HELP)(compare)
