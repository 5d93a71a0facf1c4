"""The project's own error types.

:class:`InputError` is bad user input (a value out of range, a malformed file, an unknown
name). It subclasses :class:`ValueError`, so library callers catching ``ValueError`` keep
working; the command line turns it (and only it) into one line on stderr and exit code 2.
Any other exception reaching the command line is treated as a bug: traceback, exit code 1.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the input and what is wrong with it."""
