"""The rich progress bar used by long loops (scoring, sampling, training).

One column layout everywhere: ``description | bar | done/total | extra text columns | elapsed |
remaining``. The description says what is counted ("pre-train steps", "prompts scored"). A bar
draws nothing when the output is not a terminal (a log file, a pipe, CI), so logs stay clean.
``rich`` is imported lazily, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def standard_progress(*extra: str, transient: bool = True) -> Progress:
    """A ``rich.progress.Progress`` with the standard columns.

    ``extra`` are ``TextColumn`` format strings (e.g. ``"loss {task.fields[loss]}"``) placed
    after the ``done/total`` count; ``transient`` removes the bar when it finishes. Disabled
    (prints nothing) when stdout is not a terminal.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(text) for text in extra),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        disable=not Console().is_terminal,
    )
