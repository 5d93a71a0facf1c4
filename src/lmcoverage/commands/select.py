"""CLI: ``lmcoverage select SCORES.parquet --method tournament --n 8``.

Reads a ScoreTable written by ``lmcoverage score``, runs a selector from
:mod:`lmcoverage.select`, prints the ranking (rich table), the pick and the runner-up margin,
and with ``--out FILE.json`` writes the whole :class:`~lmcoverage.select.Selection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmcoverage.commands._output import (
    DeviceOption,
    Format,
    FormatOption,
    OutOption,
    WideOption,
    check_output,
    emit,
    resolve_device,
)
from lmcoverage.errors import InputError
from lmcoverage.select.registry import SELECTORS, get_selector

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.select import Selection


def run_selection(
    table: ScoreTable,
    method: str,
    n: float,
    a: float = 0.5,
    onpolicy: ArrayLike | None = None,
) -> Selection:
    """Run the selector called ``method`` (:data:`~lmcoverage.select.registry.SELECTORS`)."""
    selector = get_selector(method)
    if selector.needs_samples and onpolicy is None:
        raise InputError(f"--method {method}: needs on-policy estimates (give --samples)")
    return selector(table, n=n, a=a, onpolicy=onpolicy)


def selection_rows(selection: Selection, method: str, top: int) -> list[dict[str, Any]]:
    """The first ``top`` rows of the ranking: rank, model, statistic, hardest opponent."""
    label = get_selector(method).label
    rows = []
    for rank, idx in enumerate(selection.ranking[:top], start=1):
        row: dict[str, Any] = {"rank": rank, "model": selection.names[idx],
                               label: float(selection.statistic[idx])}
        opponent = selection.hardest_opponent(idx)
        if opponent is not None:
            row["hardest opponent"] = selection.names[opponent]
        rows.append(row)
    return rows


def print_selection(selection: Selection, method: str, top: int,
                    fmt: Format | None = None, out: Path | None = None,
                    wide: bool = False) -> None:
    """Print the ranking (``fmt``), the pick and the runner-up margin; write ``out``."""
    params = ", ".join(f"{k}={v:g}" for k, v in selection.params.items()
                       if isinstance(v, int | float))
    title = f"lmcoverage select: {method}" + (f" ({params})" if params else "")
    emit(selection_rows(selection, method, top), fmt, out, title=title,
         payload=selection.to_dict(), wide=wide)
    # The verdict goes with the table on stdout, or to stderr when stdout is data.
    err = fmt not in (None, Format.table)
    if len(selection.ranking) > top:
        typer.echo(f"({len(selection.ranking) - top} more not shown; --top to change)", err=err)
    typer.echo(f"pick: {selection.name}", err=err)
    if selection.runner_up is not None:
        typer.echo(f"runner-up: {selection.names[selection.runner_up]} "
                   f"(margin {selection.margin:.4g})", err=err)
    if len(selection.ties) > 1:
        typer.echo(f"tied with the pick: {', '.join(selection.ties[1:])} "
                   f"(broken by {selection.params['tie_break']})", err=err)


def check_options(method: str, n: float, a: float, samples: int, top: int,
                  data: Path | None, model: list[str] | None) -> None:
    """Refuse bad option values before reading the table or sampling anything."""
    import math

    from lmcoverage.select._inputs import threshold_n

    get_selector(method, "--method")
    threshold_n(n, "--n")
    if top < 1:
        raise InputError(f"--top: must be >= 1, got {top}")
    if not get_selector(method).needs_samples:
        return
    if not (math.isfinite(a) and a >= 0):
        raise InputError(f"--a: the offset exponent must be a finite number >= 0, got {a:g}")
    if samples < 1:
        raise InputError(f"--samples: must be >= 1, got {samples}")
    if data is None or not model:
        raise InputError(f"--method {method}: give --data (the held-out JSONL) and --model "
                         "(the checkpoints) so every candidate can be sampled")


def offset_theorem_note(n: float, a: float) -> str | None:
    """A one-line note when Thm 6.4's condition (a > 0 and N^(1-2a) >= 8) fails, else None."""
    if a > 0 and n ** (1.0 - 2.0 * a) >= 8.0:
        return None
    return (f"note: N = {n:g}, a = {a:g} is outside Thm 6.4's condition (a > 0 and "
            f"N^(1-2a) >= 8; here N^(1-2a) = {n ** (1.0 - 2.0 * a):.3g}): the offset "
            "tournament ran as a heuristic, without the theorem's guarantee")


def _normaliser_note(table: ScoreTable, selection: Selection, n: float) -> None:
    """For a table from ``lmcoverage reference``: one stderr line with Cov_N of the pick and
    the runner-up at both ends of p(x)'s interval (how much is normaliser noise)."""
    from lmcoverage.metrics.normaliser import table_normaliser_range

    ranges = table_normaliser_range(table, [n])
    if ranges is None:
        return
    shown = [selection.index] + ([selection.runner_up] if selection.runner_up is not None
                                 else [])
    parts = [f"{selection.names[j]} {ranges[0][table.models.index(selection.names[j]), 0]:.3f}"
             f"..{ranges[1][table.models.index(selection.names[j]), 0]:.3f}" for j in shown]
    typer.echo(f"Cov_{n:g} with p(x) at both ends of its 95% interval (normaliser noise): "
               + ", ".join(parts), err=True)


def select_cmd(
    scores: Annotated[Path, typer.Argument(
        help="Score table (Parquet) from lmcoverage score.")],
    method: Annotated[str, typer.Option(
        metavar="NAME",
        help="; ".join(f"{s.name}: {s.description}" for s in SELECTORS.values())
        + ".")] = "tournament",
    n: Annotated[float, typer.Option("--n", help="Coverage threshold N >= 1.")] = 8.0,
    a: Annotated[float, typer.Option(
        "--a", help="Offset exponent a >= 0 (offset weight 2 N^a; --method offset).")] = 0.5,
    samples: Annotated[int, typer.Option(
        help="--method offset: responses sampled per held-out prompt from each "
             "candidate.")] = 16,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="--method offset: the model directories (or quoted globs) given "
                        "to lmcoverage score: --model A B C.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="--method offset: the held-out JSONL the table was scored on.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(
        help="--method offset: longest sampled response (default: longest held-out "
             "response).")] = None,
    seed: Annotated[int, typer.Option(help="--method offset: sampling seed.")] = 0,
    device: DeviceOption = "auto",
    trust_remote_code: Annotated[bool, typer.Option(
        help="Allow checkpoints' own modelling code (off by default).")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress (--method offset).")] = True,
    fmt: FormatOption = None,
    out: OutOption = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", hidden=True, help="Deprecated: use --out FILE.json.")] = None,
    top: Annotated[int, typer.Option(help="Rows of the ranking to print.")] = 20,
    wide: WideOption = False,
) -> None:
    """Choose a checkpoint by coverage and print the ranking that justifies the pick."""
    from lmcoverage.commands._notes import table_notes
    from lmcoverage.scoretable import ScoreTable

    if json_out is not None:
        if out is not None:
            raise InputError("--json is the old name of --out FILE.json; give only --out")
        out = json_out
    check_output(out, {"SCORES": scores, "--data": data})
    check_options(method, n, a, samples, top, data, model)
    table = ScoreTable.read_parquet(scores)
    onpolicy = None
    if get_selector(method).needs_samples:
        from lmcoverage.select.sampling import onpolicy_by_sampling

        assert data is not None and model is not None
        onpolicy = onpolicy_by_sampling(
            table, data, model, n=n, samples=samples,
            max_new_tokens=max_new_tokens, seed=seed,
            device=resolve_device(device, err=fmt not in (None, Format.table)),
            trust_remote_code=trust_remote_code,
            progress=progress,
        )
    selection = run_selection(table, method, n, a, onpolicy)
    note = offset_theorem_note(n, a) if method == "offset" else None
    if note:
        typer.echo(note, err=True)
    print_selection(selection, method, top, fmt, out, wide)
    table_notes(table, [n] if table.has("loglik_data") else None, show_provenance=False)
    _normaliser_note(table, selection, n)


def register(app: typer.Typer) -> None:
    """Add ``select`` to ``app``."""
    app.command("select")(select_cmd)
