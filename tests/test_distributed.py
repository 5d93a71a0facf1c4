"""Sharded ``score``: the plan keeps prompts together and the input order; ``--shards K`` gives
the unsharded table (to float32 rounding) and resumes from finished shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lmcoverage.engine.sharded as dist
from lmcoverage.cli import main
from lmcoverage.io import write_jsonl
from lmcoverage.models.gpt import build_gpt
from lmcoverage.models.hf import save
from lmcoverage.scoretable import ScoreTable
from lmcoverage.sharding import plan_shards, shard_dir
from lmcoverage.tasks import get_task

TASK = "figure2-h4"


def test_plan_keeps_prompts_together_in_input_order() -> None:
    keys = ["a", "a", "b", "c", "b", "d", "e", "e"]
    plan = plan_shards(keys, 3)
    assert sorted(i for rows in plan for i in rows) == list(range(len(keys)))
    for key in set(keys):
        assert sum(any(keys[i] == key for i in rows) for rows in plan) == 1
    assert [rows[0] for rows in plan] == sorted(rows[0] for rows in plan)
    assert plan_shards(list(range(5)), 9) == [[0], [1], [2], [3], [4]]
    assert plan_shards(list(range(6)), 2) == [[0, 1, 2], [3, 4, 5]]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    task = get_task(TASK)
    for step in (10, 20):
        model = build_gpt("tiny", task.vocab_size, task.max_length, seed=step)
        save(model, root / f"checkpoint-{step}", tokenizer=task.tokenizer())
    rows = [task.to_row(p) for p in task.sample(10, seed=3)]
    write_jsonl(root / "data.jsonl", rows + rows[:3])  # repeated prompts share a shard
    return root


def _score(root: Path, out: Path, *extra: str) -> int:
    return main(["score", "--model", str(root / "checkpoint-*"), "--data",
                 str(root / "data.jsonl"), "--out", str(out), "--no-progress", *extra])


def _same(a: Path, b: Path) -> None:
    ta, tb = ScoreTable.read_parquet(a), ScoreTable.read_parquet(b)
    assert ta.models == tb.models
    np.testing.assert_array_equal(ta.example_ids, tb.example_ids)
    for col in ("loglik", "mass_correct"):
        np.testing.assert_allclose(ta.matrix(col), tb.matrix(col), rtol=1e-6, atol=1e-6)
    for col in ("loglik_data", "weight", "group"):
        np.testing.assert_array_equal(ta.example_column(col), tb.example_column(col))


def test_sharded_score_equals_unsharded_and_resumes(inputs: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert _score(inputs, tmp_path / "whole.parquet") == 0
    assert _score(inputs, tmp_path / "sharded.parquet", "--shards", "3") == 0
    _same(tmp_path / "whole.parquet", tmp_path / "sharded.parquet")
    assert not shard_dir(tmp_path / "sharded.parquet").exists()

    # A run interrupted during its second shard: the re-run computes only the other two.
    out = tmp_path / "resumed.parquet"
    assert _score(inputs, out, "--shards", "3", "--executor", "nope") == 2
    calls: list[list[int]] = []
    interrupt = True
    real = dist._score_shard

    def counting(*args: Any) -> Any:
        calls.append(list(args[-1]))
        if interrupt and len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(dist, "_score_shard", counting)
    assert _score(inputs, out, "--shards", "3") == 130
    assert len(list(shard_dir(out).glob("shard-*.parquet"))) == 1 and not out.exists()
    calls.clear()
    interrupt = False
    assert _score(inputs, out, "--shards", "3") == 0
    assert len(calls) == 2
    _same(tmp_path / "sharded.parquet", out)
    assert not shard_dir(out).exists()


def test_sharded_sample_writes_the_same_file(tmp_path: Path) -> None:
    from test_real_models import _tiny

    model = _tiny(tmp_path / "m", 0)
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, [{"prompt": p} for p in ("a b", "c", "a", "b b", "c a", "a", "b")])
    files = []
    for name, extra in (("one", []), ("three", ["--shards", "3"])):
        out = tmp_path / f"{name}.jsonl"
        assert main(["sample", "--model", str(model), "--data", str(prompts), "--n", "2",
                     "--batch-size", "4", "--max-new-tokens", "4", "--seed", "5", "--out",
                     str(out), "--no-progress", "--device", "cpu", *extra]) == 0
        files.append(out.read_bytes())
    assert files[0] == files[1] and len(files[0].splitlines()) == 14
    assert not shard_dir(tmp_path / "three.jsonl").exists()


def test_sharded_verify_writes_the_same_verdicts(tmp_path: Path) -> None:
    from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama

    model = tiny_llama(tmp_path / "llama", seed=0)
    write_jsonl(tmp_path / "prompts.jsonl", make_problems(9, seed=0))
    argv = ["verify", "--model", str(model), "--model", f"{model}@temperature=0.5", "--data",
            str(tmp_path / "prompts.jsonl"), "--samples", "16", "--verifier", "number",
            "--max-new-tokens", "3", "--no-progress", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "one.jsonl")]) == 0
    assert main([*argv, "--out", str(tmp_path / "three.jsonl"), "--shards", "3"]) == 0
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "three.jsonl").read_bytes()
    assert len((tmp_path / "one.jsonl").read_bytes().splitlines()) == 2 * 9 * 16
    assert not shard_dir(tmp_path / "three.jsonl").exists()


def test_bad_executor_options_exit_2_before_work(inputs: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.parquet"
    for extra, match in ((["--executor", "nope"], "--executor"),
                         (["--ray-address", "auto"], "--ray-address"),
                         (["--shards", "0"], "--shards")):
        assert _score(inputs, out, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and match in err, err
        assert not out.exists() and not shard_dir(out).exists()
