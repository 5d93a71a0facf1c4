"""The ``lmcoverage`` command line.

Each command group lives in :mod:`lmcoverage.commands` and registers itself on the one Typer
app here. :func:`main` keeps the exit-code contract:

- 0: done;
- 2: bad input (:class:`~lmcoverage.errors.InputError`, a bad flag): one line on stderr;
- 1: environment (an ``OSError``: path and the OS reason; a device that is not there) - one
  line - or a bug in lmcoverage: the traceback and a line asking to report it;
- 130 / 143: interrupted by SIGINT (Ctrl-C) / SIGTERM: one line saying what was interrupted
  and, for a command that resumes, the command that resumes it.
"""

from __future__ import annotations

import shlex
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from typer import _click

from lmcoverage.commands import (
    compare,
    convert,
    demo,
    imports,
    passk,
    profile,
    reference,
    run,
    sample,
    score,
    select,
    task,
    train,
    verify,
)
from lmcoverage.commands._options import use_multi_value_options
from lmcoverage.errors import EnvError, InputError, Interrupted

app = typer.Typer(
    name="lmcoverage",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (profile, passk, train, score, sample, reference, convert, select, run, demo,
               verify, compare, task, imports):
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
    verbose: bool = typer.Option(False, "--verbose",
                                 help="Show the log lines of Ray (--executor ray)."),
) -> None:
    """Coverage profiles, Pass@N and coverage-based checkpoint selection for language models,
    and the experiments of 'The Coverage Principle' (arXiv 2510.15020)."""
    if verbose:
        import os

        os.environ["LMCOVERAGE_VERBOSE"] = "1"  # read by lmcoverage.executors.RayExecutor


#: Commands that pick up where they stopped, and the flag (if any) that asks them to.
RESUMABLE = {"train": "--resume", "run": "", "demo": ""}
#: Commands that resume from the finished shards in OUT.shards/ (--shards, --executor ray).
SHARDED = ("sample", "score", "verify")


def _say(kind: str, message: str) -> None:
    one_line = " ".join(str(message).split())
    print(f"lmcoverage: {kind}: {one_line}", file=sys.stderr)


def _os_error_line(exc: OSError) -> str:
    reason = exc.strerror or (exc.args[0] if exc.args else type(exc).__name__)
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return ": ".join([*(str(p) for p in paths), str(reason)])


def is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input (exit 2, one line) rather than a bug (traceback, exit 1):
    only the project's :class:`InputError` is."""
    return isinstance(exc, InputError)


def _command_words(args: list[str]) -> list[str]:
    """The command path of ``args`` (``["task", "export"]``), options skipped."""
    words: list[str] = []
    commands = getattr(typer.main.get_command(app), "commands", {})
    for token in args:
        if token not in commands:
            break
        words.append(token)
        commands = getattr(commands[token], "commands", {})
    return words


def _interrupted_line(signum: int, args: list[str]) -> str:
    words = _command_words(args)
    what = " ".join(words) or "lmcoverage"
    name = signal.Signals(signum).name
    kept = _kept_shards(args) if words and words[0] in SHARDED else 0
    if kept:
        return (f"{what} interrupted by {name}; {kept} finished shard(s) are kept; resume "
                f"with: {shlex.join(['lmcoverage', *args])}")
    if words and words[0] in RESUMABLE:
        flag = RESUMABLE[words[0]]
        again = [*args, flag] if flag and flag not in args else list(args)
        return (f"{what} interrupted by {name}; files already finished are kept; resume with: "
                f"{shlex.join(['lmcoverage', *again])}")
    return f"{what} interrupted by {name}; no output file was written"


def _kept_shards(args: list[str]) -> int:
    """How many finished shards ``--out OUT`` of ``args`` has in ``OUT.shards/``."""
    from pathlib import Path

    from lmcoverage.sharding import shard_dir

    out = next((a.partition("=")[2] for a in args if a.startswith("--out=")), None)
    if out is None and "--out" in args[:-1]:
        out = args[args.index("--out") + 1]
    return len(list(shard_dir(Path(out)).glob("shard-*"))) if out else 0


@contextmanager
def _signals_raise_interrupted() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` while the command runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    saved = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            saved[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def _interrupt_signal(exc: BaseException) -> int | None:
    """The signal of an :class:`Interrupted` (or SIGINT for a ``KeyboardInterrupt``) in the
    chain of ``exc``: Python wraps an exception raised in some places (a class body's
    ``__set_name__`` while a module imports, say) in another one, the interrupt as its cause."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, Interrupted):
            return link.signum
        if isinstance(link, KeyboardInterrupt):
            return int(signal.SIGINT)
        link = link.__cause__ or link.__context__
    return None


def _describe_presets(command: _click.Command) -> None:
    """``run --help``: name every experiment's presets (imports the experiments, so only here)."""
    run_command = getattr(command, "commands", {})["run"]
    for param in run_command.params:
        if param.name == "preset":
            param.help = run.preset_help()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = use_multi_value_options(typer.main.get_command(app))
    if "--help" in args and _command_words(args) == ["run"]:
        _describe_presets(command)
    try:
        with _signals_raise_interrupted():
            try:
                code = command.main(args=args, prog_name="lmcoverage", standalone_mode=False)
            finally:
                from lmcoverage.sharding import unlock_output

                unlock_output()  # output locks last as long as the command
    except typer.Exit as exc:
        return int(exc.exit_code)
    except Interrupted as exc:
        print(f"lmcoverage: {_interrupted_line(exc.signum, args)}", file=sys.stderr)
        return 128 + exc.signum
    except (KeyboardInterrupt, typer.Abort):
        print(f"lmcoverage: {_interrupted_line(signal.SIGINT, args)}", file=sys.stderr)
        return 128 + signal.SIGINT
    except _click.exceptions.NoArgsIsHelpError:
        return 0  # help was printed
    except _click.exceptions.ClickException as exc:
        _say("error", exc.format_message())
        return exc.exit_code
    except UnicodeDecodeError as exc:  # bad input, as lmcoverage.errors.FileDecodeError
        _say("error", f"cannot read input as UTF-8 text: {exc.reason} at byte {exc.start}")
        return 2
    except OSError as exc:
        _say("error", _os_error_line(exc))
        return 1
    except EnvError as exc:
        _say("error", str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        signum = _interrupt_signal(exc)
        if signum is not None:  # the interrupt, wrapped on its way up
            print(f"lmcoverage: {_interrupted_line(signum, args)}", file=sys.stderr)
            return 128 + signum
        if is_input_error(exc):
            _say("error", str(exc.args[0]) if exc.args else type(exc).__name__)
            return 2
        traceback.print_exc()
        _say("internal error", f"{type(exc).__name__} in `lmcoverage {' '.join(args[:1])}` "
             "is a bug in lmcoverage; please report it with the command and the traceback "
             "above")
        return 1
    if code == 128 + signal.SIGINT:  # typer returns a KeyboardInterrupt as exit code 130
        print(f"lmcoverage: {_interrupted_line(signal.SIGINT, args)}", file=sys.stderr)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
