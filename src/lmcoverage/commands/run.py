"""CLI: ``lmcoverage run NAME``: an experiment of the registry, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmcoverage.commands._options import parse_key_values
from lmcoverage.errors import InputError

#: ``run --preset`` help; ``lmcoverage run --help`` replaces it with :func:`preset_help`.
PRESET_HELP = "Preset of the experiment (lmcoverage run --list shows each one's presets)."


def run_experiment(
    name: str,
    preset: str,
    out: Path,
    seeds: list[int] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """Run experiment ``name`` into ``out`` (resuming a matching run) and return its results.

    ``seeds`` None runs the preset's default seeds (``registry.default_seeds``). ``threads``
    is torch's thread count inside the run and its units (experiments are sized and measured
    on one); the caller's count is restored afterwards.
    """
    from lmcoverage.executors import make_executor
    from lmcoverage.experiments.registry import (
        RunContext,
        default_seeds,
        load_experiment,
        prepare_run_dir,
        resolve_config,
    )
    from lmcoverage.experiments.threads import check_threads, torch_threads

    module = load_experiment(name)
    if seeds is None:
        seeds = default_seeds(module, preset)
    if not seeds:
        raise InputError("--seeds: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds: duplicated seed in {seeds}")
    config = resolve_config(module, preset, overrides or {})
    ctx = RunContext(seeds=seeds, executor=make_executor(executor, ray_address, workers),
                     progress=progress, threads=check_threads(threads))
    fresh = not out.exists()
    # the thread count is part of the record: float sums, and so the numbers, depend on it, and
    # a resumed run must not mix units computed at two counts
    prepare_run_dir(out, {"experiment": name, "config": config, "seeds": seeds,
                          "threads": ctx.threads})
    try:
        with torch_threads(ctx.threads):
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


def experiment_rows() -> list[dict[str, str]]:
    """One row per experiment: name, presets with their typical times, title."""
    from lmcoverage.experiments.registry import available, load_experiment, typical_time

    rows = []
    for name in available():
        module = load_experiment(name)
        presets = ", ".join(f"{p} ({typical_time(module, p)})" for p in module.PRESETS)
        rows.append({"experiment": name, "presets (typical time)": presets,
                     "what it shows": module.TITLE})
    return rows


def preset_help() -> str:
    """``--preset`` help naming every experiment's presets (imports the experiments)."""
    from lmcoverage.experiments.registry import available, load_experiment

    listed = "; ".join(f"{name}: {', '.join(load_experiment(name).PRESETS)}"
                       for name in available())
    return f"Preset of the experiment ({listed})."


def _trend(values: list[float]) -> str:
    """``first -> min -> last`` (the minimum only when it is neither end)."""
    low = min(range(len(values)), key=lambda i: values[i])
    middle = f" -> min {values[low]:.4g}" if 0 < low < len(values) - 1 else ""
    return f"{values[0]:.4g}{middle} -> {values[-1]:.4g}"


def print_summary(name: str, results: dict[str, Any], out: Path) -> None:
    """The end of a run: the trend (KL, Cov_N over checkpoints), the key numbers (picks),
    the effect checks (value, threshold, pass/fail) and the report's path."""
    from lmcoverage.commands._output import rich_table_text
    from lmcoverage.experiments.registry import load_experiment

    module = load_experiment(name)
    if {"iterations", "kl", "cov"} <= set(results):
        typer.echo(f"over {len(results['iterations'])} checkpoints "
                   f"(iterations {results['iterations'][0]}..{results['iterations'][-1]}):")
        typer.echo(f"  KL     {_trend(results['kl'])}")
        for n, values in results["cov"].items():
            typer.echo(f"  Cov_{n:<3}{_trend(values)}")
    rows = module.summary(results) if hasattr(module, "summary") else []
    if rows:
        typer.echo(rich_table_text(rows, title=f"{name}: key numbers"), nl=False)
    checks = results.get("effect_checks") or []
    if checks:
        held = sum(bool(c["ok"]) for c in checks)
        typer.echo(f"effect checks: {held}/{len(checks)} hold")
        for c in checks:
            typer.echo(f"  [{'pass' if c['ok'] else 'FAIL'}] {c['check']}: "
                       f"value {c['value']:.4g}, threshold {c['threshold']:.4g}")
    typer.echo(f"results: {out / 'results.json'}")
    typer.echo(f"report:  {out / 'report.html'}")


def run_cmd(
    name: Annotated[str | None, typer.Argument(
        help="Experiment (lmcoverage run --list shows them with their presets).")] = None,
    preset: Annotated[str, typer.Option(help=PRESET_HELP)] = "cpu",
    list_: Annotated[bool, typer.Option(
        "--list", help="List the experiments, their presets and typical times.")] = False,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/NAME-PRESET)."
                                             " Re-running into it resumes.")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed (ignored when --seeds is given; default: the preset's seeds, 0 for "
             "most, 0..15 for figure2 --preset paper).")] = None,
    seeds: Annotated[list[int] | None, typer.Option(
        help="Several seeds: --seeds 0 1 2 or --seeds 0,1,2.")] = None,
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="Address of an existing Ray cluster (with --executor ray).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a preset key: --set steps=200 (value parsed as JSON).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    workers: Annotated[int, typer.Option(help="Local worker processes for independent "
                                         "units (same results as 1).")] = 1,
    threads: Annotated[int, typer.Option(help="Torch threads per unit of work (the "
                                         "presets are sized on 1).")] = 1,
) -> None:
    """Run an experiment and write results.json, figures and report.html to the run dir."""
    from lmcoverage.commands._output import prose_table_text

    if list_:
        typer.echo(prose_table_text(experiment_rows(), title="lmcoverage run NAME --preset "
                                    "PRESET"), nl=False)
        return
    if name is None:
        raise InputError("run: give an experiment name (lmcoverage run --list shows them)")
    seed_list = list(seeds) if seeds else None if seed is None else [seed]
    out_dir = out or Path("runs") / f"{name}-{preset}"
    results = run_experiment(name, preset, out_dir, seed_list, executor, ray_address,
                             parse_key_values(set_, "--set"), progress, workers, threads)
    print_summary(name, results, out_dir)



def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command("run")(run_cmd)
