"""``train --model --data`` reads the row formats every other command reads: JSONL, Parquet,
a ``datasets`` folder (``save_to_disk``) and an ``.arrow`` file give the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import write_jsonl


def _train(llama: Path, data: Path, out: Path) -> int:
    return main(["train", "--model", str(llama), "--data", str(data), "--out", str(out),
                 "--steps", "2", "--batch-size", "2", "--no-progress"])


def test_every_row_format_trains_the_same_weights(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    import pyarrow as pa
    import pyarrow.parquet as pq

    llama = tiny_llama(tmp_path / "llama", seed=0)
    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in make_problems(4, seed=3)]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    (arrow,) = (tmp_path / "saved").glob("*.arrow")
    inputs = [tmp_path / "pairs.jsonl", tmp_path / "pairs.parquet", tmp_path / "saved", arrow]
    weights = []
    for i, data in enumerate(inputs):
        out = tmp_path / f"run{i}"
        assert _train(llama, data, out) == 0, data
        weights.append(load_file(str(out / "final" / "model.safetensors")))
        options = json.loads((out / "run.json").read_text())["task"]["options"]
        assert options["rows"] == len(rows) and len(options["sha256"]) == 64
    for other in weights[1:]:
        assert other.keys() == weights[0].keys()
        assert all((other[k] == weights[0][k]).all() for k in other)


def test_a_datasets_folder_without_a_prompt_exits_2(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    datasets = pytest.importorskip("datasets")
    llama = tiny_llama(tmp_path / "llama", seed=0)
    datasets.Dataset.from_list([{"text": "a", "response": "b"}]).save_to_disk(
        str(tmp_path / "saved"))
    capsys.readouterr()  # datasets' own progress bar
    assert _train(llama, tmp_path / "saved", tmp_path / "run") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "row 1: needs a prompt" in err, err
    assert not (tmp_path / "run").exists()
