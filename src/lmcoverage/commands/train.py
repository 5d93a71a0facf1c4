"""CLI: ``lmcoverage train``: train a GPT on a task, or fine-tune a model on pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmcoverage.commands._options import TASK_OPTION_HELP, parse_key_values
from lmcoverage.commands._output import DeviceOption, DtypeOption, resolve_device


def resume_step(out: Path) -> int | None:
    """The step ``train --resume`` continues from (None: nothing to resume in ``out``)."""
    from lmcoverage.train.checkpoint import latest_resumable, read_state

    latest = latest_resumable(out) if out.is_dir() else None
    return None if latest is None else read_state(latest).step


def train_summary(final: Path, seconds: float) -> str:
    """One line: steps, final loss, time and where the weights are."""
    import json

    meta = json.loads((final / "trainer_state.json").read_text())
    loss = f"{meta['history'][-1][1]:.4f}" if meta["history"] else "n/a"
    return (f"trained {meta['step']} steps; final loss {loss}; {seconds:.1f} s; "
            f"weights: {final / 'model.safetensors'}")


def train_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoint-STEP/, final/).")],
    task: Annotated[str | None, typer.Argument(
        help="Task name (see `lmcoverage task export`); or give --model and --data.")
    ] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Fine-tune this pretrained HF model directory (or .gguf) on "
                        "--data instead of training on a task.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Pairs for --model (.jsonl, .parquet, a datasets save_to_disk folder or .arrow): "
             "prompt text, messages or prompt_ids; response text or response_ids (encoded "
             "as score encodes rows)."
    )] = None,
    preset: Annotated[str, typer.Option(help="Model and training preset: cpu, paper, "
                                        "tiny.")] = "cpu",
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: the "
                                              "preset's).")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="Write checkpoint-STEP/ every K steps (0: only the last step).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the model and the data.")] = 0,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (the peak, with a "
                                            "schedule).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay.")] = None,
    optimizer: Annotated[str | None, typer.Option(
        help="adamw (default), sgd, normalized-sgd (give --optimizer-option lam=...) or "
             "signsgd.")] = None,
    optimizer_option: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE keyword of the optimizer (lam, radius, eps); repeatable.")] = None,
    lr_schedule: Annotated[str | None, typer.Option(
        help="constant (default) or cosine (decays to --min-lr over the steps).")] = None,
    warmup_steps: Annotated[int | None, typer.Option(
        help="Linear learning-rate warm-up steps (default 0).")] = None,
    min_lr: Annotated[float | None, typer.Option(
        help="Final learning rate of --lr-schedule cosine (default 0).")] = None,
    grad_clip: Annotated[float | None, typer.Option(
        help="Clip the gradients' global norm to this (default 0: off).")] = None,
    dataset_size: Annotated[int | None, typer.Option(
        help="Train on a fixed dataset of this many examples (default: fresh samples "
             "every batch).")] = None,
    init_from: Annotated[Path | None, typer.Option(
        help="Start from this HF model directory (fine-tuning) instead of a fresh GPT.")
    ] = None,
    task_option: Annotated[list[str] | None, typer.Option(help=TASK_OPTION_HELP)] = None,
    resume: Annotated[bool, typer.Option(help="Re-running into the same --out continues "
                                         "from its last complete checkpoint anyway; "
                                         "--resume also continues a run stopped by a "
                                         "non-finite loss.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
) -> None:
    """Train a GPT on TASK, or fine-tune --model on --data pairs, with AdamW or --optimizer
    (loss on response tokens) and write checkpoints (in the dtype trained in)."""
    import time

    tuning = {"steps": steps, "checkpoint_every": checkpoint_every, "batch_size": batch_size,
              "lr": lr, "weight_decay": weight_decay, "dtype": dtype.lower(),
              "optimizer": optimizer, "lr_schedule": lr_schedule,
              "warmup_steps": warmup_steps, "min_lr": min_lr, "grad_clip": grad_clip,
              "optimizer_options": parse_key_values(optimizer_option, "--optimizer-option")
              or None}
    from lmcoverage.errors import InputError
    from lmcoverage.models.hf import resolve_dtype

    resolve_dtype(dtype, resolve_device(device, announce=False))  # before any work

    if task is None:
        from lmcoverage.engine.rows import read_rows
        from lmcoverage.train.finetune import finetune

        if model is None or data is None:
            raise InputError("train: give a TASK, or --model DIR with --data pairs.jsonl")
        if dataset_size is not None or init_from is not None or task_option:
            raise InputError("--dataset-size, --init-from and --task-option apply to TASK "
                             "training only")
        start, t0 = _announce(out, resume, device), time.perf_counter()
        final = finetune(model, data, out, resume=resume, progress=progress,
                         device=resolve_device(device, announce=False), seed=seed,
                         rows=read_rows(data),
                         **{k: v for k, v in tuning.items() if v is not None})
        _finish(final, start, time.perf_counter() - t0)
        return
    if model is not None or data is not None:
        raise InputError("train: give either TASK or --model with --data, not both")
    from lmcoverage.tasks import get_task
    from lmcoverage.train import config_from_preset, train

    the_task = get_task(task, **parse_key_values(task_option, "--task-option"))
    overrides = {**tuning, "seed": seed, "dataset_size": dataset_size}
    config = config_from_preset(preset, **{k: v for k, v in overrides.items()
                                           if v is not None})
    start, t0 = _announce(out, resume, device), time.perf_counter()
    final = train(the_task, config, out, init_from=init_from, resume=resume,
                  progress=progress, device=resolve_device(device, announce=False))
    _finish(final, start, time.perf_counter() - t0)


def _announce(out: Path, resume: bool, device: str) -> int | None:
    """Print the device; return the step a re-run continues from (None: a fresh run; a run
    stopped by a non-finite loss restarts unless ``--resume``)."""
    import json

    from lmcoverage.train.loop import DIVERGED, RUN_JSON

    resolve_device(device)
    record = out / RUN_JSON
    if not resume and record.is_file() and DIVERGED in json.loads(record.read_text()):
        return None
    return resume_step(out)


def _finish(final: Path, start: int | None, seconds: float) -> None:
    """Say where a resumed run started (once it has been accepted) and sum the run up."""
    if start is not None:
        typer.echo(f"resumed from step {start}")
    typer.echo(train_summary(final, seconds))


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train_cmd)
