"""The profile and passk commands: happy paths and at least 20 distinct bad inputs (issue 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmcoverage.cli import main
from lmcoverage.scoretable import ScoreTable


def _good_table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = np.log(rng.uniform(0.1, 1.0, 50))
    table = ScoreTable.from_matrix(
        np.stack([data - rng.exponential(1.0, 50), data - rng.exponential(0.2, 50)]),
        ["ckpt-100", "ckpt-200"],
        loglik_data=data,
        group=rng.choice(["1", "2"], 50),
        mass_correct=rng.uniform(0, 1, (2, 50)),
    )
    path = tmp_path / "scores.parquet"
    table.write_parquet(path)
    return path


def _write_arrow(tmp_path: Path, columns: dict) -> Path:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_profile_prints_and_writes_json_and_csv(tmp_path: Path, capsys) -> None:
    scores = _good_table(tmp_path)
    out = str(tmp_path / "p.json")
    assert main(["profile", str(scores), "--n", "2", "4", "8", "--out", out]) == 0
    payload = json.loads((tmp_path / "p.json").read_text())
    assert [m["model"] for m in payload["models"]] == ["ckpt-100", "ckpt-200"]
    cov = payload["models"][0]["cov"]
    assert list(cov) == ["2", "4", "8"] and cov["2"] >= cov["4"] >= cov["8"]
    assert payload["models"][1]["kl"] < payload["models"][0]["kl"]
    assert "Cov_2" in capsys.readouterr().out
    assert main(["profile", str(scores), "--by-group", "--out", str(tmp_path / "p.csv")]) == 0
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert header.startswith("model,group,examples,cross_entropy,kl,cov_2")


def test_passk_both_row_forms_agree(tmp_path: Path) -> None:
    counts = _write(tmp_path, "c.jsonl", '{"problem": "a", "n": 4, "c": 1}\n'
                    '{"problem": "b", "n": 4, "c": 0}\n')
    samples = _write(tmp_path, "s.jsonl", "".join(
        json.dumps({"problem": p, "correct": ok}) + "\n"
        for p, oks in (("a", [True, False, False, False]), ("b", [False] * 4)) for ok in oks))
    assert main(["passk", str(counts), "--k", "1", "2", "--out", str(tmp_path / "c.json")]) == 0
    assert main(["passk", str(samples), "--k", "1,2", "--out", str(tmp_path / "s.json")]) == 0
    a = json.loads((tmp_path / "c.json").read_text())["pass_at_k"]
    b = json.loads((tmp_path / "s.json").read_text())["pass_at_k"]
    assert a == b
    assert a[0]["pass_at_k"] == pytest.approx(0.125)
    assert a[1]["pass_at_k"] == pytest.approx(0.25)


GOOD = {"model": ["a", "a"], "example_id": [0, 1], "loglik": [-1.0, -2.0]}

BAD_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("missing file", lambda d: ["profile", str(d / "nope.parquet")], "not found"),
    ("not parquet", lambda d: ["profile", str(_write(d, "x.parquet", "hello"))], "Parquet"),
    ("empty table", lambda d: ["profile", str(_write_arrow(
        d, {k: v[:0] for k, v in GOOD.items()}))], "empty"),
    ("missing loglik", lambda d: ["profile", str(_write_arrow(d, {"model": ["a"],
                                                                  "example_id": [0]}))],
     "missing column 'loglik'"),
    ("mistyped loglik", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, loglik=["x", "y"])))],
     "loglik"),
    ("NaN loglik", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, loglik=[-1.0, np.nan])))],
     "NaN"),
    ("loglik above 0", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, loglik=[-1.0, 0.5])))],
     "above 0"),
    ("NaN loglik_data", lambda d: ["profile", str(_write_arrow(
        d, dict(GOOD, loglik_data=[-1.0, np.nan])))], "NaN"),
    ("negative weight", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, weight=[1.0, -1.0])))],
     "weight"),
    ("mass above 1", lambda d: ["profile", str(_write_arrow(
        d, dict(GOOD, mass_correct=[0.5, 1.5])))], "mass_correct"),
    ("duplicated rows", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, example_id=[0, 0])))],
     "duplicated"),
    ("different example sets", lambda d: ["profile", str(_write_arrow(
        d, {"model": ["a", "b"], "example_id": [0, 1], "loglik": [-1.0, -1.0]}))],
     "different example sets"),
    ("unknown column", lambda d: ["profile", str(_write_arrow(d, dict(GOOD, extra=[1, 2])))],
     "unknown column"),
    ("N below 1", lambda d: ["profile", str(_good_table(d)), "--n", "0.5"], "N must be >= 1"),
    ("N not a number", lambda d: ["profile", str(_good_table(d)), "--n", "abc"], "--n"),
    ("bad out extension", lambda d: ["profile", str(_good_table(d)), "--out", str(d / "o.txt")],
     ".csv, .tsv or .json"),
    ("unknown option", lambda d: ["profile", str(_good_table(d)), "--bogus"], "--bogus"),
    ("passk missing file", lambda d: ["passk", str(d / "none.jsonl")], "not found"),
    ("passk malformed line", lambda d: ["passk", str(_write(
        d, "m.jsonl", '{"problem": "a", "n": 2, "c": 1}\n{"problem": \n'))], ":2: malformed"),
    ("passk empty", lambda d: ["passk", str(_write(d, "e.jsonl", "\n"))], "no rows"),
    ("passk not object", lambda d: ["passk", str(_write(d, "l.jsonl", "[1, 2]\n"))],
     "JSON object"),
    ("passk missing problem", lambda d: ["passk", str(_write(d, "p.jsonl", '{"n": 2, "c": 1}\n'))],
     "'problem'"),
    ("passk missing c", lambda d: ["passk", str(_write(d, "c.jsonl", '{"problem": 1, "n": 2}\n'))],
     "'c'"),
    ("passk mistyped n", lambda d: ["passk", str(_write(
        d, "t.jsonl", '{"problem": 1, "n": "2", "c": 1}\n'))], "'n' must be an integer"),
    ("passk c above n", lambda d: ["passk", str(_write(
        d, "x.jsonl", '{"problem": 1, "n": 2, "c": 3}\n'))], "exceeds"),
    ("passk k above n", lambda d: ["passk", str(_write(
        d, "k.jsonl", '{"problem": 1, "n": 2, "c": 1}\n')), "--k", "5"], "k=5 exceeds"),
    ("passk k zero", lambda d: ["passk", str(_write(
        d, "z.jsonl", '{"problem": 1, "n": 2, "c": 1}\n')), "--k", "0"], "k must be >= 1"),
    ("passk mixed forms", lambda d: ["passk", str(_write(
        d, "f.jsonl", '{"problem": 1, "n": 2, "c": 1}\n{"problem": 2, "correct": true}\n'))],
     "mixes"),
    ("passk bad correct", lambda d: ["passk", str(_write(
        d, "b.jsonl", '{"problem": 1, "correct": "yes"}\n'))], "true/false"),
    ("passk duplicate problem", lambda d: ["passk", str(_write(
        d, "d.jsonl", '{"problem": 1, "n": 2, "c": 1}\n{"problem": 1, "n": 2, "c": 1}\n'))],
     "twice"),
]


@pytest.mark.parametrize(("case", "argv", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_one_line_exit_2_and_no_output(
    tmp_path: Path, capsys, case: str, argv: Callable[[Path], list[str]], message: str
) -> None:
    out = tmp_path / "out" / "result.json"
    args = argv(tmp_path)
    if "--out" not in args:
        args += ["--out", str(out)]
    capsys.readouterr()
    assert main(args) == 2, case
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("lmcoverage: error:")
    assert message in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_at_least_twenty_bad_inputs() -> None:
    assert len({c[0] for c in BAD_CASES}) >= 20
