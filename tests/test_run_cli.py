"""``lmcoverage run``: the run-directory protocol (create, resume, refuse) and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmcoverage.cli import main


def _run(out: Path, *extra: str) -> int:
    return main(["run", "bernoulli", "--preset", "test", "--out", str(out), "--no-progress",
                 *extra])


def test_run_writes_results_and_resumes_into_the_same_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _run(out) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["experiment"] == "bernoulli" and record["seeds"] == [0]
    results = json.loads((out / "results.json").read_text())
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert _run(out) == 0  # same config: resumes (here: recomputes nothing new)
    assert json.loads((out / "results.json").read_text()) == results


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nosuch"], "unknown experiment 'nosuch'"),
        (["run", "bernoulli", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "bernoulli", "--preset", "test", "--set", "nokey=1"], "no such config key"),
        (["run", "bernoulli", "--preset", "test", "--set", "novalue"], "expected KEY=VALUE"),
        (["run", "bernoulli", "--preset", "test", "--set", "sample_sizes=4"], "expected a list"),
        (["run", "bernoulli", "--preset", "test", "--set", "reps=abc"], "expected an integer"),
        (["run", "bernoulli", "--preset", "test", "--set", "sample_sizes=[10,\"x\"]"],
         "sample_sizes[1]: expected an integer"),
        (["run", "bernoulli", "--preset", "test", "--executor", "dask"], "unknown executor"),
        (["run", "bernoulli", "--preset", "test", "--seeds", "1", "1"], "duplicated seed"),
    ],
)
def test_bad_run_arguments(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_run_refuses_foreign_or_different_directories(tmp_path: Path, capsys) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert _run(foreign) == 2
    assert "not an lmcoverage run directory" in capsys.readouterr().err
    out = tmp_path / "run"
    assert _run(out) == 0
    assert _run(out, "--seed", "3") == 2
    assert "different configuration" in capsys.readouterr().err


def test_run_refuses_to_resume_at_another_thread_count(tmp_path: Path, capsys) -> None:
    # float sums depend on the thread count: a resumed run must not mix units of two counts
    out = tmp_path / "run"
    assert _run(out) == 0
    assert json.loads((out / "config.json").read_text())["threads"] == 1
    capsys.readouterr()
    assert _run(out, "--threads", "2") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "threads" in err, err


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    from lmcoverage.io import atomic_write_text
    from lmcoverage.models.gpt import build_gpt
    from lmcoverage.models.hf import save

    atomic_write_text(tmp_path / "a.txt", "x")
    save(build_gpt("tiny", 10, 8), tmp_path / "model")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o777 & ~umask


def test_version_and_help(capsys) -> None:
    from lmcoverage import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lmcoverage {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("profile", "passk", "train", "score", "select", "run", "demo", "task"):
        assert command in out
