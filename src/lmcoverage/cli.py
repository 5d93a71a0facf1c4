"""The ``lmcoverage`` command line.

Each command group lives in :mod:`lmcoverage.commands` and registers itself on the one Typer
app here. User errors (``ValueError``, bad flags, missing files) become one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from lmcoverage.commands import experiments, metrics, models, select, tasks

app = typer.Typer(
    name="lmcoverage",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (metrics, tasks, models, select, experiments):
    module.register(app)


def _print_version(value: bool) -> None:
    if value:
        from lmcoverage import __version__

        print(f"lmcoverage {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Coverage profiles, Pass@N and coverage-based checkpoint selection for language models,
    and the experiments of 'The Coverage Principle' (arXiv 2510.15020)."""


#: Options that take several values (``--n 2 4 8``); :func:`expand_multi_value` rewrites them
#: into the repeated form Click understands (``--n 2 --n 4 --n 8``). Commas also separate.
MULTI_VALUE_OPTIONS = frozenset({"--n", "--k", "--model", "--seeds", "--horizons"})


def expand_multi_value(argv: list[str]) -> list[str]:
    """Rewrite ``--opt a b c`` and ``--opt a,b,c`` into ``--opt a --opt b --opt c``."""
    out: list[str] = []
    current: str | None = None  # a multi-value option still taking values
    taken = 0  # values taken by ``current`` so far

    def close() -> None:
        if current is not None and taken == 0:
            out.append(current)  # no value: let Click report it

    for token in argv:
        if token.startswith("-") and not _is_number(token):
            close()
            current, taken = None, 0
            name, eq, value = token.partition("=")
            if name in MULTI_VALUE_OPTIONS and not eq:
                current = name
            elif name in MULTI_VALUE_OPTIONS:
                out += [x for v in value.split(",") if v for x in (name, v)]
            else:
                out.append(token)
        elif current is not None:
            values = [v for v in token.split(",") if v]
            out += [x for v in values for x in (current, v)]
            taken += len(values)
        else:
            out.append(token)
    close()
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _fail(message: str) -> int:
    """Print one line ``error: message`` on stderr and return exit code 2."""
    one_line = " ".join(str(message).split())
    print(f"lmcoverage: error: {one_line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    command = typer.main.get_command(app)
    args = expand_multi_value(sys.argv[1:] if argv is None else list(argv))
    try:
        command.main(args=args, prog_name="lmcoverage", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _fail("aborted")
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 0  # help was printed
        return _fail(exc.format_message() if hasattr(exc, "format_message") else str(exc))
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
            NotADirectoryError, PermissionError, KeyError) as exc:
        message = exc.args[0] if exc.args else type(exc).__name__
        return _fail(str(message))
    except KeyboardInterrupt:
        return _fail("interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
