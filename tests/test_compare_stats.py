"""compare's statistics: paired D_N and regret in strict-JSON results, warnings, provenance,
fewer than 3 candidates, and nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.io import write_jsonl
from lmcoverage.scoretable import ScoreTable


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _inputs(tmp_path: Path, loglik: np.ndarray, names: list[str], pass_rate: list[float],
            loglik_data: np.ndarray, **prov: object) -> list[str]:
    rng = np.random.default_rng(0)
    problems = loglik.shape[1]
    table = ScoreTable.from_matrix(loglik, names, loglik_data=loglik_data)
    table.with_provenance(**prov).write_parquet(tmp_path / "scores.parquet")
    write_jsonl(tmp_path / "verdicts.jsonl", [
        {"model": m, "problem": str(p), "sample_index": k, "correct": bool(rng.random() < r)}
        for m, r in zip(names, pass_rate, strict=True) for p in range(problems)
        for k in range(8)])
    return ["compare", str(tmp_path / "scores.parquet"), "--verdicts",
            str(tmp_path / "verdicts.jsonl"), "--out", str(tmp_path / "r.html"),
            "--bootstrap", "200"]


def _five(rng: np.random.Generator, problems: int = 30) -> np.ndarray:
    return np.stack([-rng.exponential(0.5 + j, problems) for j in range(5)])


def test_results_hold_paired_and_regret_as_strict_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    loglik = _five(rng)
    loglik[4, 3] = -np.inf  # infinite cross-entropy: ranked last, kept, null + reason in JSON
    argv = _inputs(tmp_path, loglik, list("abcde"), [0.8, 0.7, 0.5, 0.4, 0.2], np.zeros(30),
                   reference="/ref", candidates={m: f"/{m}" for m in "abcde"})
    assert main(argv) == 0
    results = _strict((tmp_path / "results.json").read_text())
    assert [r["n"] for r in results["paired"]] == [2, 4, 8]
    for row in results["paired"]:
        assert set(row) >= {"n", "rho_cov", "rho_ce", "delta", "lo", "hi", "resamples"}
        if row["delta"] is not None and row["lo"] is not None:
            assert row["lo"] < row["delta"] < row["hi"]
            assert row["delta"] == pytest.approx(row["rho_cov"] - row["rho_ce"])
    assert {(r["n"], r["selector"]) for r in results["regret"]} == {
        (n, s) for n in (2, 4, 8) for s in ("tournament", "cross-entropy", "kl", "oracle")}
    for r in results["regret"]:
        assert set(r) >= {"n", "selector", "pick", "regret", "lo", "hi"}
        assert 0 <= r["lo"] <= r["hi"] and r["regret"] >= 0
    bad = next(c for c in results["candidates"] if c["name"] == "e")
    assert bad["cross_entropy"] is None and "infinity" in bad["cross_entropy_reason"]
    assert results["provenance"]["reference"] == "/ref"
    html = (tmp_path / "r.html").read_text()
    assert "Paired difference" in html and "/ref" in html  # the configuration block
    assert results["warnings"] == []


def test_two_candidates_say_no_correlation_and_still_write(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(2)
    argv = _inputs(tmp_path, _five(rng)[:2], ["a", "b"], [0.8, 0.3], np.zeros(30))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert sum("no correlation" in line for line in out.splitlines()) == 1
    results = _strict((tmp_path / "results.json").read_text())
    assert results["paired"] == [] and results["correlations"] == []
    assert results["regret"] and results["candidates"][0]["pass_at_k"]
    assert "no correlation" in (tmp_path / "r.html").read_text()


def test_warnings_reference_candidate_and_saturation(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    data = np.full(30, -2.0)
    far = np.stack([data - 20.0 - j for j in range(3)])  # Cov_N = 1 at every N asked
    loglik = np.vstack([far, data[None, :]])  # the last candidate is pi_D itself
    argv = _inputs(tmp_path, loglik, ["ft1", "ft2", "ft3", "base"], [0.8, 0.7, 0.6, 0.3], data)
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert any("'base' is the reference" in line for line in err)
    assert any("saturated" in line and "larger N" in line for line in err)
    results = _strict((tmp_path / "results.json").read_text())
    assert len(results["warnings"]) == 2
    assert "saturated" in (tmp_path / "r.html").read_text()
    oracle = next(r for r in results["regret"] if r["selector"] == "oracle")
    assert oracle["pick"] == "base" and oracle["regret"] > 0.3  # the failure mode, measured


def test_nothing_written_when_a_file_cannot_be(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import lmcoverage.verify.report as report

    rng = np.random.default_rng(3)
    argv = _inputs(tmp_path, _five(rng), list("abcde"), [0.8, 0.7, 0.5, 0.4, 0.2],
                   np.zeros(30))

    def fail(path: object, text: str) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(report, "atomic_write_text", fail)
    assert main(argv) == 1
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "results.json").exists()


def test_reference_table_reports_the_normaliser_range(tmp_path: Path) -> None:
    from lmcoverage.metrics.normaliser import coverage_normaliser_range

    rng = np.random.default_rng(4)
    loglik = _five(rng)
    data = np.full(30, -0.2)
    correct, samples = rng.integers(1, 17, 30), np.full(30, 16)
    table = ScoreTable.from_matrix(np.minimum(loglik, data), list("abcde"), loglik_data=data,
                                   ref_correct=correct, ref_samples=samples)
    argv = _inputs(tmp_path, np.minimum(loglik, data), list("abcde"),
                   [0.8, 0.7, 0.5, 0.4, 0.2], data)
    table.write_parquet(tmp_path / "scores.parquet")  # the same scores, with the counts
    assert main(argv) == 0
    results = _strict((tmp_path / "results.json").read_text())
    low, high = coverage_normaliser_range(table.matrix("loglik"), data, correct, samples,
                                          [1.0, 2.0, 4.0])
    assert (high > low).any()  # the normaliser moves Cov here
    for i, cand in enumerate(results["candidates"]):
        assert [p["normaliser_lo"] for p in cand["cov_half_n"]] == pytest.approx(low[i])
        assert [p["normaliser_hi"] for p in cand["cov_half_n"]] == pytest.approx(high[i])
    assert "p(x) at its interval" in (tmp_path / "r.html").read_text()
