"""Limits (#19 item 9): Pass@k for n beyond the cumulative-sum limit is computed without
arrays of length n (n = 10**12 works; n = 10**30 is one line, see tests/bad_inputs.tsv);
``compare --n 3`` reports Pass@3 and a failed report writes neither file."""

from __future__ import annotations

from fractions import Fraction
from math import comb
from pathlib import Path

import numpy as np
import pytest

import lmcoverage.metrics.passk as passk_module
from lmcoverage.cli import main
from lmcoverage.metrics import pass_at_k


def test_pass_at_k_for_huge_n_matches_the_exact_ratio() -> None:
    n = np.array([10**12, 10**12, 3 * 10**9, 10**8 + 7])
    c = np.array([3, 10**12 - 1, 5, 10**8])
    for k in (1, 2, 5):
        got = pass_at_k(n, c, k)
        for nv, cv, value in zip(n.tolist(), c.tolist(), got, strict=True):
            exact = 1 - Fraction(comb(nv - cv, k), comb(nv, k)) if nv - cv >= k else 1
            assert value == pytest.approx(float(exact), rel=1e-9, abs=1e-15), (nv, cv, k)


def test_the_large_path_agrees_with_the_cumulative_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 60, size=40)
    c = rng.integers(0, n + 1)
    k = np.minimum(rng.integers(1, 20, size=40), n)
    want = pass_at_k(n, c, k)
    monkeypatch.setattr(passk_module, "_CUMSUM_LIMIT", 5)
    np.testing.assert_allclose(pass_at_k(n, c, k), want, rtol=1e-12, atol=1e-15)


def test_compare_with_an_odd_n_reports_it_and_a_failure_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import lmcoverage.verify.report as report
    from test_verify_cli import _synthetic

    scores, verdicts, _ = _synthetic(tmp_path)
    out = tmp_path / "report" / "r.html"
    argv = ["compare", str(scores), "--verdicts", str(verdicts), "--out", str(out),
            "--examples", str(tmp_path / "examples.jsonl"), "--n", "3", "--bootstrap", "20"]
    assert main(argv) == 0  # was StopIteration: Pass@3 was not among the computed k
    results = json.loads((out.parent / "results.json").read_text())
    assert results["ns"] == [3]
    assert all(any(r["k"] == 3 for r in c["pass_at_k"]) for c in results["candidates"])
    out.unlink()
    (out.parent / "results.json").unlink()

    def broken(*args: object) -> None:
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "_scatter_figure", broken)
    assert main(argv) == 1
    assert not out.exists() and not (out.parent / "results.json").exists()


def test_batch_size_changes_no_token_and_logp_only_by_float32_rounding(tmp_path: Path) -> None:
    """#19 item 17: the documented tolerance (docs/reference/errors.md): same seed, any
    --batch-size, the same tokens; logp equal to within 1e-5."""
    from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
    from lmcoverage.io import read_jsonl, write_jsonl

    model = tiny_llama(tmp_path / "llama", seed=0)
    write_jsonl(tmp_path / "p.jsonl", [{"prompt": r["prompt"]} for r in make_problems(12, 0)])
    drawn = {}
    for batch in (64, 7):
        out = tmp_path / f"s{batch}.jsonl"
        assert main(["sample", "--model", str(model), "--data", str(tmp_path / "p.jsonl"),
                     "--n", "8", "--batch-size", str(batch), "--max-new-tokens", "8", "--seed",
                     "3", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
        drawn[batch] = read_jsonl(out)
    assert [r["response_ids"] for r in drawn[64]] == [r["response_ids"] for r in drawn[7]]
    np.testing.assert_allclose([r["logp"] for r in drawn[64]], [r["logp"] for r in drawn[7]],
                               rtol=0, atol=1e-5)
