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
  one, else the whole match), stripped, equals ``str(answer)`` stripped.
- ``module:function``: a Python callable ``(row, response_text) -> bool`` imported from an
  importable module (the current directory is searched too). It decides on its own whether
  it needs ``answer``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from lmcoverage.errors import InputError

VerifierFn = Callable[[dict[str, Any], str], Any]

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


def answer_number(answer: Any) -> Fraction | None:
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
        except Exception as exc:  # a user verifier may raise anything
            raise InputError(f"{where}verifier {self.spec!r} raised {type(exc).__name__}: "
                             f"{exc} on row {_short(row)} with response {response!r}") from exc
        if type(verdict).__name__ in ("bool", "bool_"):  # bool or numpy.bool_
            return bool(verdict)
        raise InputError(f"{where}verifier {self.spec!r} returned {verdict!r} "
                         f"({type(verdict).__name__}), not a bool, on row {_short(row)}")


def _short(row: dict[str, Any], limit: int = 200) -> str:
    text = repr(row)
    return text if len(text) <= limit else text[:limit] + "...}"


def _exact(row: dict[str, Any], response: str) -> bool:
    return response.strip() == str(row["answer"]).strip()


def _number(row: dict[str, Any], response: str) -> bool:
    got = last_number(response)
    return got is not None and got == answer_number(row["answer"])


def _regex(pattern: str) -> VerifierFn:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"--verifier regex:{pattern}: invalid pattern ({exc})") from None

    def check(row: dict[str, Any], response: str) -> bool:
        matches = list(compiled.finditer(response))
        if not matches:
            return False
        last = matches[-1]
        text = last.group(1) if compiled.groups else last.group(0)
        return text is not None and text.strip() == str(row["answer"]).strip()

    return check


def _import_callable(spec: str) -> VerifierFn:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"--verifier {spec!r}: expected module:function")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
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
    return fn


def get_verifier(spec: str) -> Verifier:
    """The verifier named by ``spec`` (see the module docstring); InputError if unusable."""
    if spec == "exact":
        return Verifier(spec, _exact, True)
    if spec == "number":
        return Verifier(spec, _number, True)
    if spec.startswith("regex:"):
        return Verifier(spec, _regex(spec[len("regex:"):]), True)
    if ":" in spec:
        return Verifier(spec, _import_callable(spec), False)
    raise InputError(f"--verifier {spec!r}: unknown verifier; use one of {', '.join(BUILTINS)}")
