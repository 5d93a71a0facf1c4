"""``lmcoverage score``: task and JSONL inputs, model globs and names, bad input -> exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lmcoverage.cli import main
from lmcoverage.engine import load_causal_lm, mass_correct, score_responses
from lmcoverage.io import write_jsonl
from lmcoverage.models.gpt import build_gpt
from lmcoverage.models.hf import save
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

TASK = "figure2-h4"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/x/checkpoint-{20,100}, runs/y/checkpoint-100: tiny GPTs with the task's tokenizer."""
    root = tmp_path_factory.mktemp("score")
    task = get_task(TASK)
    for sub, step in (("x", 100), ("x", 20), ("y", 100)):
        model = build_gpt("tiny", task.vocab_size, task.max_length, seed=step + len(sub))
        save(model, root / "runs" / sub / f"checkpoint-{step}", tokenizer=task.tokenizer())
    write_jsonl(root / "data.jsonl", [task.to_row(p) for p in task.sample(6, seed=3)])
    return root


def test_llama_directory_scores_through_the_cli(runs: Path, tmp_path: Path) -> None:
    task = get_task(TASK)
    llama = save(tiny_llama(task.vocab_size, task.max_length, seed=0), tmp_path / "llama",
                 tokenizer=task.tokenizer())
    out = tmp_path / "llama.parquet"
    assert main(["score", "--model", str(llama), "--data", str(runs / "data.jsonl"),
                 "--out", str(out), "--no-progress"]) == 0
    table = ScoreTable.read_parquet(out)
    problems = task.sample(6, seed=3)
    model = load_causal_lm(llama)
    want = score_responses(model, [list(p.prompt_ids) for p in problems],
                           [[list(p.response_ids)] for p in problems], progress=False)
    assert table.models == ["llama"]
    np.testing.assert_allclose(table.matrix("loglik")[0], [s[0] for s in want], atol=1e-4)


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err


def test_task_mode_writes_exact_scores(runs: Path) -> None:
    out = runs / "task.parquet"
    assert main(["score", "--model", str(runs / "runs/x/checkpoint-*"), "--task", TASK,
                 "--n", "12", "--seed", "5", "--out", str(out), "--no-progress"]) == 0
    table = ScoreTable.read_parquet(out)
    assert table.models == ["checkpoint-20", "checkpoint-100"]  # natural order, short names
    problems = get_task(TASK).sample(12, 5)
    model = load_causal_lm(runs / "runs/x/checkpoint-100")
    prompts = [list(p.prompt_ids) for p in problems]
    want = score_responses(model, prompts, [[list(p.response_ids)] for p in problems],
                           progress=False)
    np.testing.assert_allclose(table.matrix("loglik")[1], [s[0] for s in want], atol=1e-4)
    np.testing.assert_allclose(table.example_column("loglik_data"),
                               [p.logp_data for p in problems])
    mass = mass_correct(model, prompts, [p.valid_paths for p in problems], progress=False)
    np.testing.assert_allclose(table.matrix("mass_correct")[1], mass, rtol=1e-3)
    # Drawn from the mixture: plain Monte Carlo weights (no renormalisation over the classes
    # that happen to be present).
    np.testing.assert_array_equal(table.example_column("weight"), np.full(12, 1 / 12))


def test_per_class_sampling(runs: Path) -> None:
    out = runs / "per_class.parquet"
    assert main(["score", "--model", str(runs / "runs/y/checkpoint-100"), "--task", TASK,
                 "--n", "3", "--per-class", "--correct", "support", "--out", str(out),
                 "--no-progress"]) == 0
    table = ScoreTable.read_parquet(out)
    assert table.models == ["checkpoint-100"]
    assert sorted(table.example_column("group").tolist()) == ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    groups, weights = table.example_column("group"), table.example_column("weight")
    for g, w in get_task(TASK).class_weights.items():  # post-stratified to the mixture
        assert weights[groups == str(g)].sum() == pytest.approx(w)


def test_data_mode_matches_task_ids_and_names_are_unique(runs: Path) -> None:
    out = runs / "data.parquet"
    assert main(["score", "--model", str(runs / "runs/x/checkpoint-100"),
                 str(runs / "runs/y/checkpoint-100"), "--data", str(runs / "data.jsonl"),
                 "--out", str(out), "--no-progress"]) == 0
    table = ScoreTable.read_parquet(out)
    assert table.models == ["x/checkpoint-100", "y/checkpoint-100"]
    problems = get_task(TASK).sample(6, seed=3)
    model = load_causal_lm(runs / "runs/y/checkpoint-100")
    want = score_responses(model, [list(p.prompt_ids) for p in problems],
                           [[list(p.response_ids)] for p in problems], progress=False)
    np.testing.assert_allclose(table.matrix("loglik")[1], [s[0] for s in want], atol=1e-4)
    assert table.example_column("group").tolist() == [str(p.group) for p in problems]
    assert np.all(table.example_column("weight") == 1.0)
    assert np.all(table.matrix("mass_correct") > 0)  # from the rows' valid_paths


def test_bad_inputs_exit_2_without_output(runs: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = str(runs / "runs/x/checkpoint-100")
    out = tmp_path / "s.parquet"
    data = str(runs / "data.jsonl")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((runs / "runs/x/checkpoint-100/config.json")
                                            .read_text())
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((no_weights / "config.json").read_text())
    torch.save({"w": torch.zeros(1)}, pickled / "pytorch_model.bin")
    bad_symbol = tmp_path / "bad_symbol.jsonl"
    write_jsonl(bad_symbol, [{"prompt": "1 2 / 1 2 =", "response": "1 2"},
                             {"prompt": "1 2 / 1 2 =", "response": "1 banana"}])
    no_response = tmp_path / "no_response.jsonl"
    write_jsonl(no_response, [{"prompt": "1 2 / 1 2 ="}])
    task = get_task(TASK)
    short = tmp_path / "short"
    save(build_gpt("tiny", task.vocab_size, 8), short, tokenizer=task.tokenizer())
    cases = [
        (["--model", str(no_weights), "--data", data], "no weights"),
        (["--model", str(pickled), "--data", data], "pickle"),
        (["--model", good, "--data", str(bad_symbol)], "bad_symbol.jsonl:2"),
        (["--model", good, "--data", str(no_response)], "no_response.jsonl:1: 'response'"),
        (["--model", str(short), "--task", TASK, "--n", "2"], "longer than the model's context"),
        (["--model", good, "--task", "figure9"], "figure9"),
        (["--model", good, "--task", TASK, "--data", data], "exactly one of"),
        (["--model", good, good, "--data", data], "given twice"),
        (["--model", str(tmp_path / "nothing-*"), "--data", data], "no directory matches"),
        (["--model", good, "--data", data, "--n", "3"], "--task only"),
        (["--model", good, "--task", TASK, "--n", "0"], "n must be a positive integer"),
    ]
    for args, match in cases:
        _fails(["score", *args, "--out", str(out), "--no-progress"], capsys, match)
        assert not out.exists() and not list(tmp_path.glob(".s.parquet*"))
    _fails(["score", "--model", good, "--data", data, "--out", str(tmp_path)], capsys,
           "is a directory")


def test_score_models_mass_with_and_without_the_held_out_response(runs: Path) -> None:
    from lmcoverage.engine.table import Examples, score_models

    model_dir = runs / "runs/x/checkpoint-20"
    correct = [[[5, 6], [7, 8]], [[5, 6], [7, 8]], []]
    examples = Examples(group=["a", "b", "c"], weight=np.ones(3),
                        prompt_ids=[[1, 2], [1, 2], [3]],
                        response_ids=[[5, 6], [9, 9], [4]], correct_ids=correct)
    table = score_models([model_dir], examples, names=["m"], progress=False)
    model = load_causal_lm(model_dir)
    want = mass_correct(model, [[1, 2], [1, 2], [3]], correct, progress=False)
    np.testing.assert_allclose(table.matrix("mass_correct")[0], want, rtol=1e-5)
    assert table.matrix("mass_correct")[0, 2] == 0.0


def test_task_options_score_a_scaled_down_variant(tmp_path: Path, capsys) -> None:
    small = get_task("figure1-finetune", layers=2, nodes_per_layer=2)
    model_dir = tmp_path / "small"
    save(build_gpt("tiny", small.vocab_size, small.max_length, seed=0), model_dir,
         tokenizer=small.tokenizer())
    out = tmp_path / "s.parquet"
    base = ["score", "--model", str(model_dir), "--task", "figure1-finetune", "--n", "8",
            "--no-progress", "--out", str(out)]
    assert main([*base, "--task-option", "layers=2", "--task-option", "nodes_per_layer=2"]) == 0
    table = ScoreTable.read_parquet(out)
    expected = [small.log_prob_data(p, p.response_ids) for p in small.sample(8, 0)]
    np.testing.assert_allclose(table.example_column("loglik_data"), expected)
    out.unlink()
    capsys.readouterr()
    assert main(base) == 2  # the full-size task does not fit the small model's vocabulary
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()
