"""The real-LM case study: the ``test`` preset end to end (tiny random Llama, seconds) and the
``cpu`` preset on SmolLM2-135M-Instruct (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.io import read_jsonl


def _check_run(out: Path, config: dict) -> dict:
    results = json.loads((out / "results.json").read_text())
    names = [c["name"] for c in results["candidates"]]
    assert len(names) >= 8 and len(set(names)) == len(names)
    assert any(n.startswith("finetune-") for n in names)
    assert any("temperature" in n for n in names) and any("top_p" in n for n in names)
    assert results["problems"] == config["prompts"] >= 16
    verdicts = read_jsonl(out / "verdicts.jsonl")
    assert len(verdicts) == len(names) * config["prompts"] * config["samples"]
    metrics = {(r["n"], r["metric"]) for r in results["correlations"]}
    assert metrics == {(n, m) for n in results["ns"]
                       for m in ("cov_half_n", "kl", "cross_entropy")}
    assert {p["method"] for p in results["picks"]} == {"tournament", "cross-entropy", "kl",
                                                        "oracle"}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<h2>Reading</h2>" in html
    return results


def test_test_preset_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    from lmcoverage.experiments.real_lm import PRESETS

    out = tmp_path / "run"
    assert main(["run", "real-lm", "--preset", "test", "--out", str(out), "--no-progress"]) == 0
    first = _check_run(out, PRESETS["test"])
    assert main(["run", "real-lm", "--preset", "test", "--out", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["correlations"] == first["correlations"]  # cached units, same numbers


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
    results = _check_run(out, PRESETS["cpu"])
    assert results["problems"] >= 200
