"""Verifiers are code under limits (#19 items 11, 14, 15): a verifier that exits or raises
KeyboardInterrupt is "verifier raised ..." (exit 2); regex and module:function verdicts run
under --verifier-timeout (a timed-out sample names its row); the spec and the function's
signature are checked before any work, and the current directory comes last on sys.path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.io import write_jsonl
from lmcoverage.verify.verifiers import get_verifier

CHECKS = """
import time

def exits(row, text):
    raise SystemExit(3)

def interrupts(row, text):
    raise KeyboardInterrupt

def sleeps(row, text):
    time.sleep(60)
    return True

def one_argument(row):
    return True

def uses_tabnanny(row, text):
    import tabnanny
    return tabnanny.__file__.startswith(SHADOW) is False and text == "4"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "e19_checks.py").write_text(CHECKS.replace("SHADOW", repr(str(tmp_path))))
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "samples.jsonl",
                [{"model": "m", "problem": "p", "response": "a" * 200 + "b"}])
    write_jsonl(tmp_path / "prompts.jsonl", [{"problem": "p", "answer": "a"}])
    return tmp_path


def _verify(d: Path, verifier: str, *extra: str) -> list[str]:
    return ["verify", "--samples", str(d / "samples.jsonl"), "--data", str(d / "prompts.jsonl"),
            "--verifier", verifier, "--out", str(d / "out.jsonl"), *extra]


@pytest.mark.parametrize(("fn", "words"), [("exits", "raised SystemExit: 3"),
                                           ("interrupts", "raised KeyboardInterrupt")])
def test_a_verifier_that_exits_or_interrupts_is_an_input_error(
        workdir: Path, fn: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_verify(workdir, f"e19_checks:{fn}")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err and "on row" in err, err
    assert not (workdir / "out.jsonl").exists()


def test_a_catastrophic_regex_times_out_naming_the_row(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert main(_verify(workdir, "regex:(a|aa)+$", "--verifier-timeout", "0.2")) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "timed out after 0.2 s" in err and "samples.jsonl:1: " in err, err
    # The pattern is linear in the regex engine: it just answers.
    assert get_verifier(r"regex:^(\S+\s*)*Z$")({"answer": "x"}, "ab " * 38) is False


def test_a_module_verifier_that_hangs_is_stopped(workdir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert main(_verify(workdir, "e19_checks:sleeps", "--verifier-timeout", "1")) == 2
    assert time.perf_counter() - start < 30  # not the verifier's 60 s
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "timed out after 1 s" in err and "samples.jsonl:1: " in err, err


@pytest.mark.parametrize(("spec", "words"), [
    ("builtins:print", "not a Python function"),
    ("operator:eq", "not a Python function"),
    ("e19_checks:one_argument", "cannot be called as one_argument(row, response_text)"),
    ("e19_checks", "unknown verifier"),
])
def test_specs_and_signatures_are_checked_before_any_work(
        workdir: Path, spec: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", "--model", str(workdir / "no-such-model"), "--data",
            str(workdir / "prompts.jsonl"), "--samples", "2", "--verifier", spec, "--out",
            str(workdir / "out.jsonl"), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err and "no-such-model" not in err, err


def test_the_current_directory_comes_last_on_sys_path(workdir: Path) -> None:
    (workdir / "tabnanny.py").write_text("raise SystemExit('the standard library was shadowed')")
    before = list(sys.path)
    check = get_verifier("e19_checks:uses_tabnanny")
    assert sys.path == before
    # The call runs in a fresh worker process (nothing imported yet): the shadow would win
    # there if the current directory came first on its sys.path.
    assert check({}, "4") is True


def test_bad_timeouts(workdir: Path) -> None:
    for value in (0, -1.0, float("nan")):
        with pytest.raises(InputError, match="--verifier-timeout"):
            get_verifier("exact", value)
