"""``score --data`` a ``datasets`` folder (``save_to_disk``): the provenance records the folder
(path and a digest over its files), so ``compare`` without ``--examples`` links each example to
its row's problem as it does for a JSONL file, and refuses a folder changed since scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.io import path_sha256, write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

TASK = "figure2-h4"
PROBLEMS = 8


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama directory with the task's tokenizer."""
    task = get_task(TASK)
    return save(tiny_llama(task.vocab_size, task.max_length, seed=0),
                tmp_path_factory.mktemp("folder") / "llama", tokenizer=task.tokenizer())


def _rows(ids: list[object]) -> list[dict[str, object]]:
    """Task rows (no ``support``: datasets wants one type per column) named ``ids``."""
    task = get_task(TASK)
    rows = [task.to_row(p) for p in task.sample(len(ids), seed=3)]
    return [{**{k: v for k, v in row.items() if k != "support"}, "problem": problem}
            for row, problem in zip(rows, ids, strict=True)]


def _verdicts(path: Path, names: list[str], ids: list[object]) -> None:
    """Verdicts keyed by problem id, written in another order than the rows."""
    rng = np.random.default_rng(5)
    write_jsonl(path, [{"model": m, "problem": str(p), "sample_index": k,
                        "correct": bool(rng.random() < 0.3 + 0.2 * j)}
                       for j, m in enumerate(names) for p in sorted(map(str, ids))
                       for k in range(4)])


@pytest.mark.parametrize("kind", ["string ids", "shuffled numeric ids"])
def test_compare_joins_a_scored_datasets_folder_by_problem(llama: Path, tmp_path: Path,
                                                           kind: str, capsys) -> None:
    datasets = pytest.importorskip("datasets")
    from lmcoverage.verify.predictiveness import example_problems

    order = np.random.default_rng(2).permutation(PROBLEMS).tolist()
    ids: list[object] = ([f"q{i}" for i in order] if kind == "string ids" else order)
    rows = _rows(ids)
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    write_jsonl(tmp_path / "rows.jsonl", rows)
    scores = tmp_path / "scores.parquet"
    assert main(["score", "--model", str(llama), f"{llama}@temperature=0.5",
                 f"{llama}@temperature=2.0", "--data", str(folder), "--out", str(scores),
                 "--no-progress"]) == 0
    table = ScoreTable.read_parquet(scores)
    prov = table.provenance
    where = folder.resolve().as_posix()
    assert prov["data"] == {"path": where, "sha256": path_sha256(folder)}
    assert prov["reference"] == f"logp_data from {where}"
    assert "EOS" in prov["eos"]
    assert example_problems(table) == [str(p) for p in ids]

    _verdicts(tmp_path / "v.jsonl", list(table.models), ids)
    results = []
    for extra in ([], ["--examples", str(tmp_path / "rows.jsonl")]):
        out = tmp_path / f"r{len(extra)}" / "report.html"
        assert main(["compare", str(scores), "--verdicts", str(tmp_path / "v.jsonl"),
                     "--out", str(out), "--bootstrap", "50", *extra]) == 0, capsys.readouterr()
        results.append(json.loads((out.parent / "results.json").read_text()))
    for key in ("paired", "regret"):  # joined by the folder's rows = joined by the file's
        assert results[0][key] == results[1][key]

    (folder / "dataset_info.json").write_text("{}")  # changed after scoring: refused
    capsys.readouterr()
    assert main(["compare", str(scores), "--verdicts", str(tmp_path / "v.jsonl"),
                 "--out", str(tmp_path / "r3" / "report.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{where} changed since it was scored" in err, err


def test_path_sha256_covers_a_folders_names_and_bytes(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "f.txt").write_bytes(b"abc")
    assert path_sha256(tmp_path / "f.txt") == hashlib.sha256(b"abc").hexdigest()
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a").write_bytes(b"1")
    (folder / "sub" / "b").write_bytes(b"2")
    first = path_sha256(folder)
    (folder / "sub" / "b").rename(folder / "sub" / "c")  # same bytes, another name
    assert path_sha256(folder) != first
    (folder / "sub" / "c").rename(folder / "sub" / "b")
    assert path_sha256(folder) == first
    (folder / "a").write_bytes(b"9")
    assert path_sha256(folder) != first


def test_a_sharded_score_records_the_provenance_of_the_unsharded_one(llama: Path,
                                                                      tmp_path: Path) -> None:
    """``score --shards`` merges its shards' provenance: the table still names the folder it
    was scored from (else compare would link example i to problem "i")."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(_rows([f"q{i}" for i in range(PROBLEMS)])).save_to_disk(
        str(folder))
    provs = []
    for extra in ([], ["--shards", "3"]):
        out = tmp_path / f"s{len(extra)}.parquet"
        assert main(["score", "--model", str(llama), f"{llama}@temperature=0.5", "--data",
                     str(folder), "--out", str(out), "--no-progress", *extra]) == 0
        provs.append(ScoreTable.read_parquet(out).provenance)
    assert provs[1] == provs[0]
    assert provs[0]["data"]["path"] == folder.resolve().as_posix()
