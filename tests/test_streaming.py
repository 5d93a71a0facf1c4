"""``score`` writes its table a batch at a time (``ScoreTableWriter``), the same file as the
ScoreTable built whole, and checks every row before any model is loaded (#20 section 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmcoverage.cli import main
from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine import table as engine_table
from lmcoverage.engine.scoring import score_variants
from lmcoverage.engine.table import data_examples, model_scores
from lmcoverage.errors import InputError
from lmcoverage.io import write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.scoretable import PROVENANCE_KEY, ScoreTable, ScoreTableWriter, columns_table
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

TASK = "figure2-h4"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Two tiny Llamas and 11 rows with every optional field (groups, weights, valid_paths,
    reference counts)."""
    tmp = tmp_path_factory.mktemp("streaming")
    task = get_task(TASK)
    m0, m1 = (save(tiny_llama(task.vocab_size, task.max_length, seed=s), tmp / f"m{s}",
                   tokenizer=task.tokenizer()) for s in (0, 1))
    base = [task.to_row(p) for p in task.sample(5, seed=2)]
    rows = [{"prompt": base[i % 5]["prompt"], "response": base[i % 5]["response"],
             "group": "ab"[i % 2], "weight": 1 + i % 3, "valid_paths": base[i % 5]["valid_paths"],
             "n_correct": i % 2, "n_samples": 2, "reference": "r"} for i in range(11)]
    return m0, m1, rows


def _read(path: Path) -> tuple[pa.Table, dict[bytes, bytes]]:
    return pq.read_table(path), pq.read_schema(path).metadata


def test_streamed_file_equals_the_whole_table(setup: tuple[Path, Path, list[dict[str, Any]]],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    m0, m1, rows = setup
    data = tmp_path / "rows.jsonl"
    write_jsonl(data, rows)
    streamed = data_examples(data, keep_rows=False)
    assert streamed.correct_text is None and streamed.correct_in_rows  # re-read with the rows
    scores = model_scores([m0, m1, m0], streamed,
                          names=["a", "b", "a-hot"], reference=(m1, DecodingSpec()),
                          specs=[DecodingSpec(), DecodingSpec(), DecodingSpec(temperature=2.0)],
                          progress=False)
    kept = model_scores([m0], data_examples(data), progress=False)
    assert np.array_equal(kept.mass[0], scores.mass[0])  # type: ignore[arg-type]
    whole = scores.table()
    whole.write_parquet(tmp_path / "whole.parquet")
    monkeypatch.setattr(engine_table, "WRITE_BATCH_ROWS", 4)  # 3 batches per model
    scores.write_parquet(tmp_path / "streamed.parquet")
    assert pq.read_metadata(tmp_path / "streamed.parquet").num_row_groups == 9
    a, meta_a = _read(tmp_path / "whole.parquet")
    b, meta_b = _read(tmp_path / "streamed.parquet")
    assert a.equals(b, check_metadata=True) and meta_a == meta_b  # values bit for bit
    assert json.loads(meta_b[PROVENANCE_KEY]) == whole.provenance
    assert whole.provenance["reference"] == f"{m1.resolve().as_posix()}"
    read = ScoreTable.read_parquet(tmp_path / "streamed.parquet")
    assert read.models == ["a", "b", "a-hot"]
    for column in ("loglik", "loglik_data", "mass_correct"):
        assert np.array_equal(read.matrix(column), whole.matrix(column))
    assert read.example_column("ref_correct").tolist() == [i % 2 for i in range(11)]
    assert not np.array_equal(read.matrix()[0], read.matrix()[2])  # the variant is its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl", "streamed.parquet",
                                                          "whole.parquet"]


def test_one_batch_writer_writes_the_bytes_of_write_table(tmp_path: Path) -> None:
    table = ScoreTable.from_matrix(-np.arange(6.0).reshape(2, 3), ["x", "y"],
                                   group=["g", "h", "g"]).with_provenance(dtype="float32")
    table.write_parquet(tmp_path / "a.parquet")
    meta = {PROVENANCE_KEY: json.dumps(table.provenance, sort_keys=True).encode()}
    pq.write_table(table.to_arrow().replace_schema_metadata(meta), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_writer_leaves_no_file_on_a_bad_batch_or_no_rows(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    out.write_bytes(b"an older table")
    with pytest.raises(InputError, match="column 'loglik', row 1: log-likelihood above 0"):
        with ScoreTableWriter(out, {"dtype": "float32"}) as writer:
            writer.write(columns_table(["m"] * 2, [0, 1], [-1.0, -2.0]))
            writer.write(columns_table(["m"] * 2, [2, 3], [-1.0, 0.5]))
    assert out.read_bytes() == b"an older table"
    with pytest.raises(InputError, match="no rows to write"):
        with ScoreTableWriter(tmp_path / "empty.parquet"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]  # no temporary file


BAD_ROWS = [  # (the last row of the file, what the one-line error says)
    ({"prompt_ids": [1, 2], "response_ids": [10**6]},
     "response: token id 1000000 outside the model vocabulary [0, 53)"),
    ({"prompt_ids": [1] * 90, "response_ids": [1] * 20},
     "response: prompt (90 tokens) + response (20 tokens) is longer than the model's context"),
    ({"prompt": "19 3 =", "response": "zebra"}, "cannot encode 'zebra' (unknown token)"),
    ({"prompt": "19 3 =", "response": "19 3", "valid_paths": ["19 zebra"]},
     "cannot encode '19 zebra'"),
]


@pytest.mark.parametrize(("bad", "says"), BAD_ROWS)
def test_a_bad_last_row_fails_before_any_model_is_loaded(
        setup: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        bad: dict[str, Any], says: str) -> None:
    m0, m1, rows = setup
    rows = [{"prompt": r["prompt"], "response": r["response"],
             "valid_paths": r["valid_paths"]} for r in rows]
    data = tmp_path / "rows.jsonl"
    write_jsonl(data, [*rows, {"valid_paths": ["19 3"], **bad}])
    monkeypatch.setattr(engine_table, "SCORE_CHUNK_ROWS", 4)  # row 12 is in the third chunk
    loaded: list[Path] = []
    real_load = engine_table.load_causal_lm

    def counting_load(path: Path, **kwargs: Any) -> Any:
        loaded.append(path)
        return real_load(path, **kwargs)

    monkeypatch.setattr(engine_table, "load_causal_lm", counting_load)
    out = tmp_path / "s.parquet"
    code = main(["score", "--model", str(m0), str(m1), "--reference", str(m1), "--data",
                 str(data), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and says in err, err
    assert err.startswith(f"lmcoverage: error: {data}:12: "), err  # the row's place
    assert loaded == []  # nothing was scored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    write_jsonl(data, rows)  # the good rows alone: both models load and score
    assert main(["score", "--model", str(m0), str(m1), "--data", str(data), "--out",
                 str(out), "--no-progress"]) == 0
    assert len(loaded) == 2 and ScoreTable.read_parquet(out).num_examples == 11


def test_a_sharded_run_checks_every_row_before_any_shard(
        setup: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    m0, _, rows = setup
    data = tmp_path / "rows.jsonl"
    write_jsonl(data, [*({"prompt": r["prompt"], "response": r["response"]} for r in rows),
                       {"prompt": "19 3 =", "response": "zebra"}])
    monkeypatch.setattr(engine_table, "load_causal_lm", lambda *a, **k: pytest.fail("loaded"))
    assert main(["score", "--model", str(m0), "--data", str(data), "--shards", "2", "--out",
                 str(tmp_path / "s.parquet"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lmcoverage: error: {data}:12: ") and "zebra" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]  # no shard either


def test_engine_messages_keep_the_inputs_prompt_index() -> None:
    model = tiny_llama(10, 16, seed=0)
    with pytest.raises(InputError, match="^prompt 9: token id 12 outside"):
        score_variants(model, [[1, 12]], [[[1]]], [DecodingSpec()], progress=False,
                       first_index=9)
