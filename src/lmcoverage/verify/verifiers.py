"""Verifiers: the 0/1 reward r(x, y) of Best-of-N / Pass@N (Prop D.6, D.7).

A verifier is a callable ``(row, response_text) -> bool``; ``row`` is the prompt's input row (a
dict, usually with an ``answer`` field). :func:`get_verifier` builds one from a spec string:

- ``exact``: the response, stripped of surrounding whitespace, equals ``str(answer)`` stripped.
- ``number``: the last number in the response equals the answer's number. Numbers are
  optionally signed decimals; commas are thousands separators only in groups of three
  (``1,234`` is 1234, ``1,2`` is two numbers); a ``-`` right after a letter or digit is not a
  sign (``10-3`` ends with 3); a trailing full stop is not a decimal point (``is 42.``).
  Values compare exactly (``3.0`` equals ``3``). The answer is a number, or a string whose
  last number is taken the same way.
- ``regex:PATTERN``: the last match of PATTERN in the response (its first group if it has
  one, else the whole match), stripped, equals ``str(answer)`` stripped. Matching uses the
  ``regex`` package under the verifier time limit (a pattern with nested repetition can take
  exponential time on some responses).
- ``module:function``: a Python function ``(row, response_text) -> bool`` imported from an
  importable module (the current directory is searched last, after the installed packages and
  the standard library). It decides on its own whether it needs ``answer``. It is arbitrary
  code run with the user's rights; it runs in a worker process, which is stopped when one call
  exceeds the time limit. The spec and the function's signature are checked before any work.

Every verdict runs under a time limit (``timeout`` seconds, ``--verifier-timeout``, default
:data:`DEFAULT_TIMEOUT`): a sample that exceeds it is an :class:`InputError` naming the row,
not a silent ``False``; so is a verifier that raises anything (``SystemExit`` and
``KeyboardInterrupt`` included) or returns a non-bool.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

VerifierFn = Callable[[dict[str, Any], str], object]

#: Seconds one verdict may take (``--verifier-timeout``).
DEFAULT_TIMEOUT = 5.0

BUILTINS = ("exact", "number", "regex:PATTERN", "module:function")

# A number: digits with comma thousands groups or plain digits, then an optional fraction.
# Neither preceded nor followed by a digit (nor preceded by '.': '3.14.15' has no 15).
_NUMBER = re.compile(r"(?<![\d.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)")


def numbers_in(text: str) -> list[Fraction]:
    """Every number in ``text``, in order, as exact fractions (see the module docstring)."""
    out = []
    for match in _NUMBER.finditer(text):
        sign, whole, frac = match.group(1), match.group(2), match.group(3) or ""
        start = match.start()
        if sign and start > 0 and text[start - 1].isalnum():
            sign = ""  # '10-3': a minus between operands, not a sign
        out.append(Fraction(sign + whole.replace(",", "") + frac))
    return out


def last_number(text: str) -> Fraction | None:
    """The last number in ``text``, or None if it has none."""
    found = numbers_in(text)
    return found[-1] if found else None


def answer_number(answer: object) -> Fraction | None:
    """The answer's number: an int/float as is, a string's last number, else None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return Fraction(answer)
    if isinstance(answer, float):
        return Fraction(answer) if answer == answer and abs(answer) != float("inf") else None
    if isinstance(answer, str):
        return last_number(answer)
    return None


@dataclass(frozen=True)
class Verifier:
    """A named verifier. ``needs_answer``: rows must carry ``answer`` (checked up front)."""

    spec: str
    fn: VerifierFn
    needs_answer: bool
    timeout: float = DEFAULT_TIMEOUT

    def check_rows(self, rows: Sequence[dict[str, Any]], source: str) -> None:
        """InputError naming the first row without a usable ``answer`` (before any work)."""
        if not self.needs_answer:
            return
        for i, row in enumerate(rows):
            answer = row.get("answer")
            if answer is None or isinstance(answer, dict | list):
                raise InputError(f"{source}: row {i + 1} has no 'answer' (scalar), which "
                                 f"verifier {self.spec!r} needs; got {answer!r}")
            if self.spec == "number" and answer_number(answer) is None:
                raise InputError(f"{source}: row {i + 1}: answer {answer!r} is not a number "
                                 "(verifier 'number')")

    def __call__(self, row: dict[str, Any], response: str, where: str = "") -> bool:
        """The verdict; InputError (``where``, the row and the error, one line) if the verifier
        raises or returns something other than a bool."""
        try:
            verdict = self.fn(row, response)
        except VerifierTimeout:
            raise InputError(f"{where}verifier {self.spec!r} timed out after {self.timeout:g} s "
                             f"(--verifier-timeout) on row {_short(row)} with response "
                             f"{_short(response)}") from None
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # user code raises anything
            what = str(exc) if isinstance(exc, WorkerError) else f"{type(exc).__name__}: {exc}"
            raise InputError(f"{where}verifier {self.spec!r} raised {what} on row "
                             f"{_short(row)} with response {response!r}") from None
        if type(verdict).__name__ in ("bool", "bool_"):  # bool or numpy.bool_
            return bool(verdict)
        raise InputError(f"{where}verifier {self.spec!r} returned {verdict!r} "
                         f"({type(verdict).__name__}), not a bool, on row {_short(row)}")


class VerifierTimeout(Exception):
    """One verdict took longer than the verifier's time limit."""


class WorkerError(Exception):
    """What the verifier raised in its worker process (``"Type: message"``)."""


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _exact(row: dict[str, Any], response: str) -> bool:
    return response.strip() == str(row["answer"]).strip()


def _number(row: dict[str, Any], response: str) -> bool:
    got = last_number(response)
    return got is not None and got == answer_number(row["answer"])


def _regex(pattern: str, timeout: float) -> VerifierFn:
    import regex

    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise InputError(f"--verifier regex:{pattern}: invalid pattern ({exc})") from None

    def check(row: dict[str, Any], response: str) -> bool:
        try:
            matches = list(compiled.finditer(response, timeout=timeout))
        except TimeoutError:
            raise VerifierTimeout from None
        if not matches:
            return False
        last = matches[-1]
        text = last.group(1) if compiled.groups else last.group(0)
        return text is not None and text.strip() == str(row["answer"]).strip()

    return check


def import_verifier(spec: str) -> VerifierFn:
    """The function named by ``module:function``, checked before any work: importable (the
    current directory searched last), a Python function or callable object (not a builtin,
    not a class), and callable as ``fn(row, response_text)``.

    Raises:
        InputError: naming the spec and what is wrong.
    """
    import inspect

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"--verifier {spec!r}: expected module:function")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.append(os.getcwd())  # last: the current directory shadows nothing
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module itself failing at import
        raise InputError(f"--verifier {spec}: cannot import module {module_name!r} "
                         f"({type(exc).__name__}: {exc})") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"--verifier {spec}: module {module_name!r} has no callable {attr!r}")
    if inspect.isclass(fn) or inspect.isbuiltin(fn) or inspect.ismethoddescriptor(fn):
        raise InputError(f"--verifier {spec}: {attr!r} is a {type(fn).__name__}, not a Python "
                         "function (row, response_text) -> bool")
    try:
        inspect.signature(fn).bind({}, "")
    except (TypeError, ValueError) as exc:
        raise InputError(f"--verifier {spec}: {attr!r} cannot be called as "
                         f"{attr}(row, response_text) ({exc})") from None
    return fn


class _WorkerVerifier:
    """``module:function`` run in a spawned worker process, one call at a time; a call that
    takes longer than ``timeout`` stops the worker (a new one starts for the next call)."""

    def __init__(self, spec: str, timeout: float) -> None:
        self.spec, self.timeout = spec, timeout
        self._conn: Any = None
        self._proc: Any = None

    def _start(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.spec, os.getcwd()),
                                 daemon=True, name="lmcoverage-verifier")
        self._proc.start()
        child.close()
        if not self._conn.poll(max(self.timeout, 60.0)):  # the import itself
            self.stop()
            raise InputError(f"--verifier {self.spec}: the worker did not start")
        try:
            kind, value = self._conn.recv()
        except EOFError:
            kind, value = "error", "the worker process exited while importing the verifier"
        if kind != "ready":
            self.stop()
            raise InputError(f"--verifier {self.spec}: {value}")

    def __call__(self, row: dict[str, Any], response: str) -> object:
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((row, response))
        if not self._conn.poll(self.timeout):
            self.stop()
            raise VerifierTimeout
        try:
            kind, value = self._conn.recv()
        except EOFError:
            self.stop()
            raise WorkerError("nothing: its worker process died") from None
        if kind == "raised":
            raise WorkerError(value)
        return value

    def stop(self) -> None:
        """Stop the worker process (kill it if it does not end at once)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
            self._conn.close()
        self._proc = self._conn = None

    def __del__(self) -> None:
        self.stop()


def _serve(conn: Connection, spec: str, cwd: str) -> None:
    """The worker's loop: import the verifier, then answer ``(row, text)`` with ``("ok",
    verdict)`` or ``("raised", "Type: message")``."""
    os.chdir(cwd)
    try:
        fn = import_verifier(spec)
    except InputError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            row, text = conn.recv()
        except EOFError:
            return
        try:
            verdict = fn(row, text)
            conn.send(("ok", bool(verdict) if type(verdict).__name__ == "bool_" else verdict))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
            conn.send(("raised", f"{type(exc).__name__}: {exc}"))


def check_timeout(timeout: float) -> float:
    """``timeout`` if it is a number of seconds > 0, else InputError naming the option."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InputError(f"--verifier-timeout: must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def get_verifier(spec: str, timeout: float = DEFAULT_TIMEOUT) -> Verifier:
    """The verifier named by ``spec`` (see the module docstring), each verdict limited to
    ``timeout`` seconds; InputError if unusable (checked here, before any work)."""
    timeout = check_timeout(timeout)
    if spec == "exact":
        return Verifier(spec, _exact, True, timeout)
    if spec == "number":
        return Verifier(spec, _number, True, timeout)
    if spec.startswith("regex:"):
        return Verifier(spec, _regex(spec[len("regex:"):], timeout), True, timeout)
    if ":" in spec:
        import_verifier(spec)  # the spec and the signature, before any work
        return Verifier(spec, _WorkerVerifier(spec, timeout), False, timeout)
    raise InputError(f"--verifier {spec!r}: unknown verifier; use one of {', '.join(BUILTINS)}")
