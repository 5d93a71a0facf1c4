"""The project's own error types.

:class:`InputError` is bad user input (a value out of range, a malformed file, an unknown
name). It subclasses :class:`ValueError`, so library callers catching ``ValueError`` keep
working; the command line turns it (and only it) into one line on stderr and exit code 2.
Any other exception reaching the command line is treated as a bug: traceback, exit code 1.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the input and what is wrong with it."""


class EnvError(RuntimeError):
    """The machine cannot do what was asked (e.g. ``--device cuda`` without CUDA): exit 1."""


class FileDecodeError(InputError):
    """An input file that is not valid text in its encoding: bad input (exit 2), the message
    names the file and the line."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while a command ran (raised by the CLI's signal handlers).

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` does not swallow it,
    and cleanup (``finally``, :func:`lmcoverage.io.atomic_path`) runs on the way out.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
