"""The ``lmcoverage`` command line.

Each command group lives in :mod:`lmcoverage.commands` and registers itself on the one Typer
app here. User errors (``ValueError``, bad flags, missing files) become one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from lmcoverage.commands import experiments, metrics, models, select, tasks

app = typer.Typer(
    name="lmcoverage",
    help=(
        "Coverage profiles, Pass@N and coverage-based checkpoint selection for language models, "
        "and the experiments of 'The Coverage Principle' (arXiv 2510.15020)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (metrics, tasks, models, select, experiments):
    module.register(app)


def _fail(message: str) -> int:
    """Print one line ``error: message`` on stderr and return exit code 2."""
    one_line = " ".join(str(message).split())
    print(f"lmcoverage: error: {one_line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="lmcoverage", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:
        # Help was printed: not an error.
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail("aborted")
    except click.ClickException as exc:
        return _fail(exc.format_message())
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
            NotADirectoryError, PermissionError, KeyError) as exc:
        message = exc.args[0] if exc.args else type(exc).__name__
        return _fail(str(message))
    except KeyboardInterrupt:
        return _fail("interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
