"""Output helpers shared by the commands: table formats, ``--out FILE``, and ``--device auto``.

A command that prints a table takes ``--format`` (what goes to stdout: a table readable at 80
columns, or csv / tsv / json for scripts) and ``--out FILE`` (the same data written to FILE in
the format its suffix names: .csv, .tsv or .json). Use them like this::

    def my_cmd(..., fmt: FormatOption = None, out: OutOption = None, device: DeviceOption = "auto"):
        check_output(fmt, out)                 # before any expensive work
        dev = resolve_device(device)           # prints "device: cpu"
        ...
        emit(rows, fmt, out, title="...", payload={...})   # payload: the JSON form (optional)

"wrote FILE" goes to stderr (and ``device: NAME`` too when ``--format`` is csv/tsv/json), so
``lmcoverage profile s.parquet --format csv > p.csv`` gives a clean file.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmcoverage.commands._options import is_number
from lmcoverage.errors import EnvError, InputError

if TYPE_CHECKING:
    from rich.table import Table


class Format(StrEnum):
    """Output formats of a table."""

    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"


FILE_FORMATS = {".csv": Format.csv, ".tsv": Format.tsv, ".json": Format.json}

FormatOption = Annotated[Format | None, typer.Option(
    "--format", help="What to print: table (default), csv, tsv or json.")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Also write the numbers to FILE; the suffix picks the format "
                  "(.csv, .tsv, .json).")]
WideOption = Annotated[bool, typer.Option(
    "--wide", help="Print the table in one piece however wide (default: split to fit the "
                   "terminal, names and numbers whole).")]
DeviceOption = Annotated[str, typer.Option(
    "--device", help="Torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:1.")]
BatchSizeOption = Annotated[str, typer.Option(
    "--batch-size", help="Sequences per forward pass, or auto (default): a token budget per "
                         "pass that halves and retries when the GPU runs out of memory.")]
DtypeOption = Annotated[str, typer.Option(
    "--dtype", help="Weights' dtype: float32 (default: exact), bfloat16, float16 or auto (the "
                    "checkpoint's own). Log-probabilities are summed in float32/float64 "
                    "whatever it is.")]


def parse_batch_size(text: str) -> int | str:
    """``--batch-size``: ``"auto"`` or a positive integer; else an :class:`InputError`."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--batch-size {text!r}: give a positive integer or auto")
    return int(value)


def file_format(out: Path) -> Format:
    """The format of ``--out`` from its suffix; another suffix is an :class:`InputError`."""
    fmt = FILE_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {out}: use a .csv, .tsv or .json file name")
    return fmt


def check_output(out: Path | None, inputs: dict[str, Path | None] | None = None) -> None:
    """Refuse a bad ``--out`` (suffix, an existing directory, one of the ``inputs``: option
    name -> path) before any work."""
    from lmcoverage.io import check_output_path

    if out is None:
        return
    file_format(out)
    check_output_path(out, (), inputs)


def render(rows: list[dict[str, Any]], fmt: Format, payload: object = None,
           title: str | None = None, width: int | None = None, wide: bool = False) -> str:
    """``rows`` (one dict per row, same keys) as text in ``fmt``.

    ``payload`` is the JSON form (default: ``rows``); numbers in csv/tsv keep full precision.
    """
    if fmt is Format.json:
        from lmcoverage.io import to_jsonable

        return json.dumps(to_jsonable(rows if payload is None else payload), indent=2) + "\n"
    if fmt in (Format.csv, Format.tsv):
        buffer = io.StringIO()
        columns = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n",
                                delimiter="," if fmt is Format.csv else "\t")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    return rich_table_text(rows, title, width, wide)


def cell(value: object) -> str:
    """A table cell: floats with 4 significant digits, everything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


#: Columns repeated in every part of a table split to fit the width (after the first column).
KEY_COLUMNS = ("model", "group", "k", "N", "n", "selector", "method", "metric")


def rich_table_text(rows: list[dict[str, Any]], title: str | None = None,
                    width: int | None = None, wide: bool = False) -> str:
    """A rich table of ``rows`` that fits ``width`` columns (default: the terminal).

    Cells are never cut or wrapped: a candidate's full name stays on one line and every
    number (an interval too) stays whole. When the columns do not fit side by side, the table
    is split into parts, each with the first column (and the :data:`KEY_COLUMNS` present)
    followed by as many other columns as fit; when even one column does not fit beside them,
    each row becomes its own two-column block. ``wide``: one table however wide.
    """
    from rich.console import Console

    limit = Console(width=width, file=io.StringIO()).width
    columns = list(dict.fromkeys(key for row in rows for key in row))
    body = [[cell(row.get(c)) for c in columns] for row in rows]
    keys = [0] + [j for j, c in enumerate(columns) if j > 0 and c in KEY_COLUMNS]
    parts: list[list[int]] = [[]]
    for j in (j for j in range(len(columns)) if j not in keys):
        if parts[-1] and _needed(columns, body, [*keys, *parts[-1], j]) > limit:
            parts.append([])
        parts[-1].append(j)
    tables = [(columns, body)] if wide or len(parts) == 1 else [
        ([columns[j] for j in [*keys, *part]], [[r[j] for j in [*keys, *part]] for r in body])
        for part in parts]
    unit = "part"
    if not wide and any(_needed(h, b, list(range(len(h)))) > limit for h, b in tables):
        tables = [(["field", "value"], [[k, cell(v)] for k, v in row.items()]) for row in rows]
        unit = "row"
    needed = max(_needed(h, b, list(range(len(h)))) for h, b in tables)
    console = Console(width=max(limit, needed) if wide else limit, file=io.StringIO())
    for k, (header, cells) in enumerate(tables):
        label = f" [{unit} {k + 1}/{len(tables)}]" if len(tables) > 1 and title else ""
        console.print(_build(header, cells, f"{title}{label}" if title else None,
                             wrap=unit == "row"))
    return console.file.getvalue()  # type: ignore[attr-defined]


def prose_table_text(rows: list[dict[str, Any]], title: str | None = None,
                     width: int | None = None) -> str:
    """One rich table of ``rows`` in ``width`` columns (default: the terminal) whose cells
    after the first column wrap at spaces: for rows of words (``run --list``), where the rule
    of :func:`rich_table_text` that cells never wrap (numbers, candidate names) would print
    one block per row."""
    from rich.console import Console

    columns = list(dict.fromkeys(key for row in rows for key in row))
    body = [[cell(row.get(c)) for c in columns] for row in rows]
    console = Console(width=width, file=io.StringIO())
    console.print(_build(columns, body, title, wrap=True))
    return console.file.getvalue()  # type: ignore[attr-defined]


def _needed(header: list[str], body: list[list[str]], columns: list[int]) -> int:
    """Characters a table of ``columns`` needs with every header and cell on one line."""
    widths = [max([len(header[j]), *(len(r[j]) for r in body)]) for j in columns]
    return sum(widths) + 3 * len(columns) + 1


def _build(header: list[str], body: list[list[str]], title: str | None,
           wrap: bool = False) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=None if title is None else Text(title), title_justify="left")
    for j, name in enumerate(header):
        numeric = j > 0 and all(is_number(r[j]) or not r[j] for r in body)
        table.add_column(Text(name), justify="right" if numeric else "left",
                         no_wrap=not (wrap and j > 0), overflow="fold")
    for row in body:  # Text: a name with [brackets] is not rich markup
        table.add_row(*(Text(c) for c in row))
    return table


def emit(rows: list[dict[str, Any]], fmt: Format | None, out: Path | None,
         title: str | None = None, payload: object = None,
         display: list[dict[str, Any]] | None = None, wide: bool = False) -> None:
    """Print ``rows`` in ``fmt`` (default table) and write them to ``out`` if given.

    ``payload`` is the JSON form (default ``rows``); ``display`` the rows of the printed table
    (default ``rows``), e.g. with an interval folded into one cell; ``wide``: the table in one
    piece however wide (see :func:`rich_table_text`).
    """
    from lmcoverage.io import atomic_write_text

    fmt = fmt or Format.table
    shown = display if fmt is Format.table and display is not None else rows
    sys.stdout.write(render(shown, fmt, payload, title, wide=wide))
    if out is not None:
        atomic_write_text(out, render(rows, file_format(out), payload, title))
        print(f"wrote {out}", file=sys.stderr)


def resolve_device(device: str = "auto", announce: bool = True, err: bool = False) -> str:
    """``"auto"`` -> ``"cuda"`` if CUDA is available, else ``"cpu"``; check an explicit device.

    A CUDA device without CUDA is an :class:`~lmcoverage.errors.EnvError` (exit 1); an unknown
    device string is an :class:`~lmcoverage.errors.InputError`. Prints ``device: NAME`` when
    ``announce`` (on stdout, or stderr with ``err`` - when stdout carries csv/json data).
    """
    import torch

    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device {device!r}: not a torch device (auto, cpu, cuda, "
                         "cuda:1)") from exc
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {device!r}: models run on cpu, cuda or mps, not "
                         f"{parsed.type}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise EnvError(f"--device {device}: CUDA is not available on this machine "
                           f"(torch {torch.__version__}); use --device cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise EnvError(f"--device {device}: this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s)")
    if announce:
        print(f"device: {name}", file=sys.stderr if err else sys.stdout)
    return name
