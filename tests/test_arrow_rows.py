"""``--data`` as a Hugging Face ``datasets`` folder (``save_to_disk``) or an ``.arrow`` file:
the same rows, hence the same scores, as the JSONL file they were made from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lmcoverage.cli import main
from lmcoverage.engine.rows import read_rows
from lmcoverage.io import write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

TASK = "figure2-h4"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("arrow")
    task = get_task(TASK)
    save(tiny_llama(task.vocab_size, task.max_length, seed=0), root / "model",
         tokenizer=task.tokenizer())
    rows = [{k: v for k, v in task.to_row(p).items() if k in ("prompt", "response", "logp_data")}
            for p in task.sample(5, seed=3)]
    write_jsonl(root / "rows.jsonl", rows)
    return root, rows


def _write_stream(path: Path, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def test_datasets_folder_and_arrow_file_score_like_jsonl(made: tuple[Path, list[dict]],
                                                         tmp_path: Path) -> None:
    root, rows = made
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    arrow = _write_stream(tmp_path / "rows.arrow", rows)
    assert [r for _, r in read_rows(folder)] == rows
    assert [r for _, r in read_rows(arrow)] == rows
    tables = []
    for data in (root / "rows.jsonl", folder, arrow):
        out = tmp_path / f"{data.name}.parquet"
        assert main(["score", "--model", str(root / "model"), "--data", str(data), "--out",
                     str(out), "--no-progress", "--device", "cpu"]) == 0
        tables.append(ScoreTable.read_parquet(out))
    for table in tables[1:]:
        np.testing.assert_array_equal(table.matrix("loglik"), tables[0].matrix("loglik"))
        np.testing.assert_array_equal(table.example_column("loglik_data"),
                                      tables[0].example_column("loglik_data"))


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    capsys.readouterr()  # datasets' progress bars
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_arrow_inputs_exit_2(made: tuple[Path, list[dict]], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, rows = made
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "out.parquet"
    base = ["score", "--model", str(root / "model"), "--out", str(out), "--no-progress"]
    no_prompt = tmp_path / "no_prompt"
    datasets.Dataset.from_list([{"text": r["prompt"], "response": r["response"]}
                                for r in rows]).save_to_disk(str(no_prompt))
    _fails([*base, "--data", str(no_prompt)], capsys, "row 1: needs a prompt")
    splits = tmp_path / "splits"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(splits))
    _fails([*base, "--data", str(splits)], capsys, f"a DatasetDict; give one split's folder "
                                                   f"({splits / 'test'})")
    plain = tmp_path / "plain"
    plain.mkdir()
    _fails([*base, "--data", str(plain)], capsys, "not a datasets folder written by save_to_disk")
    broken = tmp_path / "broken.arrow"
    broken.write_bytes(b"not arrow")
    _fails([*base, "--data", str(broken)], capsys, "not a readable Arrow file")
    assert not out.exists()
