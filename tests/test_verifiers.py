"""Verifiers (exact, number, regex, module:function), verdict tallies and Pass@k from verdicts."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmcoverage.errors import InputError
from lmcoverage.metrics import pass_at_k
from lmcoverage.verify.verdicts import counts_by_model, judge, passk_rows, powers_of_two
from lmcoverage.verify.verifiers import get_verifier, numbers_in


@pytest.mark.parametrize(("text", "want"), [
    ("1,234 apples", [1234]),
    ("1,2", [1, 2]),
    ("10-3=7", [10, 3, 7]),
    ("x = -5", [-5]),
    ("the answer is 42.", [42]),
    ("-1,234.50 and 7", [Fraction(-246900, 200), 7]),
    ("3.0", [3]),
    ("no digits", []),
])
def test_numbers_in(text: str, want: list[Fraction]) -> None:
    assert numbers_in(text) == want


def test_number_verifier_takes_the_last_number() -> None:
    v = get_verifier("number")
    assert v({"answer": 8}, " 3 + 5 = 8.")
    assert not v({"answer": 8}, " 8 or maybe 9")
    assert v({"answer": "1,000"}, "1000")
    assert v({"answer": 2.5}, "two and a half: 2.50")
    assert not v({"answer": 8}, "eight")


def test_exact_and_regex() -> None:
    assert get_verifier("exact")({"answer": "Paris"}, "  Paris\n")
    assert not get_verifier("exact")({"answer": "Paris"}, "paris")
    regex = get_verifier(r"regex:answer is (\w+)")
    assert regex({"answer": "B"}, "answer is A ... no, the answer is B")
    assert not regex({"answer": "B"}, "answer is A")
    assert not regex({"answer": "B"}, "nothing")


def test_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "e4_check.py").write_text(
        "def even(row, text):\n    return int(text) % 2 == 0\n"
        "def boom(row, text):\n    raise RuntimeError('no')\n"
        "def maybe(row, text):\n    return 'yes'\n")
    monkeypatch.chdir(tmp_path)  # the current directory is importable
    assert get_verifier("e4_check:even")({}, "4")
    with pytest.raises(InputError, match="raised RuntimeError: no on row"):
        get_verifier("e4_check:boom")({"q": 1}, "4", "p.jsonl: row 1: ")
    with pytest.raises(InputError, match="returned 'yes'.*not a bool"):
        get_verifier("e4_check:maybe")({}, "4")
    with pytest.raises(InputError, match="cannot import module 'e4_missing'"):
        get_verifier("e4_missing:f")
    with pytest.raises(InputError, match="no callable 'nope'"):
        get_verifier("e4_check:nope")


def test_bad_specs_and_missing_answers() -> None:
    with pytest.raises(InputError, match="unknown verifier"):
        get_verifier("fuzzy")
    with pytest.raises(InputError, match="invalid pattern"):
        get_verifier("regex:(")
    with pytest.raises(InputError, match="row 2 has no 'answer'"):
        get_verifier("exact").check_rows([{"answer": 1}, {"prompt": "x"}], "p.jsonl")
    with pytest.raises(InputError, match="is not a number"):
        get_verifier("number").check_rows([{"answer": "seven"}], "p.jsonl")
    get_verifier("number").check_rows([{"answer": 7}, {"answer": "-3"}], "p.jsonl")


def test_judge_counts_and_passk_match_the_estimator() -> None:
    rows: list[dict[str, Any]] = [{"problem": "a", "answer": 1}, {"answer": 2}]
    responses = [["1", "0", "1"], ["0", "0", "2"]]
    verdicts = judge("m", rows, responses, get_verifier("number"))
    assert [v["problem"] for v in verdicts] == ["a"] * 3 + ["1"] * 3  # id, else row position
    assert [v["correct"] for v in verdicts] == [True, False, True, False, False, True]
    counts = counts_by_model(verdicts)
    np.testing.assert_array_equal(counts["m"].n, [3, 3])
    np.testing.assert_array_equal(counts["m"].c, [2, 1])
    rows_out = passk_rows(counts, [1, 2], confidence=0.9)
    for row, k in zip(rows_out, [1, 2], strict=True):
        assert row["pass_at_k"] == pytest.approx(pass_at_k([3, 3], [2, 1], k).mean())
        assert row["lo"] <= row["pass_at_k"] <= row["hi"]
    assert powers_of_two(10) == [1, 2, 4, 8]


def test_counts_refuse_models_with_different_problems() -> None:
    rows = [{"model": "a", "problem": "1", "correct": True},
            {"model": "b", "problem": "2", "correct": False}]
    with pytest.raises(InputError, match="differ in their problems"):
        counts_by_model(rows)
    with pytest.raises(InputError, match="must be true/false"):
        counts_by_model([{"model": "a", "problem": "1", "correct": 1}])


def test_passk_cli_reads_a_verdicts_file_per_model(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from lmcoverage.cli import main

    rows = [{"model": m, "problem": str(p), "sample_index": k, "correct": bool((p + k + i) % 2)}
            for i, m in enumerate(["a", "b"]) for p in range(3) for k in range(4)]
    path = tmp_path / "verdicts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "passk.json"
    assert main(["passk", str(path), "--k", "1", "2", "--out", str(out)]) == 0
    got = json.loads(out.read_text())["pass_at_k"]
    want = passk_rows(counts_by_model(rows), [1, 2])
    assert [(r["model"], r["k"]) for r in got] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    np.testing.assert_allclose([r["pass_at_k"] for r in got], [r["pass_at_k"] for r in want])
