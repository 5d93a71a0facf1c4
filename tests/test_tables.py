"""Tables at 80 columns: every candidate name on one line, numbers and intervals whole, the
table split into parts (names repeated) when it is too wide; --wide prints it in one piece."""

from __future__ import annotations

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.commands._output import rich_table_text
from lmcoverage.scoretable import ScoreTable

NAMES = ["x/checkpoint-1000@temperature=0.8,top_p=0.95", "y/checkpoint-1000",
         "SmolLM2-135M-Instruct@min_p=0.05"]


def _rows() -> list[dict[str, object]]:
    return [{"model": name, "KL": 0.1 * k, "CE": 1.0 + k,
             **{f"Cov_{n}": f"0.{k}{n:03d} [0.100, 0.350]" for n in (2, 4, 8, 16)}}
            for k, name in enumerate(NAMES)]


def test_names_stay_on_one_line_and_parts_repeat_them() -> None:
    text = rich_table_text(_rows(), title="profile", width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    parts = [line for line in lines if line.startswith("profile")]
    assert len(parts) > 1 and parts[0].rstrip().endswith(f"[part 1/{len(parts)}]")
    for name in NAMES:  # whole, once per part
        assert sum(name in line for line in lines) == len(parts)
    for row in _rows():
        for key in ("Cov_2", "Cov_16"):
            assert sum(str(row[key]) in line for line in lines) == 1


def test_wide_is_one_table_and_a_narrow_table_is_unchanged() -> None:
    wide = rich_table_text(_rows(), title="profile", width=80, wide=True)
    assert "[part" not in wide and max(len(line) for line in wide.splitlines()) > 80
    header = next(line for line in wide.splitlines() if "Cov_16" in line)
    assert all(c in header for c in ("model", "KL", "CE", "Cov_2", "Cov_16"))
    small = [{"model": "a", "pass@k": 0.5}, {"model": "b", "pass@k": 0.25}]
    assert rich_table_text(small, width=80) == rich_table_text(small, width=80, wide=True)


def test_a_column_that_cannot_fit_beside_the_names_gives_blocks() -> None:
    rows = [{"rank": 1, "model": "m" * 45, "hardest opponent": "o" * 45}]
    text = rich_table_text(rows, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "m" * 45 in text and "o" * 45 in text and "field" in text


def test_profile_cli_at_80_columns(tmp_path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    rng = np.random.default_rng(0)
    table = ScoreTable.from_matrix(-rng.exponential(1, size=(3, 40)), NAMES,
                                   loglik_data=-rng.exponential(1, size=40))
    table.write_parquet(tmp_path / "s.parquet")
    assert main(["profile", str(tmp_path / "s.parquet"), "--n", "2", "4", "8", "16"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert all(name in out for name in NAMES)
    assert main(["profile", str(tmp_path / "s.parquet"), "--n", "2", "4", "--wide"]) == 0
    assert "[part" not in capsys.readouterr().out
