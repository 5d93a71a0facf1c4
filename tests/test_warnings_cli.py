"""profile and select: provenance, the degenerate-pi_D warnings (firing and not firing) and
the normaliser range of a table built from ``lmcoverage reference``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.metrics.normaliser import coverage_normaliser_range
from lmcoverage.scoretable import ScoreTable

DATA = np.full(40, -2.0)


def _write(tmp_path: Path, loglik: np.ndarray, **columns: object) -> Path:
    names = [f"m{i}" for i in range(loglik.shape[0])]
    table = ScoreTable.from_matrix(loglik, names, loglik_data=DATA, **columns)  # type: ignore[arg-type]
    path = tmp_path / "s.parquet"
    prov = {"reference": "/base@temperature=0.7", "dtype": "float32",
            "candidates": {"m0": "/base@temperature=0.7", "m1": "/ft"}}
    table.with_provenance(**prov).write_parquet(path)
    return path


def test_profile_warns_and_shows_provenance(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    far = np.stack([DATA - 1.0, DATA - 30.0, DATA - 31.0])  # m0 (the reference) is not saturated
    path = _write(tmp_path, far)
    assert main(["profile", str(path), "--n", "2", "8", "--format", "json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["provenance"]["dtype"] == "float32"
    assert "reference: /base@temperature=0.7" in captured.err
    assert any("'m0' is the reference" in w and "decoding settings" in w
               for w in payload["warnings"])
    assert any("saturated" in w for w in payload["warnings"])  # m1 and m2: Cov = 1 everywhere
    assert sum("warning:" in line for line in captured.err.splitlines()) == 2


def test_no_warning_on_a_sound_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    spread = np.stack([DATA - rng.exponential(s, 40) for s in (0.5, 1.0, 2.0)])
    path = _write(tmp_path, spread)
    prov = ScoreTable.read_parquet(path).with_provenance(reference="/gold")
    prov.write_parquet(path)
    assert main(["profile", str(path), "--n", "2", "8"]) == 0
    assert main(["select", str(path), "--method", "oracle", "--n", "4"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_select_warns_when_it_picks_the_reference(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    loglik = np.stack([DATA, DATA - 30.0, DATA - 31.0])  # m0 scores exactly like pi_D
    assert main(["select", str(_write(tmp_path, loglik)), "--method", "kl"]) == 0
    captured = capsys.readouterr()
    assert "pick: m0" in captured.err + captured.out
    assert "'m0' is the reference" in captured.err and "saturated" in captured.err


def test_profile_shows_the_normaliser_range(tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(1)
    loglik = np.stack([DATA - rng.exponential(s, 40) for s in (0.5, 1.0, 2.0)])
    correct, samples = rng.integers(1, 9, 40), np.full(40, 8)
    path = _write(tmp_path, loglik, ref_correct=correct, ref_samples=samples)
    assert main(["profile", str(path), "--n", "2", "4", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    low, high = coverage_normaliser_range(loglik, DATA, correct, samples, [2.0, 4.0])
    for i, row in enumerate(rows):
        assert [row["cov_norm_lo"][k] for k in ("2", "4")] == pytest.approx(low[i])
        assert [row["cov_norm_hi"][k] for k in ("2", "4")] == pytest.approx(high[i])
        assert row["cov_norm_lo"]["2"] <= row["cov"]["2"] <= row["cov_norm_hi"]["2"]
    assert main(["profile", str(path), "--n", "2"]) == 0
    assert "Cov_2 p(x)" in capsys.readouterr().out
