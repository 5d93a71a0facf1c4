"""``lmcoverage run --list``: one table of the experiments (names, presets, what each shows)
that fits the terminal, its text wrapped, not one two-column table per experiment."""

from __future__ import annotations

import pytest

from lmcoverage.cli import main


@pytest.mark.parametrize("columns", [80, 120])
def test_run_list_prints_one_table_that_fits(columns: int, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from lmcoverage.experiments.registry import available

    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["run", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("lmcoverage run NAME --preset PRESET" in line for line in lines) == 1
    assert not any("[row" in line or "[part" in line for line in lines)
    assert sum("experiment" in line and "what it shows" in line for line in lines) == 1
    assert all(len(line.rstrip()) <= columns for line in lines)
    first_cells = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert [c for c in first_cells if c] == list(available())  # one row each, in order
