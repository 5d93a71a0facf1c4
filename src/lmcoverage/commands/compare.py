"""CLI: ``lmcoverage compare``: does coverage predict Best-of-N better than loss?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

COMPARE_HELP = """Predictiveness report: per candidate the coverage profile, KL, cross-entropy
and Pass@k; across candidates the Spearman correlation (bootstrap interval over prompts) of
Pass@N with Cov_(N/2), KL and cross-entropy; the picks of tournament, cross-entropy, kl and
oracle with their Pass@N. Writes a self-contained HTML report and results.json.

SCORES holds pi_D's held-out responses scored under every candidate (loglik_data filled);
--verdicts is `lmcoverage verify`'s output for the same candidates. Example i of the table
belongs to problem "i" unless --examples names the scored JSONL file, whose rows' `problem`
fields then link examples to problems.
"""


def compare(
    scores: Annotated[Path, typer.Argument(help="Score table (Parquet) with loglik_data.")],
    verdicts: Annotated[Path, typer.Option(help="Verdicts JSONL from `lmcoverage verify`.")],
    out: Annotated[Path, typer.Option(help="HTML report to write.")],
    results: Annotated[Path | None, typer.Option(
        help="results.json path (default: results.json next to --out).")] = None,
    examples: Annotated[Path | None, typer.Option(
        help="The JSONL file that was scored; its rows' `problem` fields link examples to "
             "problems (default: example i is problem i).")] = None,
    n: Annotated[list[int] | None, typer.Option(
        "--n", help="Values of N for Pass@N (default: 2, 4, ... up to the samples).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples over prompts.")] = 1000,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")]
    = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Write the predictiveness report (see ``lmcoverage compare --help``)."""
    from lmcoverage.io import check_output_path, read_jsonl
    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.verify.predictiveness import align, predictiveness, reading
    from lmcoverage.verify.report import write_compare_report
    from lmcoverage.verify.verdicts import problem_id, read_verdicts

    inputs = {"SCORES": scores, "--verdicts": verdicts, "--examples": examples}
    check_output_path(out, (".html", ".htm"), inputs)
    json_path = results if results is not None else out.parent / "results.json"
    check_output_path(json_path, (".json",), inputs, "--results")
    table = ScoreTable.read_parquet(scores)
    counts = read_verdicts(verdicts)
    links = None
    if examples is not None:
        links = [problem_id(row, i) for i, row in enumerate(read_jsonl(examples))]
    data = align(table, counts, links)
    numbers = predictiveness(data, ns=list(n) if n else None, bootstrap=bootstrap,
                             confidence=confidence, seed=seed)
    config = {"scores": str(scores), "verdicts": str(verdicts), "examples": examples,
              "bootstrap": bootstrap, "confidence": confidence, "seed": seed}
    write_compare_report(numbers, out, json_path, config)
    typer.echo(reading(numbers))
    typer.echo(f"wrote {out} and {json_path}")


def register(app: typer.Typer) -> None:
    """Add ``compare`` to ``app``."""
    app.command("compare", help=COMPARE_HELP)(compare)
