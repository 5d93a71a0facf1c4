"""``train --resume`` names the option the user passed (#19 item 13): a changed pairs file is
``--data``, not ``--dataset-size`` or ``--task-option sha256``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import write_jsonl


@pytest.mark.parametrize("change", ["same size", "one more row"])
def test_resume_with_a_changed_pairs_file_names_data(
        tmp_path: Path, change: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_llama(tmp_path / "llama", seed=0)
    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in make_problems(5, 1)]
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, rows)
    out = tmp_path / "run"
    args = ["train", "--model", str(model), "--data", str(pairs), "--out", str(out),
            "--batch-size", "2", "--steps", "2", "--checkpoint-every", "1", "--no-progress"]
    assert main([*args, "--steps", "1"]) == 0
    capsys.readouterr()
    if change == "same size":
        rows[0] = {**rows[0], "response": rows[1]["response"]}
    else:
        rows.append(rows[0])
    write_jsonl(pairs, rows)
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--resume: --data (the pairs file) differs" in err, err
    assert "--task-option" not in err and "--dataset-size" not in err, err
