"""The README's quickstart runs as written, ``sample`` through ``compare``, on tiny random
Llamas with a word-level tokenizer (the commands are read from README.md, not copied)."""

from __future__ import annotations

import glob
import json
import shlex
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import (
    CHAT_TEMPLATE,
    END_OF_TURN,
    make_problems,
    messages,
    vocabulary,
)
from lmcoverage.io import read_jsonl, write_jsonl
from lmcoverage.scoretable import ScoreTable
from tiny_llama import tiny_llama

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_commands() -> list[list[str]]:
    """The ``lmcoverage`` command lines of the README's Quickstart block (continuations
    joined, comments dropped), as argument lists."""
    text = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    lines = [line[4:] for line in text.splitlines() if line.startswith("    ")]
    joined = " ".join(lines).replace("\\ ", " ")
    commands = []
    for part in joined.split("lmcoverage ")[1:]:
        commands.append(shlex.split(part, comments=True))
    return commands


def _save_llama(path: Path, seed: int) -> None:
    """A tiny random Llama over the arithmetic task's words, with a word-level tokenizer and
    a chat template; 512 positions, room for a chat prompt and sample's 256 new tokens."""
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    words = quickstart_vocabulary()
    tokenizer = build_tokenizer(words)
    tokenizer.eos_token = END_OF_TURN
    tokenizer.chat_template = CHAT_TEMPLATE
    save(tiny_llama(len(words), 512, seed, eos=words.index(END_OF_TURN), pad=0), path,
         tokenizer=tokenizer)


#: Operands 0..1 (answers 0..2), so that a random model's replies are sometimes right and
#: ``reference`` keeps some of them (a random Llama over the task's 400 numbers almost never is).
OPERANDS = {"add": (0, 1), "sub": (0, 1), "mult": (0, 1)}


def quickstart_vocabulary() -> list[str]:
    """The task's words with the numbers cut to 0..2 and those of the solved turns."""
    shots = {w for m in messages("") for w in m["content"].split() if w.isdigit()}
    return [w for w in vocabulary() if not w.isdigit() or w in shots | {"0", "1", "2"}]


def _shell_globs(argv: list[str]) -> list[str]:
    """What an unquoted glob becomes in a POSIX shell: the sorted matches (else itself)."""
    out: list[str] = []
    for arg in argv:
        matches = sorted(glob.glob(arg)) if any(c in arg for c in "*?[") else []
        out.extend(matches or [arg])
    return out


def test_quickstart_commands_are_found() -> None:
    names = [c[0] for c in quickstart_commands()]
    assert names == ["reference", "score", "profile", "select", "verify", "compare"]


def test_quickstart_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _save_llama(tmp_path / "base", seed=0)
    for step, seed in ((100, 1), (200, 2)):
        _save_llama(tmp_path / "ckpts" / f"checkpoint-{step}", seed=seed)
    write_jsonl(tmp_path / "prompts.jsonl", make_problems(4, seed=0, operands=OPERANDS))
    monkeypatch.chdir(tmp_path)
    for argv in quickstart_commands():
        argv = _shell_globs(argv)
        code = main([*argv, "--no-progress"] if argv[0] in ("reference", "score", "verify")
                    else argv)
        assert code == 0, (argv, capsys.readouterr().err)
    table = ScoreTable.read_parquet(tmp_path / "scores.parquet")
    names = ["checkpoint-100", "checkpoint-200", "base@temperature=0.7"]
    assert table.models == names
    pid = read_jsonl(tmp_path / "pid.jsonl")
    assert table.num_examples == len(pid) > 0  # one example per kept (correct) reply
    skipped = read_jsonl(tmp_path / "pid.jsonl.skipped.jsonl") if (
        tmp_path / "pid.jsonl.skipped.jsonl").exists() else []
    kept = {r["problem"] for r in pid}
    assert kept.isdisjoint(r["problem"] for r in skipped)
    assert kept | {r["problem"] for r in skipped} == {"p0", "p1", "p2", "p3"}
    verdicts = read_jsonl(tmp_path / "verdicts.jsonl")
    assert list(dict.fromkeys(v["model"] for v in verdicts)) == names
    assert {v["problem"] for v in verdicts} == {"p0", "p1", "p2", "p3"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "report.html").is_file()
    assert [c["name"] for c in results["candidates"]] == names
    assert results["problems"] == 4 and results["examples"] == len(pid)  # Pass@N on every prompt
