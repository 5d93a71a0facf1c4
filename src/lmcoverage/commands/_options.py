"""Option parsing shared by the command groups."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, get_args

from typer import _click
from typer.core import TyperOption

from lmcoverage.errors import InputError

_KEY_VALUE = re.compile(r"[A-Za-z_][\w.\-]*=")


def parse_key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["steps=100", "edge_order=shuffled"]`` -> ``{"steps": 100, "edge_order": "shuffled"}``.

    Values are parsed as JSON where they are JSON (numbers, lists, true/false), else kept as
    bare strings. A pair without ``=`` is an InputError naming ``flag``.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def is_number(token: str) -> bool:
    """Whether ``token`` parses as a float (``"-1"``, ``"2.5"``, ``"inf"``)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


class MultiValueOption(TyperOption):
    """A list option (``multiple=True``) that also takes several values after one flag.

    ``--n 2 4 8``, ``--n 2,4,8`` and ``--n 2 --n 4 --n 8`` give the same list. Numeric
    options split on commas and stop at the first token that is not a number (so
    ``profile --n 2 4 s.parquet`` leaves the file to the positional argument). Text options
    never split (a path may contain a comma) and stop at the next option; once their first
    value is ``KEY=VALUE``, they also stop at a token without ``=``.
    """

    def add_to_parser(self, parser: Any, ctx: _click.Context) -> None:
        super().add_to_parser(parser, ctx)
        numeric = set(get_args(self.type_descriptor.annotation)) <= {int, float}
        for name in self.opts:
            entry = parser._long_opt.get(name) or parser._short_opt.get(name)
            entry.process = _greedy(entry.process, numeric)


def _greedy(process: Callable[[Any, Any], None], numeric: bool) -> Callable[[Any, Any], None]:
    def take(value: Any, state: Any) -> None:
        first = value if isinstance(value, str) else None
        for part in _split(value, numeric):
            process(part, state)
        while state.rargs and isinstance(state.rargs[0], str):
            token = state.rargs[0]
            if numeric and not all(is_number(p) for p in token.split(",") if p):
                break
            if not numeric and (token.startswith("-") and len(token) > 1
                                or _is_key_value(first) and "=" not in token):
                break
            state.rargs.pop(0)
            for part in _split(token, numeric):
                process(part, state)

    return take


def _is_key_value(value: str | None) -> bool:
    """``KEY=VALUE`` with a plain key (``steps=10``), not a candidate ``DIR@temperature=0.5``."""
    return value is not None and _KEY_VALUE.match(value) is not None


def _split(value: object, numeric: bool) -> list[object]:
    if numeric and isinstance(value, str) and "," in value:
        return [part for part in value.split(",") if part]
    return [value]


def use_multi_value_options(command: _click.Command) -> _click.Command:
    """Make every list option of ``command`` (and its subcommands) a :class:`MultiValueOption`."""
    for param in command.params:
        if isinstance(param, TyperOption) and param.multiple and not param.is_flag:
            param.__class__ = MultiValueOption
    for sub in getattr(command, "commands", {}).values():
        use_multi_value_options(sub)
    return command


#: The most responses one prompt may ask for (``--n``, ``--samples``): a larger count is refused
#: before anything is allocated for it.
MAX_SAMPLES = 1_000_000


def check_sampling(n: int, seed: int, n_option: str = "--n") -> None:
    """Refuse a sample count outside 1..:data:`MAX_SAMPLES` or a seed outside 0..2**63-1
    (InputError, exit 2) before any model loads."""
    from lmcoverage.errors import InputError

    if not 1 <= n <= MAX_SAMPLES:
        raise InputError(f"{n_option}: must be an integer from 1 to {MAX_SAMPLES:,} "
                         f"(samples per prompt), got {n}")
    if not 0 <= seed < 2**63:
        raise InputError(f"--seed: must be an integer from 0 to 2**63 - 1, got {seed}")


#: ``--task-option`` help of ``task export`` and ``train``.
TASK_OPTION_HELP = ("Task option KEY=VALUE (value parsed as JSON), e.g. --task-option layers=4 "
                    "--task-option edge_order=shuffled. Repeatable.")
