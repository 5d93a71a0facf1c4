"""CLI: ``lmcoverage import lm-eval``: score tables from other tools' outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

LM_EVAL_HELP = """Build a ScoreTable from lm-evaluation-harness --log_samples files, no
re-scoring.

SAMPLES are the candidates' samples_<task>_<date>.jsonl files (several tasks of one model are
united); --reference gives the reference model's (pi_D) files of the same tasks. Each
loglikelihood request (multiple_choice or loglikelihood tasks) becomes one example: context is
the prompt, continuation the response, loglik the candidate's log-likelihood and loglik_data
the reference's; rows are joined by task, doc_id and request index; group is the task. A
model is named after the last part of lm-eval's model_name (its results_*.json next to the
file), else of the folder lm-eval named after it. lm-eval leaves the end-of-sequence token
out of its log-likelihoods: the table records eos: false.
"""


def lm_eval(
    samples: Annotated[list[Path], typer.Argument(
        help="Candidates' lm-eval samples_*.jsonl files.")],
    reference: Annotated[list[Path], typer.Option(
        "--reference", help="The reference model's samples_*.jsonl file(s).")],
    out: Annotated[Path, typer.Option("--out", help="Output ScoreTable (.parquet).")],
) -> None:
    """Write the ScoreTable of lm-eval samples files (see ``lmcoverage import lm-eval
    --help``)."""
    from lmcoverage.integrations.lm_eval import import_scores
    from lmcoverage.io import check_output_path

    check_output_path(out, (".parquet",))
    table = import_scores(samples, reference)
    table.write_parquet(out)
    typer.echo(f"wrote {out}: {len(table.models)} candidate(s) x {table.num_examples} "
               "example(s) (lm-eval log-likelihoods, without EOS)")


def register(app: typer.Typer) -> None:
    """Add the ``import`` group (``import lm-eval``) to ``app``."""
    group = typer.Typer(help="Build score tables from other tools' outputs.",
                        no_args_is_help=True)
    group.command("lm-eval", help=LM_EVAL_HELP)(lm_eval)
    app.add_typer(group, name="import")
