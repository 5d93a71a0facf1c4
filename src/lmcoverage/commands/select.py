"""CLI: ``lmcoverage select SCORES.parquet --method tournament --n 8``.

Reads a ScoreTable written by ``lmcoverage score``, runs a selector from
:mod:`lmcoverage.select`, prints the ranking (rich table), the pick and the runner-up margin,
and optionally writes the whole :class:`~lmcoverage.select.Selection` as JSON.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.select import Selection


class Method(StrEnum):
    """Selection methods of ``lmcoverage select``."""

    tournament = "tournament"
    offset = "offset"
    cross_entropy = "cross-entropy"
    kl = "kl"
    oracle = "oracle"


STATISTIC_LABEL = {
    Method.tournament: "worst hatCov_N",
    Method.offset: "worst offset score",
    Method.cross_entropy: "cross-entropy (nats)",
    Method.kl: "KL (nats)",
    Method.oracle: "Cov_N",
}


def run_selection(
    table: ScoreTable,
    method: Method,
    n: float,
    a: float = 0.5,
    onpolicy: ArrayLike | None = None,
) -> Selection:
    """Dispatch to the selector for ``method`` on ``table``."""
    from lmcoverage import select

    if method is Method.tournament:
        return select.simple_tournament(table, n)
    if method is Method.offset:
        if onpolicy is None:
            raise ValueError("--method offset: needs on-policy estimates (give --samples)")
        return select.offset_tournament(table, n, a, onpolicy)
    if method is Method.cross_entropy:
        return select.min_cross_entropy(table)
    if method is Method.kl:
        return select.min_kl(table)
    return select.oracle_coverage(table, n=n)


def print_selection(selection: Selection, method: Method, top: int) -> None:
    """Print the ranking table, the pick and the runner-up margin."""
    from rich.console import Console
    from rich.table import Table

    params = ", ".join(f"{k}={v:g}" for k, v in selection.params.items())
    table = Table(title=f"lmcoverage select: {method.value}" + (f" ({params})" if params else ""))
    table.add_column("rank", justify="right")
    table.add_column("model")
    table.add_column(STATISTIC_LABEL[method], justify="right")
    if selection.contest is not None:
        table.add_column("hardest opponent")
    for rank, idx in enumerate(selection.ranking[:top], start=1):
        row = [str(rank), selection.names[idx], f"{selection.statistic[idx]:.4g}"]
        opponent = selection.hardest_opponent(idx)
        if opponent is not None:
            row.append(selection.names[opponent])
        table.add_row(*row)
    console = Console()
    console.print(table)
    if len(selection.ranking) > top:
        console.print(f"({len(selection.ranking) - top} more not shown; --top to change)")
    console.print(f"pick: {selection.name}")
    if selection.runner_up is not None:
        console.print(f"runner-up: {selection.names[selection.runner_up]} "
                      f"(margin {selection.margin:.4g})")


def register(app: typer.Typer) -> None:
    """Add ``select`` to ``app``."""

    @app.command("select", context_settings={"allow_extra_args": True})
    def select_cmd(
        ctx: typer.Context,
        scores: Annotated[Path, typer.Argument(
            help="Score table (Parquet) from lmcoverage score.")],
        method: Annotated[Method, typer.Option(
            help="tournament (Eq. 29, needs only held-out log-likelihoods), offset (Eq. 32, "
                 "also samples from every candidate), cross-entropy, kl or oracle (the last two "
                 "need pi_D's log-likelihoods in the table).")] = Method.tournament,
        n: Annotated[float, typer.Option("--n", help="Coverage threshold N >= 1.")] = 8.0,
        a: Annotated[float, typer.Option(
            "--a", help="Offset exponent a >= 0 (offset weight 2 N^a; --method offset).")] = 0.5,
        samples: Annotated[int, typer.Option(
            help="--method offset: responses sampled per held-out prompt from each "
                 "candidate.")] = 16,
        model: Annotated[list[str] | None, typer.Option(
            "--model", help="--method offset: the model directories (or quoted globs) given "
                            "to lmcoverage score; more may follow.")] = None,
        data: Annotated[Path | None, typer.Option(
            help="--method offset: the held-out JSONL the table was scored on.")] = None,
        max_new_tokens: Annotated[int | None, typer.Option(
            help="--method offset: longest sampled response (default: longest held-out "
                 "response).")] = None,
        seed: Annotated[int, typer.Option(help="--method offset: sampling seed.")] = 0,
        device: Annotated[str, typer.Option(
            help="--method offset: torch device (cpu, cuda, cuda:1).")] = "cpu",
        trust_remote_code: Annotated[bool, typer.Option(
            help="Allow checkpoints' own modelling code (off by default).")] = False,
        progress: Annotated[bool, typer.Option(help="Show progress (--method offset).")] = True,
        json_out: Annotated[Path | None, typer.Option(
            "--json", help="Also write the selection (ranking, matrices) as JSON here.")] = None,
        top: Annotated[int, typer.Option(help="Rows of the ranking to print.")] = 20,
    ) -> None:
        """Choose a checkpoint by coverage and print the ranking that justifies the pick."""
        from lmcoverage.io import atomic_write_json
        from lmcoverage.scoretable import ScoreTable

        extra = list(ctx.args)
        if extra and (not model or any(a.startswith("-") for a in extra)):
            raise ValueError(f"unexpected argument {extra[0]!r}")
        if top < 1:
            raise ValueError(f"--top: must be >= 1, got {top}")
        if method is Method.offset and (data is None or not model):
            raise ValueError("--method offset: give --data (the held-out JSONL) and --model "
                             "(the checkpoints) so every candidate can be sampled")
        table = ScoreTable.read_parquet(scores)
        onpolicy = None
        if method is Method.offset:
            from lmcoverage.select.sampling import onpolicy_by_sampling

            assert data is not None and model is not None
            onpolicy = onpolicy_by_sampling(
                table, data, [*model, *extra], n=n, samples=samples,
                max_new_tokens=max_new_tokens, seed=seed,
                device=device, trust_remote_code=trust_remote_code, progress=progress,
            )
        selection = run_selection(table, method, n, a, onpolicy)
        print_selection(selection, method, top)
        if json_out is not None:
            atomic_write_json(json_out, selection.to_dict())
            typer.echo(f"wrote {json_out}")
