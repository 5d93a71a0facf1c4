"""ScoreTable provenance: stored in the Parquet schema metadata, kept through every operation,
and written by ``lmcoverage score``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lmcoverage import __version__
from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.io import write_jsonl
from lmcoverage.models.gpt import build_gpt
from lmcoverage.models.hf import save
from lmcoverage.scoretable import PROVENANCE_KEY, ScoreTable
from lmcoverage.tasks import get_task


def _table(models: list[str], **prov: object) -> ScoreTable:
    ll = np.log(np.full((len(models), 3), 0.5))
    return ScoreTable.from_matrix(ll, models).with_provenance(**prov)


def test_round_trip_select_and_concat(tmp_path: Path) -> None:
    table = _table(["a", "b"], reference="/r@temperature=0.5",
                   candidates={"a": "/a", "b": "/b@top_k=2"}, dtype="float32")
    path = tmp_path / "s.parquet"
    table.write_parquet(path)
    raw = pq.read_schema(path).metadata[PROVENANCE_KEY]
    assert json.loads(raw) == table.provenance
    back = ScoreTable.read_parquet(path)
    assert back.provenance == table.provenance
    assert back.select_models(["b"]).provenance["candidates"] == {"b": "/b@top_k=2"}
    other = _table(["c"], reference="/other", candidates={"c": "/c"}, dtype="float32")
    merged = ScoreTable.concat([back, other]).provenance
    assert merged["candidates"] == {"a": "/a", "b": "/b@top_k=2", "c": "/c"}
    assert merged["dtype"] == "float32"  # agreeing values stay scalar
    assert merged["reference"] == ["/r@temperature=0.5", "/other"]  # disagreement is visible


def test_with_provenance_copies_and_removes() -> None:
    table = _table(["a"], dtype="bfloat16")
    assert table.with_provenance(dtype=None).provenance == {}
    assert table.provenance == {"dtype": "bfloat16"}  # the original is unchanged
    with pytest.raises(InputError, match="provenance"):
        table.with_provenance(bad=float("nan"))


def test_score_records_reference_candidates_data_and_version(tmp_path: Path) -> None:
    task = get_task("figure2-h4")
    for step in (1, 2):
        save(build_gpt("tiny", task.vocab_size, task.max_length, seed=step),
             tmp_path / f"ckpt-{step}", tokenizer=task.tokenizer())
    data = tmp_path / "data.jsonl"
    write_jsonl(data, [task.to_row(p) for p in task.sample(4, seed=0)])
    out = tmp_path / "s.parquet"
    assert main(["score", "--model", str(tmp_path / "ckpt-1"),
                 f"{tmp_path / 'ckpt-2'}@temperature=0.5", "--data", str(data),
                 "--reference", str(tmp_path / "ckpt-1"), "--out", str(out),
                 "--no-progress"]) == 0
    prov = ScoreTable.read_parquet(out).provenance
    ckpt1, ckpt2 = (tmp_path / "ckpt-1").resolve(), (tmp_path / "ckpt-2").resolve()
    assert prov["reference"] == ckpt1.as_posix()
    assert prov["candidates"] == {"ckpt-1": ckpt1.as_posix(),
                                  "ckpt-2@temperature=0.5": f"{ckpt2.as_posix()}@temperature=0.5"}
    assert prov["data"] == {"path": data.resolve().as_posix(),
                            "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    assert prov["dtype"] == "float32" and prov["lmcoverage_version"] == __version__
    assert "EOS" in prov["eos"]
    out2 = tmp_path / "t.parquet"  # without --reference: the rows' logp_data
    assert main(["score", "--model", str(tmp_path / "ckpt-1"), "--data", str(data),
                 "--out", str(out2), "--no-progress"]) == 0
    assert ScoreTable.read_parquet(out2).provenance["reference"] == (
        f"logp_data from {data.resolve().as_posix()}")
