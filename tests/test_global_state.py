"""Library code leaves global state alone: torch's random generator and thread count."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

import lmcoverage
from lmcoverage.models.gpt import build_gpt

#: worker entry points of the graph experiments (run in Ray / process workers), see the report
ALLOWED = {"experiments/figure1.py", "experiments/figure2.py"}


def test_build_gpt_seeds_without_touching_the_global_generator() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = build_gpt("tiny", vocab_size=10, n_positions=8, seed=0)
    assert torch.equal(torch.rand(3), expected)
    again = build_gpt("tiny", vocab_size=10, n_positions=8, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(),
                                                  strict=True))


def test_no_library_module_sets_threads_or_global_seeds() -> None:
    """Only the CLI sets torch's thread count; seeds go through torch.Generator objects."""
    src = Path(lmcoverage.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(("cli.py", "commands/")) or rel in ALLOWED:
            continue
        tree = ast.parse(path.read_text())
        forked = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With)
                  and "fork_rng" in ast.unparse(w.items[0].context_expr)
                  for n in ast.walk(w)}  # seeding inside torch.random.fork_rng() is local
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in ("set_num_threads", "manual_seed")
                    and isinstance(node.value, ast.Name) and node.value.id == "torch"
                    and id(node) not in forked):
                found.append(f"{rel}:{node.lineno} torch.{node.attr}")
    assert not found, "global state set in library code:\n" + "\n".join(found)
