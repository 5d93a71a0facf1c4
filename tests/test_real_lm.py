"""The real-LM study: the ``test`` preset end to end (tiny random Llama, seconds) and the
``cpu`` preset on SmolLM2-135M-Instruct (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.io import read_jsonl


def _check_run(out: Path, config: dict) -> dict:
    results = json.loads((out / "results.json").read_text())
    names = results["candidates"]
    assert len(names) == 22 and len(set(names)) == len(names)
    assert sum(n.startswith("finetune-") for n in names) == 8
    for key in ("temperature=0.3", "top_k=2", "top_p=0.5", "min_p=0.2"):
        assert f"base@{key}" in names
    prompts = sum(config["eval"].values())
    assert results["prompts"] == prompts
    verdicts = read_jsonl(out / "verdicts.jsonl")
    assert len(verdicts) == len(names) * prompts * config["samples"]
    assert {v["group"] for v in verdicts} == {"add-sub", "mult"}
    assert {(p["model"], p["k"]) for p in results["pass_at_k"]} == {
        (n, k) for n in names for k in range(1, config["samples"] + 1)}
    for pi_d in ("gold", "reference"):
        entry = results[pi_d]
        assert {(r["n"], r["metric"]) for r in entry["all"]["correlations"]} == {
            (n, m) for n in config["ns"] for m in ("cov_half_n", "kl", "cross_entropy")}
        assert [d["n"] for d in entry["all"]["paired"]] == config["ns"]
        assert {(r["n"], r["selector"]) for r in entry["all"]["regret"]} == {
            (n, s) for n in config["ns"] for s in ("tournament", "cross-entropy", "kl",
                                                   "oracle")}
    # the truncated candidates give some gold reply probability zero: infinite CE
    assert set(results["gold"]["infinite_ce"]) <= {n for n in names if "top_" in n
                                                   or "min_p" in n}
    assert results["reference_rows"] > 0 and results["reference_skipped"] < prompts
    assert (results["reference_prompts"] + results["reference_skipped"]) == prompts
    for stage in ("finetune", "reference", "sample_and_verify", "score", "statistics"):
        assert results["timings_s"][stage]["cpu_s"] >= 0
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<h2>Reading</h2>" in html
    assert (out / "report-reference.html").is_file()
    return results


def test_test_preset_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    from lmcoverage.experiments.real_lm import PRESETS

    out = tmp_path / "run"
    assert main(["run", "real-lm", "--preset", "test", "--out", str(out), "--no-progress"]) == 0
    first = _check_run(out, PRESETS["test"])
    units = sorted((out / "units").glob("verdicts-*.jsonl")) + sorted(
        (out / "units").glob("scores-*.npz"))
    stamps = [p.stat().st_mtime_ns for p in units]
    assert main(["run", "real-lm", "--preset", "test", "--out", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert [p.stat().st_mtime_ns for p in units] == stamps  # nothing sampled or scored again
    for pi_d in ("gold", "reference"):  # the statistics, recomputed from the cache
        assert again[pi_d] == first[pi_d]


@pytest.mark.slow
def test_cpu_preset_on_smollm2(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from lmcoverage.errors import InputError
    from lmcoverage.experiments.real_lm import PRESETS, smollm2_gguf

    try:  # the package's own module imports `llm`, which --no-deps leaves out: only locate it
        smollm2_gguf()
    except InputError as exc:
        pytest.skip(str(exc))

    out = tmp_path / "run"
    assert main(["run", "real-lm", "--preset", "cpu", "--out", str(out), "--no-progress"]) == 0
    _check_run(out, PRESETS["cpu"])
