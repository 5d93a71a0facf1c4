"""The import graph of lmcoverage points down the layers and has no cycle.

Layers, top to bottom (CONTRIBUTING.md). A unit (a sub-package or a top-level module of
lmcoverage) may import units of its own layer or of a layer below, never one above. Two checks:
every ``import`` statement in the source (lazy ones inside functions included), and what a fresh
interpreter actually loads when it imports each unit.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lmcoverage

#: top to bottom; a new unit of lmcoverage needs a line here
LAYERS: list[set[str]] = [
    {"__main__", "cli", "commands", "demo", "integrations"},
    {"experiments", "verify"},
    {"select"},
    {"engine"},
    {"decoding"},
    {"train"},
    {"tasks"},
    {"models"},
    {"metrics"},
    {"scoretable"},
    {"report", "executors", "sharding", "progress"},
    {"io"},
    {"errors", "updates"},  # leaves: import nothing of lmcoverage
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
SRC = Path(lmcoverage.__file__).parent


def _unit(module: str) -> str | None:
    """``lmcoverage.models.linear.model`` -> ``models``; None for the root package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lmcoverage" else None


def _units() -> list[str]:
    found = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    return sorted(found)


def _imports(path: Path) -> set[str]:
    """Units of lmcoverage that ``path`` imports anywhere in its body."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "lmcoverage":  # from lmcoverage import select
                names = [f"lmcoverage.{a.name}" for a in node.names]
        else:
            continue
        out |= {u for n in names if (u := _unit(n)) is not None and u in RANK}
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {u: set() for u in _units()}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts == ("__init__.py",):
            continue  # the root package re-exports the metrics API
        unit = rel.parts[0].removesuffix(".py")
        graph.setdefault(unit, set()).update(_imports(path) - {unit})
    return graph


def test_every_unit_has_a_layer() -> None:
    missing = [u for u in _units() if u not in RANK]
    assert not missing, f"lmcoverage.{missing[0]} is in no layer: add it to LAYERS in {__file__}"


def test_imports_point_down() -> None:
    upward = [f"lmcoverage.{u} imports lmcoverage.{v}"
              for u, deps in _graph().items() for v in sorted(deps)
              if u in RANK and RANK[v] < RANK[u]]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_cycle_between_units() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(v):], u, v]))
            if v not in state:
                visit(v, [*path, u])
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u, [])


def test_leaves_import_nothing_of_the_project() -> None:
    for unit in LAYERS[-1]:
        path = SRC / f"{unit}.py"
        assert _imports(path) == set(), f"lmcoverage.{unit} must stay a leaf"


_BOTTOM_UP = """
import json, sys
import lmcoverage
seen = {m for m in sys.modules if m.startswith("lmcoverage.")}
out = {"lmcoverage": sorted(seen)}
for unit in sys.argv[1:]:
    __import__(f"lmcoverage.{unit}")
    now = {m for m in sys.modules if m.startswith("lmcoverage.")}
    out[unit] = sorted(now - seen)
    seen = now
print(json.dumps(out))
"""


def test_a_fresh_interpreter_loads_nothing_above_each_unit() -> None:
    """One new interpreter imports the units bottom-up; whatever a unit newly loads must sit at
    or below it (a unit above it has not been imported yet, so an upward pull shows up)."""
    units = sorted((u for u in _units() if u in RANK and u != "__main__"),
                   key=lambda u: -RANK[u])
    out = subprocess.run([sys.executable, "-c", _BOTTOM_UP, *units], check=True,
                         capture_output=True, text=True, timeout=300)
    loaded: dict[str, list[str]] = json.loads(out.stdout)
    rank = {**RANK, "lmcoverage": RANK["metrics"]}  # the root re-exports the metrics API
    upward = [f"import {u if u == 'lmcoverage' else 'lmcoverage.' + u} loads {m}"
              for u, mods in loaded.items() for m in mods
              if (v := _unit(m)) in RANK and RANK[v] < rank[u]]
    assert not upward, "\n".join(upward)
