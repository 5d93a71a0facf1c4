"""CLI: ``lmcoverage task list`` and ``lmcoverage task export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmcoverage.commands._options import TASK_OPTION_HELP, parse_key_values


def export_task(name: str, n: int, seed: int, out: Path,
                options: dict[str, Any] | None = None) -> int:
    """Write ``n`` problems of task ``name`` as JSONL rows (see ``Task.to_row``); return n."""
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path, write_jsonl
    from lmcoverage.tasks import get_task

    check_output_path(out, (".jsonl",))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--n: must be a positive integer, got {n!r}")
    task = get_task(name, **(options or {}))
    rows = [task.to_row(p) for p in task.sample(n, seed)]
    write_jsonl(out, rows)
    return len(rows)


def list_cmd() -> None:
    """List the synthetic tasks (names for task export, train, score --task)."""
    from lmcoverage.tasks.registry import TASK_DESCRIPTIONS, task_names

    for name in task_names():
        typer.echo(f"{name:18} {TASK_DESCRIPTIONS.get(name, '')}".rstrip())


def export_cmd(
    name: Annotated[str, typer.Argument(help="Task: figure1-pretrain, figure1-finetune, "
                                        "figure2-h{H} (even H >= 4).")],
    n: Annotated[int, typer.Option("--n", help="Number of examples.")],
    out: Annotated[Path, typer.Option(help="Output JSONL file.")],
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    task_option: Annotated[list[str] | None, typer.Option(help=TASK_OPTION_HELP)] = None,
) -> None:
    """Write N examples as JSONL: prompt, response, group, logp_data, support, valid_paths."""
    count = export_task(name, n, seed, out, parse_key_values(task_option, "--task-option"))
    typer.echo(f"wrote {count} examples to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``task`` group (``list``, ``export``) to ``app``."""
    task_app = typer.Typer(help="Synthetic tasks with a known data distribution.",
                           no_args_is_help=True)
    task_app.command("list")(list_cmd)
    task_app.command("export")(export_cmd)
    app.add_typer(task_app, name="task")
