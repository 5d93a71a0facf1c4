"""The docs site builds with ``mkdocs build --strict`` and every Python block in it runs.

A page's ```python blocks run in order in one namespace (a later block may use an earlier
one's names), in a temporary working directory. A block right after the line
``<!-- docs-test: slow -->`` needs long training and runs only in the slow suite
(``make slow``); ``<!-- docs-test: skip -->`` marks a block that is not meant to run (a
signature, a fragment). Pages are listed by ``mkdocs.yml``'s docs directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?:<!-- docs-test: (?P<mark>\w+) -->\s*\n)?```python[^\n]*\n(?P<code>.*?)```",
                   re.DOTALL)
MARKS = {None, "slow", "skip"}


def python_blocks(text: str) -> list[tuple[str | None, str]]:
    """``(mark, code)`` for every ```python block of a Markdown page, in order."""
    return [(m.group("mark"), m.group("code")) for m in BLOCK.finditer(text)]


def _pages(slow: bool) -> list[Path]:
    pages = []
    for page in sorted(DOCS.rglob("*.md")):
        marks = {mark for mark, _ in python_blocks(page.read_text(encoding="utf-8"))}
        if (slow and "slow" in marks) or (not slow and marks - {"skip"}):
            pages.append(page)
    return pages


def _run_page(page: Path, tmp_path: Path, include_slow: bool) -> None:
    import torch

    namespace: dict[str, object] = {"__name__": f"docs:{page.relative_to(DOCS)}"}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        for index, (mark, code) in enumerate(python_blocks(page.read_text(encoding="utf-8"))):
            assert mark in MARKS, f"{page}: unknown docs-test mark {mark!r}"
            if mark == "skip" or (mark == "slow" and not include_slow):
                continue
            try:
                exec(compile(code, f"{page.name}[block {index}]", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.relative_to(ROOT)}, Python block {index} "
                                     f"failed: {type(exc).__name__}: {exc}") from exc
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


@pytest.mark.parametrize("page", _pages(slow=False), ids=lambda p: str(p.relative_to(DOCS)))
def test_python_blocks_in_docs_run(page: Path, tmp_path: Path) -> None:
    _run_page(page, tmp_path, include_slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages(slow=True), ids=lambda p: str(p.relative_to(DOCS)))
def test_slow_python_blocks_in_docs_run(page: Path, tmp_path: Path) -> None:
    _run_page(page, tmp_path, include_slow=True)


def test_docs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "reference" / "metrics" / "index.html").is_file()


def test_block_extraction_sees_marks() -> None:
    text = ("```python\na = 1\n```\n<!-- docs-test: slow -->\n```python\nb = 2\n```\n"
            "```bash\nc\n```\n")
    assert python_blocks(text) == [(None, "a = 1\n"), ("slow", "b = 2\n")]


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
               if str(p.relative_to(DOCS)) not in nav]
    assert not missing, f"add these pages to mkdocs.yml's nav: {missing}"


def test_readme_is_a_landing_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for must in ("make demo", "make test", "arXiv:2510.15020", "@article", "docs/index.md",
                 "lmcoverage score", "lmcoverage profile", "lmcoverage select"):
        assert must in readme, must
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to a missing file: {target}"
    assert "MIT" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_readme_quickstart_uses_commands_that_exist() -> None:
    import typer

    from lmcoverage.cli import app

    commands = set(getattr(typer.main.get_command(app), "commands", {}))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used = set(re.findall(r"^\s+lmcoverage (\w[\w-]*)", readme, re.MULTILINE))
    assert used and used <= commands, used - commands


def test_docs_cite_the_paper_not_project_files() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in [*DOCS.rglob("*.md"),
                                                    *(ROOT / "src").rglob("*.py")]
                 if re.search(r"SPEC\.md|DESIGN\.md|SPEC §", p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
