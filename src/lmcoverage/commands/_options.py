"""Option parsing shared by the command groups."""

from __future__ import annotations

import json
from typing import Any


def parse_key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["steps=100", "edge_order=shuffled"]`` -> ``{"steps": 100, "edge_order": "shuffled"}``.

    Values are parsed as JSON where they are JSON (numbers, lists, true/false), else kept as
    bare strings. A pair without ``=`` is a ValueError naming ``flag``.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
