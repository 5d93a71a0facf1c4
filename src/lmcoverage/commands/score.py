"""CLI: ``lmcoverage score``: score candidates on held-out examples into a ScoreTable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from lmcoverage.commands._options import parse_key_values
from lmcoverage.commands._output import BatchSizeOption, DtypeOption, parse_batch_size
from lmcoverage.sharding import (
    EXECUTOR_HELP,
    RAY_ADDRESS_HELP,
    SHARDS_HELP,
    check_executor,
    finish_sharded,
)

SCORE_HELP = """Score candidates on held-out examples and write a ScoreTable (Parquet).

Give candidates with --model M [M ...]: a model directory, a .gguf file or a quoted glob
('runs/x/checkpoint-*', natural order), each optionally followed by decoding settings,
DIR@temperature=0.8,top_p=0.95 (also top_k, min_p): the exact distribution that decoding
samples from; all variants of one model are scored from one forward pass. Examples come from
--task TASK (problems drawn with --n and --seed) or --data FILE (.jsonl or .parquet rows with
prompt / messages / prompt_ids, response / response_ids, and optional logp_data, group,
weight, valid_paths). --reference REF scores every row under REF as loglik_data (pi_D);
without it a logp_data field is used. Rows sharing a prompt run the prompt once.
"""


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
    data: Path | None = typer.Option(
        None, "--data", help="Held-out examples (.jsonl or .parquet)."),
    reference: str | None = typer.Option(
        None, "--reference",
        help="Model (DIR, .gguf, DIR@settings) whose log-probs become loglik_data."),
    batch_size: BatchSizeOption = "auto",
    dtype: DtypeOption = "float32",
    device: str = typer.Option(
        "auto", "--device", help="Torch device: auto (cuda if available, else cpu), cpu."),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Allow model code shipped in the directories."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    executor: str = typer.Option("local", "--executor", help=EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    shards: int | None = typer.Option(None, "--shards", help=SHARDS_HELP),
) -> None:
    from lmcoverage.commands._output import resolve_device
    from lmcoverage.engine.candidates import parse_candidates, parse_one_candidate
    from lmcoverage.engine.sharded import score_sharded
    from lmcoverage.engine.table import (
        check_inputs,
        data_examples,
        model_scores,
        task_examples,
    )
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path
    from lmcoverage.models.hf import resolve_dtype

    extra = list(ctx.args)
    if any(a.startswith("-") for a in extra):
        raise InputError(f"unknown option {next(a for a in extra if a.startswith('-'))!r}")
    if (task is None) == (data is None):
        raise InputError("give exactly one of --task TASK or --data FILE")
    if data is not None and (n is not None or seed is not None or per_class or task_option):
        raise InputError("--n, --seed, --per-class and --task-option apply to --task only")
    check_output_path(out, (".parquet",), {"--data": data})
    check_executor(executor, ray_address)
    candidates = parse_candidates([*model, *extra], "--model")
    dirs, names = [c.path for c in candidates], [c.name for c in candidates]
    ref = None
    if reference is not None:
        ref_candidate = parse_one_candidate(reference, "--reference")
        ref = (ref_candidate.path, ref_candidate.decoding)
    dev = resolve_device(device, announce=False)
    resolve_dtype(dtype, dev)  # an unknown or unsupported --dtype fails before any work
    size = parse_batch_size(batch_size)
    if task is not None:
        examples = task_examples(task, 1024 if n is None else n, 0 if seed is None else seed,
                                 per_class=per_class, correct=correct,  # type: ignore[arg-type]
                                 options=parse_key_values(task_option, "--task-option"))
    else:
        assert data is not None
        # locally the rows are re-read in chunks; shards need them in memory
        examples = data_examples(data, keep_rows=executor != "local" or shards is not None)
    options: dict[str, Any] = {"batch_size": size, "device": dev, "dtype": dtype,
               "trust_remote_code": trust_remote_code,
               "specs": [c.decoding for c in candidates], "reference": ref}
    if executor == "local" and shards is None:  # written a batch of rows at a time
        model_scores(dirs, examples, names=names, progress=not no_progress,
                     **options).write_parquet(out)
    else:  # every row checked before any shard runs
        check_inputs(dirs, examples, ref, trust_remote_code, not no_progress)
        score_sharded(candidates, examples, out, executor, ray_address, shards,
                      not no_progress, **options).write_parquet(out)
    finish_sharded(out)
    typer.echo(f"wrote {out}: {len(dirs)} candidate(s) x {len(examples)} example(s)")


def register(app: typer.Typer) -> None:
    """Add ``score`` to ``app``."""
    app.command(
        "score",
        help=SCORE_HELP,
        context_settings={"allow_extra_args": True},
    )(score)
