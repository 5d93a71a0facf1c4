"""CLI commands on model directories: ``lmcoverage score``."""

from __future__ import annotations

from pathlib import Path

import typer

from lmcoverage.commands._options import parse_key_values

SCORE_HELP = """Score model directories on held-out examples and write a ScoreTable (Parquet).

Give models with --model DIR [DIR ...] (quoted glob patterns such as 'runs/x/checkpoint-*'
expand in natural order) and either --task TASK (problems drawn with --n and --seed) or
--data FILE.jsonl (rows {"prompt", "response", "logp_data"?, "group"?, "weight"?,
"valid_paths"?}, tokenized with each model directory's tokenizer).
"""


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""

    @app.command(
        "score",
        help=SCORE_HELP,
        context_settings={"allow_extra_args": True},
    )
    def score(
        ctx: typer.Context,
        model: list[str] = typer.Option(
            ..., "--model", help="Model directory or quoted glob; more directories may follow."
        ),
        out: Path = typer.Option(..., "--out", help="Output ScoreTable (.parquet)."),
        task: str | None = typer.Option(None, "--task", help="Task name, e.g. figure2-h8."),
        task_option: list[str] | None = typer.Option(
            None, "--task-option", help="Task option KEY=VALUE (--task), e.g. layers=4."
        ),
        n: int | None = typer.Option(None, "--n", help="Problems to draw (--task; 1024)."),
        seed: int | None = typer.Option(None, "--seed", help="Sampling seed (--task; 0)."),
        per_class: bool = typer.Option(
            False, "--per-class", help="Draw --n problems of each class (--task)."
        ),
        correct: str = typer.Option(
            "valid", "--correct", help="Correct set for mass_correct: valid or support (--task)."
        ),
        data: Path | None = typer.Option(None, "--data", help="JSONL file of held-out examples."),
        batch_size: int = typer.Option(64, "--batch-size", help="Sequences per forward pass."),
        device: str = typer.Option("cpu", "--device", help="Torch device (cpu, cuda, cuda:1)."),
        trust_remote_code: bool = typer.Option(
            False, "--trust-remote-code", help="Allow model code shipped in the directories."
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    ) -> None:
        from lmcoverage.engine.table import (
            data_examples,
            model_names,
            resolve_model_dirs,
            score_models,
            task_examples,
        )

        extra = list(ctx.args)
        if any(a.startswith("-") for a in extra):
            raise ValueError(f"unknown option {next(a for a in extra if a.startswith('-'))!r}")
        if (task is None) == (data is None):
            raise ValueError("give exactly one of --task TASK or --data FILE.jsonl")
        if data is not None and (n is not None or seed is not None or per_class or task_option):
            raise ValueError("--n, --seed, --per-class and --task-option apply to --task only")
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a .parquet file path")
        dirs = resolve_model_dirs([*model, *extra])
        if task is not None:
            examples = task_examples(task, 1024 if n is None else n, 0 if seed is None else seed,
                                     per_class=per_class, correct=correct,  # type: ignore[arg-type]
                                     options=parse_key_values(task_option, "--task-option"))
        else:
            assert data is not None
            examples = data_examples(data)
        table = score_models(dirs, examples, names=model_names(dirs), batch_size=batch_size,
                             device=device, trust_remote_code=trust_remote_code,
                             progress=not no_progress)
        table.write_parquet(out)
        typer.echo(f"wrote {out}: {len(dirs)} model(s) x {len(examples)} example(s)")
