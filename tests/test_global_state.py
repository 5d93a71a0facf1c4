"""Library code leaves global state alone: torch's random generator and thread count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import lmcoverage
from lmcoverage.commands.run import run_experiment
from lmcoverage.errors import InputError
from lmcoverage.experiments.threads import torch_threads
from lmcoverage.models.gpt import build_gpt

#: the one place that may set torch's thread count: the context manager that restores it
THREADS_HOME = "experiments/threads.py"


def test_build_gpt_seeds_without_touching_the_global_generator() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = build_gpt("tiny", vocab_size=10, n_positions=8, seed=0)
    assert torch.equal(torch.rand(3), expected)
    again = build_gpt("tiny", vocab_size=10, n_positions=8, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(),
                                                  strict=True))


def test_no_module_sets_threads_or_global_seeds() -> None:
    """No module of the package (CLI and commands included) sets torch's thread count outside
    :func:`torch_threads`, or a global seed or RNG state outside ``torch.random.fork_rng``."""
    src = Path(lmcoverage.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        tree = ast.parse(path.read_text())
        forked = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With)
                  and "fork_rng" in ast.unparse(w.items[0].context_expr)
                  for n in ast.walk(w)}  # seeding inside torch.random.fork_rng() is local
        restoring = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                     and rel == THREADS_HOME and f.name == "torch_threads"
                     for n in ast.walk(f)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute)
                    and node.attr in ("set_num_threads", "manual_seed", "set_rng_state", "seed")
                    and isinstance(node.value, ast.Name) and node.value.id == "torch"
                    and id(node) not in forked | restoring):
                found.append(f"{rel}:{node.lineno} torch.{node.attr}")
    assert not found, "global state set in library code:\n" + "\n".join(found)


def test_torch_threads_restores_the_count_also_on_error() -> None:
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), torch_threads(3):
        assert torch.get_num_threads() == 3
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InputError, match="--threads"), torch_threads(bad):
            pass
    assert torch.get_num_threads() == before


def test_a_run_leaves_the_callers_thread_count(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_experiment`` applies its thread count inside the run only (here: 2 threads)."""
    seen = []

    class Spy:
        TITLE = "spy"
        PRESETS = {"test": {}}

        @staticmethod
        def run(config: dict, out_dir: Path, ctx) -> dict:
            seen.append((ctx.threads, torch.get_num_threads()))
            return {}

    import lmcoverage.experiments.registry as registry

    before = torch.get_num_threads()
    monkeypatch.setattr(registry, "load_experiment", lambda name: Spy)
    run_experiment("spy", "test", tmp_path / "run", [0], threads=2)
    assert seen == [(2, 2)]
    assert torch.get_num_threads() == before
