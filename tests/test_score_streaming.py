"""``score --data`` streams rows: the file is read in one checking pass keeping per-row
numbers only, then re-read a chunk at a time per model; the table is that of scoring the
rows kept in memory in one chunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine import table as engine_table
from lmcoverage.engine.rows import iter_rows
from lmcoverage.engine.table import data_examples, example_chunks, score_models
from lmcoverage.errors import InputError
from lmcoverage.io import write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two tiny Llamas and 11 rows (prompts repeated across chunks, groups, weights,
    valid_paths, logp_data)."""
    tmp = tmp_path_factory.mktemp("stream")
    task = get_task("figure2-h4")
    models = [save(tiny_llama(task.vocab_size, task.max_length, seed=s), tmp / f"m{s}",
                   tokenizer=task.tokenizer()) for s in (0, 1)]
    base = [task.to_row(p) for p in task.sample(4, seed=0)]
    rows = [{"prompt": base[i % 4]["prompt"], "response": base[i % 4]["response"],
             "group": str(i % 2), "weight": 1 + i % 3, "valid_paths": base[i % 4]["valid_paths"],
             "logp_data": -1.0 - i} for i in range(11)]
    data = tmp / "rows.jsonl"
    write_jsonl(data, rows)
    return models[0], models[1], data


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_chunked_streamed_scores_equal_the_whole_input(
        setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        suffix: str) -> None:
    m0, m1, data = setup
    if suffix == ".parquet":
        rows = [json.loads(line) for line in data.read_text().splitlines()]
        data = tmp_path / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(rows), data)
    kept = data_examples(data)
    whole = score_models([m0, m1], kept, reference=(m1, DecodingSpec()),
                         progress=False, batch_size=2)
    monkeypatch.setattr(engine_table, "SCORE_CHUNK_ROWS", 3)
    streamed = data_examples(data, keep_rows=False)
    assert streamed.rows is None and streamed.row_file == data and len(streamed) == 11
    chunked = score_models([m0, m1], streamed, reference=(m1, DecodingSpec()),
                           progress=False, batch_size=2)
    a, b = whole.to_arrow(), chunked.to_arrow()
    assert a.column_names == b.column_names
    for name in a.column_names:  # same rows in the same order
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if name in ("loglik", "loglik_data", "mass_correct"):
            np.testing.assert_allclose(np.array(x, float), np.array(y, float), atol=1e-5,
                                       rtol=0)
        else:
            assert x == y, name
    assert a.column("model").to_pylist() == ["m0"] * 11 + ["m1"] * 11
    assert chunked.provenance == whole.provenance
    assert chunked.provenance["data"]["sha256"]


def test_chunks_keep_the_inputs_numbering(setup: tuple[Path, Path, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    m0, _, data = setup
    chunks = list(example_chunks(data_examples(data, keep_rows=False), size=4))
    assert [start for start, _ in chunks] == [0, 4, 8]
    assert [len(c) for _, c in chunks] == [4, 4, 3]
    assert chunks[2][1].where == [f"{data}:9", f"{data}:10", f"{data}:11"]
    assert chunks[2][1].weight.tolist() == [1 + i % 3 for i in (8, 9, 10)]
    bad = tmp_path / "bad.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[9] = {**rows[9], "prompt_ids": [10**6], "response_ids": [1]}
    write_jsonl(bad, rows)
    monkeypatch.setattr(engine_table, "SCORE_CHUNK_ROWS", 4)
    with pytest.raises(InputError, match=rf"^{bad}:10: prompt: token id 1000000 outside"):
        score_models([m0], data_examples(bad, keep_rows=False), progress=False)


def test_one_pass_checks_fields_on_every_row_or_none(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    row = {"prompt": "a", "response": "b"}
    write_jsonl(path, [row, {**row, "logp_data": -1.0}, row])
    with pytest.raises(InputError, match=rf"{path}:1: logp_data is missing here"):
        data_examples(path, keep_rows=False)
    write_jsonl(path, [{**row, "logp_data": -1.0}, row])
    with pytest.raises(InputError, match=rf"{path}:2: logp_data is missing here"):
        data_examples(path, keep_rows=False)
    write_jsonl(path, [row, {**row, "n_correct": 1, "n_samples": 2}])
    with pytest.raises(InputError, match=rf"{path}:1: n_correct and n_samples"):
        data_examples(path, keep_rows=False)
    write_jsonl(path, [{**row, "n_correct": 1, "n_samples": 2, "reference": "r"},
                       {**row, "n_correct": 0, "n_samples": 3, "reference": "r"}])
    ex = data_examples(path, keep_rows=False)
    assert ex.ref_correct.tolist() == [1, 0] and ex.ref_samples.tolist() == [2, 3]
    assert ex.reference == "r" and ex.loglik_data is None and not ex.row_ids


def test_iter_rows_reads_lazily(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\nnot json\n')
    rows = iter_rows(path)
    assert next(rows) == (f"{path}:1", {"prompt": "a"})  # the bad line is not read yet
    with pytest.raises(InputError, match=f"{path}:2: malformed JSON"):
        next(rows)
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no rows"):
        list(iter_rows(empty))
