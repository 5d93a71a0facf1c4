"""Saving matplotlib figures atomically (PNG), with the Agg backend forced for headless runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.5,
               height: float = 3.5) -> tuple[Figure, np.ndarray]:
    """Return ``(fig, axes)`` from matplotlib's object API (no global pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save a matplotlib ``Figure`` as PNG to ``path`` atomically and return the path."""
    from lmcoverage.io import atomic_path

    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return target
