"""``reference --dtype``: the rows record the dtype the reference ran in (``ref_dtype``), and a
table scored from them carries it (``reference_dtype``) into its provenance and the
below-float32 note of ``profile``/``compare``, whatever dtype the candidates ran in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.tiny_llama import saved_word_llama

from lmcoverage.cli import main
from lmcoverage.io import read_jsonl, write_jsonl
from lmcoverage.metrics.warnings import precision_warning
from lmcoverage.scoretable import ScoreTable

WORDS = ["<pad>", "<unk>", "<eos>", "say", "a", "b", "c", "?"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_word_llama(WORDS, tmp_path_factory.mktemp("refdtype") / "llama")


def test_a_bfloat16_reference_is_noted_in_the_tables_scored_from_it(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "anyjudge.py").write_text("def judge(row, response):\n    return True\n")
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"say {w} ?", "answer": w, "id": w}
                                             for w in "abc"])
    notes = {}
    for dtype in ("float32", "bfloat16"):
        pid, scores = tmp_path / f"pid-{dtype}.jsonl", tmp_path / f"s-{dtype}.parquet"
        assert main(["reference", "--model", str(model), "--data", "prompts.jsonl", "--n", "2",
                     "--verifier", "anyjudge:judge", "--out", str(pid), "--max-new-tokens",
                     "3", "--no-progress", "--device", "cpu", "--dtype", dtype]) == 0
        assert {row["ref_dtype"] for row in read_jsonl(pid)} == {dtype}
        assert main(["score", "--model", str(model), "--data", str(pid), "--out", str(scores),
                     "--no-progress", "--device", "cpu"]) == 0  # candidates in float32
        prov = ScoreTable.read_parquet(scores).provenance
        assert prov["dtype"] == "float32" and prov["reference_dtype"] == dtype
        capsys.readouterr()
        assert main(["profile", str(scores), "--n", "2,4"]) == 0
        err = capsys.readouterr().err
        assert f"reference_dtype: {dtype}" in err, err
        notes[dtype] = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes["float32"] == []
    (note,) = notes["bfloat16"]
    assert note.startswith("note: pi_D's logp_data (lmcoverage reference) computed in "
                           "bfloat16, not float32: on SmolLM2-135M"), note
    assert note.endswith("rebuild the reference with --dtype float32 for exact numbers"), note


def test_score_reference_model_replaces_the_rows_logp_data_and_their_dtype(
        model: Path, tmp_path: Path) -> None:
    """With ``--reference MODEL`` the rows' logp_data (and so their ref_dtype) is not used."""
    rows = [{"prompt": "say a ?", "response": "b", "logp_data": -1.0, "n_correct": 1,
             "n_samples": 2, "ref_dtype": "bfloat16"}]
    write_jsonl(tmp_path / "pid.jsonl", rows)
    out = tmp_path / "s.parquet"
    assert main(["score", "--model", str(model), "--data", str(tmp_path / "pid.jsonl"),
                 "--reference", str(model), "--out", str(out), "--no-progress"]) == 0
    table = ScoreTable.read_parquet(out)
    assert "reference_dtype" not in table.provenance
    assert not np.allclose(table.example_column("loglik_data"), -1.0)


def test_the_note_names_each_low_precision_source() -> None:
    table = ScoreTable.from_matrix(np.zeros((1, 2)), ["m"])
    assert precision_warning(table.with_provenance(dtype="float32",
                                                   reference_dtype="float32")) is None
    both = precision_warning(table.with_provenance(dtype="bfloat16", reference_dtype="float16"))
    assert both is not None and both.startswith(
        "note: scored in bfloat16, and pi_D's logp_data (lmcoverage reference) computed in "
        "float16, not float32: on SmolLM2")
    assert both.endswith("rescore and rebuild the reference with --dtype float32 for exact "
                         "numbers")
    half = precision_warning(table.with_provenance(reference_dtype=["float16", "float32"]))
    assert half is not None and "computed in float16, not float32: float16's error was not " \
        "measured; " in half
    scored = precision_warning(table.with_provenance(dtype="bfloat16"))  # unchanged wording
    assert scored is not None and scored.startswith("note: scored in bfloat16, not float32: on")
    assert scored.endswith("; rescore with --dtype float32 for exact numbers")
