"""docs/reference/layout.md and docs/guide/where-things-go.md describe today's source tree."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lmcoverage"


def _layout_entries() -> list[str]:
    text = (ROOT / "docs" / "reference" / "layout.md").read_text()
    block = text.split("    src/lmcoverage/\n", 1)[1].split("    tests/", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def test_layout_lists_every_top_level_module_and_package() -> None:
    listed = _layout_entries()
    actual = sorted(
        p.name + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py")))
    assert sorted(listed) == actual
    assert len(listed) == len(set(listed))


def test_where_things_go_names_files_and_registries_that_exist() -> None:
    text = (ROOT / "docs" / "guide" / "where-things-go.md").read_text()
    paths = set(re.findall(r"`([a-z_]+/[a-z_/]*[a-z_]+\.py|[a-z_]+\.py)`", text))
    assert len(paths) >= 10
    for path in paths:  # a bare name is in the package, or in an experiment's (distill's)
        assert (PACKAGE / path).is_file() or (PACKAGE / "experiments" / "distill" / path
                                              ).is_file(), path
    registries = {"lmcoverage.select.registry": "SELECTORS",
                  "lmcoverage.train.optimizers": "OPTIMIZERS",
                  "lmcoverage.train.schedule": "SCHEDULES",
                  "lmcoverage.experiments.registry": "EXPERIMENTS",
                  "lmcoverage.decoding.spec": "KEYS",
                  "lmcoverage.verify.verifiers": "BUILTINS",
                  "lmcoverage.tasks.registry": "get_task",
                  "lmcoverage.updates": "make_update"}
    for module, name in registries.items():
        assert name in text, name
        assert hasattr(importlib.import_module(module), name), (module, name)


def test_docs_do_not_teach_deprecated_options() -> None:
    """``--json FILE`` is the hidden old name of ``--out FILE.json``."""
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in pages
            for i, line in enumerate(p.read_text().splitlines(), start=1)
            if re.search(r"--json\b", line)]
    assert hits == []
