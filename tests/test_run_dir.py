"""One run-directory rule (io.RunDir) for ``train`` (run.json) and ``run`` (config.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcoverage.errors import InputError
from lmcoverage.io import RunDir, first_difference


@pytest.mark.parametrize("record_name", ["run.json", "config.json"])
def test_the_rule(tmp_path: Path, record_name: str) -> None:
    out = tmp_path / "out"
    run_dir = RunDir(out, record_name)
    assert run_dir.prepare({"a": 1, "b": {"c": 2}}) is None  # fresh: the record is written
    assert run_dir.prepare({"a": 1, "b": {"c": 2}}) is None  # only the record: afresh
    (out / "result").write_text("x")
    assert run_dir.prepare({"a": 1, "b": {"c": 2}}) == {"a": 1, "b": {"c": 2}}  # resumes
    with pytest.raises(InputError, match=r"b\.c: 2, now 3\); re-run with the same options"):
        run_dir.prepare({"a": 1, "b": {"c": 3}})
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("keep me")
    with pytest.raises(InputError, match=f"not an lmcoverage run directory \\(no {record_name}"):
        RunDir(other, record_name).prepare({"a": 1})
    assert [p.name for p in other.iterdir()] == ["x.txt"]
    with pytest.raises(InputError, match="is not a directory"):
        RunDir(other / "x.txt", record_name).prepare({"a": 1})


def test_first_difference() -> None:
    assert first_difference({"a": [1, 2]}, {"a": [1, 2]}) is None
    assert "a: [1, 2], now [1, 3]" in first_difference({"a": [1, 2]}, {"a": [1, 3]})
    assert "b: None, now 1" in first_difference({}, {"b": 1})

