"""CLI: ``lmcoverage demo``: the main job end to end at its smallest size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmcoverage.commands.run import print_summary, run_experiment


def demo_cmd(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run the main job end to end at its smallest size and print the key numbers."""
    from lmcoverage.demo import DEMO_EXPERIMENT, DEMO_PRESET

    results = run_experiment(DEMO_EXPERIMENT, DEMO_PRESET, out, [0], progress=progress)
    print_summary(DEMO_EXPERIMENT, results, out)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo_cmd)
