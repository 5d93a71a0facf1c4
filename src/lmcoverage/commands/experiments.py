"""CLI: ``lmcoverage run NAME`` and ``lmcoverage demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmcoverage.commands._options import parse_key_values


def run_experiment(
    name: str,
    preset: str,
    out: Path,
    seeds: list[int],
    executor: str = "local",
    ray_address: str | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Run experiment ``name`` into ``out`` (resuming a matching run) and return its results."""
    from lmcoverage.executors import make_executor
    from lmcoverage.experiments.registry import (
        RunContext,
        load_experiment,
        prepare_run_dir,
        resolve_config,
    )

    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: duplicated seed in {seeds}")
    module = load_experiment(name)
    config = resolve_config(module, preset, overrides or {})
    ctx = RunContext(seeds=seeds, executor=make_executor(executor, ray_address, workers),
                     progress=progress)
    fresh = not out.exists()
    prepare_run_dir(out, {"experiment": name, "config": config, "seeds": seeds})
    import torch

    torch.set_num_threads(1)  # experiments are sized and measured on one thread
    try:
        results: dict[str, Any] = module.run(config, out, ctx)
    except BaseException:
        discard_if_untouched(out, fresh)
        raise
    return results


def discard_if_untouched(out: Path, fresh: bool) -> None:
    """Remove a run directory this call created if the run failed before writing any result.

    A config the experiment rejects (e.g. ``--set instance=foo``) then leaves nothing behind,
    and the corrected command can reuse the same ``--out``.
    """
    from lmcoverage.experiments.registry import CONFIG_FILE

    if fresh and out.is_dir() and [p.name for p in out.iterdir()] == [CONFIG_FILE]:
        (out / CONFIG_FILE).unlink()
        out.rmdir()


def _print_summary(name: str, results: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from lmcoverage.experiments.registry import load_experiment

    module = load_experiment(name)
    console = Console()
    rows = module.summary(results) if hasattr(module, "summary") else []
    if rows:
        table = Table(title=f"{name}: key numbers")
        for col in rows[0]:
            table.add_column(str(col))
        for row in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
    console.print(f"results: {out / 'results.json'}")
    console.print(f"report:  {out / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to ``app``."""

    @app.command("run")
    def run_cmd(
        name: Annotated[str, typer.Argument(help="Experiment: figure1, figure2, tournament, "
                                            "bernoulli, horizon, sgd, ttt, distill.")],
        preset: Annotated[str, typer.Option(help="Preset: cpu (minutes on a laptop), paper "
                                            "(the paper's sizes, GPU), or one the experiment "
                                            "lists.")] = "cpu",
        out: Annotated[Path | None, typer.Option(help="Run directory (default runs/NAME-PRESET)."
                                                 " Re-running into it resumes.")] = None,
        seed: Annotated[int, typer.Option(help="Seed (ignored when --seeds is given).")] = 0,
        seeds: Annotated[list[int] | None, typer.Option(
            help="Several seeds, e.g. --seeds 0 --seeds 1, or --seeds 0,1,2.")] = None,
        executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
        ray_address: Annotated[str | None, typer.Option(
            help="Address of an existing Ray cluster (with --executor ray).")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a preset key: --set steps=200 (value parsed as JSON).")] = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
        workers: Annotated[int, typer.Option(help="Local worker processes for independent "
                                             "units (same results as 1).")] = 1,
    ) -> None:
        """Run an experiment and write results.json, figures and report.html to the run dir."""
        seed_list = list(seeds) if seeds else [seed]
        out_dir = out or Path("runs") / f"{name}-{preset}"
        results = run_experiment(name, preset, out_dir, seed_list, executor, ray_address,
                                 parse_key_values(set_, "--set"), progress, workers)
        _print_summary(name, results, out_dir)

    @app.command("demo")
    def demo_cmd(
        out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Run the main job end to end at its smallest size and print the key numbers."""
        from lmcoverage.demo import DEMO_EXPERIMENT, DEMO_PRESET

        results = run_experiment(DEMO_EXPERIMENT, DEMO_PRESET, out, [0], progress=progress)
        _print_summary(DEMO_EXPERIMENT, results, out)
