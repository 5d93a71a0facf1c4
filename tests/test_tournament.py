"""`lmcoverage run tournament`: a small run end to end, its numbers, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcoverage.cli import main

SMALL = [
    "--set", "alphas=[0.3, 0.5]", "--set", "ms=[16, 100]", "--set", "e1_draws=4",
    "--set", "family_seeds=[0, 1, 2]", "--set", "ns=[2, 256]", "--set", "heldout_sizes=[250]",
    "--set", "draws=4",
    "--set", "offset_ns=[2, 4]", "--set", "offset_draws=4", "--set", "offset_heldout=1500",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tournament") / "run"
    assert main(["run", "tournament", "--preset", "cpu", "--out", str(out), "--no-progress",
                 *SMALL]) == 0
    return out


def test_run_writes_results_figures_and_report(run_dir: Path) -> None:
    for name in ("results.json", "report.html", "prop_e1.png", "thm63.png", "thm64.png"):
        assert (run_dir / name).is_file(), name
    html = (run_dir / "report.html").read_text()
    assert "Thm 6.3" in html and "data:image/png;base64" in html


def test_checks_are_recorded_and_hold(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["checks"]) == 5
    assert all(c["holds"] for c in results["checks"]), results["checks"]
    assert "Verdict" in (run_dir / "report.html").read_text()


def test_prop_e1_numbers(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    rows = results["prop_e1"]
    assert len(rows) == 4
    for row in rows:
        assert row["cov_cover"] == 0.0 and row["sup_log_ratio"] <= row["alpha"] + 1e-12
        assert row["cov_mle"] == pytest.approx(row["prediction"], rel=1e-12)
        assert row["kl_mle"] < row["kl_cover"]
        assert 0.0 <= row["ce_cover_rate"] <= 1.0
        assert row["tournament_cover_rate"] >= 0.75


def test_thm63_and_thm64_rows(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    t63 = results["thm63"]
    assert [r["sweep"] for r in t63] == ["ns", "ns", "heldout_sizes"] * 3
    for r in t63:
        assert r["oracle_best"] <= r["tournament_median"] <= r["tournament_max"] <= 1.0
        assert r["bound"] > r["min_cov_n_a"]
    # at N = 256 both controls break the bound and the tournament does not
    for r in (r for r in t63 if r["n"] == 256 and r["sweep"] == "ns"):
        assert r["min_kl_within"] == 0.0 and r["random_within"] < 0.9
        assert r["tournament_within"] == 1.0
    cases = results["thm64"]["cases"]
    assert [(c["a"], c["n"]) for c in cases] == [(0.1, 16.0), (0.25, 64.0)]
    assert all(c["n_pow_1m2a"] >= 8 - 1e-9 for c in cases)
    heur = {r["n"]: r for r in results["thm64"]["heuristic"]}
    assert heur[2.0]["offset_exact_mean"] == 0.0
    assert heur[2.0]["simple_mean"] > 0.05


def test_rerun_resumes_from_cached_units(run_dir: Path) -> None:
    before = (run_dir / "results.json").read_text()
    units = sorted(p.name for p in (run_dir / "units").iterdir())
    assert units == ["prop_e1-seed0.npz", "thm63-seed0.npz", "thm64-seed0.npz"]
    stamps = {p: p.stat().st_mtime_ns for p in (run_dir / "units").iterdir()}
    assert main(["run", "tournament", "--preset", "cpu", "--out", str(run_dir),
                 "--no-progress", *SMALL]) == 0
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "units").iterdir()} == stamps
    assert (run_dir / "results.json").read_text() == before


def test_unknown_config_key_is_one_line_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "tournament", "--out", str(tmp_path / "x"), "--set", "nope=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1


@pytest.mark.slow
def test_full_preset_runs_and_the_offset_wins_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "full"
    assert main(["run", "tournament", "--preset", "full", "--out", str(out),
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert all(check["holds"] for check in results["checks"]), results["checks"]
    assert min(r["tournament_cover_rate"] for r in results["prop_e1"]) >= 0.95
    delta = results["config"]["delta"]
    for case in results["thm64"]["cases"]:  # Eq. 33 where Thm 6.4 applies, against a control
        assert case["offset_exact_within"] >= 1 - delta > case["random_within"], case
    small = results["thm64"]["heuristic"][0]  # a = 0.5, N = 2: outside Thm 6.4
    assert small["n"] == 2 and small["offset_exact_mean"] < small["simple_mean"]
