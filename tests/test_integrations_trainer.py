"""CoverageCallback in a real ``Trainer`` run: metrics in the logs, tables in the checkpoints,
the same numbers as ``lmcoverage score`` + ``lmcoverage profile`` on each checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate",
                    reason="Trainer needs accelerate: pip install 'lmcoverage[train]'")

from lmcoverage.cli import main  # noqa: E402
from lmcoverage.io import write_jsonl  # noqa: E402
from lmcoverage.scoretable import ScoreTable  # noqa: E402
from lmcoverage.tasks import get_task  # noqa: E402
from tiny_llama import tiny_llama

TASK = "figure2-h4"
NS = ["2", "4", "8", "16"]


class _Pairs(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Prompt + response token ids, loss on the response only."""

    def __init__(self, problems: list[Any]) -> None:
        self.items = [(list(p.prompt_ids), list(p.response_ids)) for p in problems]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        prompt, response = self.items[i]
        return {"input_ids": prompt + response, "labels": [-100] * len(prompt) + response}


def _collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n], labels[b, :n], mask[b, :n] = (torch.tensor(r["input_ids"]),
                                                  torch.tensor(r["labels"]), 1)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _train(tmp_path: Path, reference: Path, every: str = "eval") -> tuple[Any, Path]:
    from transformers import Trainer, TrainingArguments

    from lmcoverage.integrations import CoverageCallback

    task = get_task(TASK)
    out = tmp_path / "run"
    args = TrainingArguments(output_dir=str(out), max_steps=4, per_device_train_batch_size=8,
                             learning_rate=3e-3, eval_strategy="steps", eval_steps=2,
                             save_steps=2, logging_steps=1, report_to=[], use_cpu=True,
                             disable_tqdm=True, seed=0)
    trainer = Trainer(model=tiny_llama(task.vocab_size, task.max_length, seed=0), args=args,
                      train_dataset=_Pairs(task.sample(64, seed=1)),
                      eval_dataset=_Pairs(task.sample(8, seed=2)), data_collator=_collate,
                      processing_class=task.tokenizer(),
                      callbacks=[CoverageCallback(reference, every=every)])  # type: ignore[arg-type]
    trainer.train()
    return trainer, out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "reference.jsonl"
    task = get_task(TASK)
    write_jsonl(path, [{k: v for k, v in task.to_row(p).items() if k != "support"}
                       for p in task.sample(24, seed=3)])
    return path


def test_trainer_run_logs_coverage_and_matches_the_cli(reference: Path, tmp_path: Path) -> None:
    trainer, out = _train(tmp_path, reference)
    logged = {e["step"]: e for e in trainer.state.log_history if "coverage/kl" in e}
    assert sorted(logged) == [2, 4]
    for step, entry in logged.items():
        folder = out / f"checkpoint-{step}"
        assert (folder / "coverage.parquet").is_file()
        scores, profile = tmp_path / f"s{step}.parquet", tmp_path / f"p{step}.json"
        assert main(["score", "--model", str(folder), "--data", str(reference), "--out",
                     str(scores), "--no-progress"]) == 0
        assert main(["profile", str(scores), "--n", *NS, "--out", str(profile)]) == 0
        cli = json.loads(profile.read_text())["models"][0]
        assert abs(entry["coverage/kl"] - cli["kl"]) <= 1e-6
        assert abs(entry["coverage/cross_entropy"] - cli["cross_entropy"]) <= 1e-6
        assert abs(entry["coverage/pass_at_8"] - cli["pass_at"]["8"]) <= 1e-6
        for n in NS:
            assert abs(entry[f"coverage/cov_{n}"] - cli["cov"][n]) <= 1e-6
        mine = ScoreTable.read_parquet(folder / "coverage.parquet")
        np.testing.assert_allclose(mine.matrix("loglik"),
                                   ScoreTable.read_parquet(scores).matrix("loglik"), atol=1e-6)
    selection = json.loads((out / "coverage" / "selection.json").read_text())
    assert selection["candidates"] == ["checkpoint-2", "checkpoint-4"]
    final = trainer.state.log_history[-1]
    for key in ("tournament", "cross_entropy"):
        assert selection[key]["step"] in (2, 4)
        assert final[f"coverage/{key}_pick_step"] == selection[key]["step"]
    assert selection["tournament"]["params"]["n"] == 16.0
    table = ScoreTable.read_parquet(out / "coverage" / "scores.parquet")
    assert table.models == ["checkpoint-2", "checkpoint-4"]


def test_samples_file_reference_scores_its_token_ids(reference: Path, tmp_path: Path) -> None:
    """A ``lmcoverage sample`` file (ids + logp) is scored as is; every="save" scores at saves."""
    from lmcoverage.engine import load_causal_lm, score_responses

    task = get_task(TASK)
    problems = task.sample(6, seed=4)
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [{"prompt_ids": list(p.prompt_ids), "response_ids": list(y),
                           "sample_index": s, "logp": float(np.log(prob))}
                          for p in problems for s, (y, prob) in enumerate(p.support[:2])])
    trainer, out = _train(tmp_path, samples, every="save")
    table = ScoreTable.read_parquet(out / "checkpoint-4" / "coverage.parquet")
    model = load_causal_lm(out / "checkpoint-4")
    rows = [(list(p.prompt_ids), list(y)) for p in problems for y, _ in p.support[:2]]
    want = score_responses(model, [p for p, _ in rows], [[y] for _, y in rows], progress=False)
    np.testing.assert_allclose(table.matrix("loglik")[0], [s[0] for s in want], atol=1e-5)
    assert sorted(e["step"] for e in trainer.state.log_history if "coverage/kl" in e) == [2, 4]
    # evaluate() alone (no train()) logs the metrics too.
    from transformers import Trainer

    from lmcoverage.integrations import CoverageCallback

    alone = Trainer(model=trainer.model, args=trainer.args, eval_dataset=trainer.eval_dataset,
                    data_collator=_collate, processing_class=trainer.processing_class,
                    callbacks=[CoverageCallback(samples)])  # type: ignore[arg-type]
    metrics = alone.evaluate()
    entry = next(e for e in alone.state.log_history if "coverage/kl" in e)
    assert entry["coverage/cross_entropy"] == pytest.approx(
        -float(np.mean(table.matrix("loglik")[0])), abs=1e-6)
    assert "eval_loss" in metrics


def test_bad_arguments_are_refused_before_training(reference: Path, tmp_path: Path) -> None:
    from lmcoverage.errors import InputError
    from lmcoverage.integrations import CoverageCallback

    with pytest.raises(InputError, match="every"):
        CoverageCallback(reference, every="step")  # type: ignore[arg-type]
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"prompt": "1 2 / 1 2 =", "response": "1 2"}])
    with pytest.raises(InputError, match="logp_data"):
        CoverageCallback(bad)


class _SeenLogs:
    """A stand-in reporting integration: records what ``on_log`` receives."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        self.keys: set[str] = set()
        outer = self

        class Recorder(TrainerCallback):  # type: ignore[misc]
            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                       **kwargs: Any) -> None:
                outer.keys.update(logs or {})

        self.callback = Recorder()


def test_sft_trainer_bf16_default_scores_like_the_cli(reference: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """TRL's SFTTrainer defaults to bf16=True: the callback still scores in float32 (equal to
    ``lmcoverage score`` of the checkpoint); dtype="auto" follows the autocast and says so."""
    pytest.importorskip("trl", reason="pip install 'lmcoverage[train]'")
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from lmcoverage.integrations import CoverageCallback

    task = get_task(TASK)

    def rows(problems: list[Any]) -> Dataset:
        return Dataset.from_list([{
            "input_ids": list(p.prompt_ids) + list(p.response_ids),
            "completion_mask": [0] * len(p.prompt_ids) + [1] * len(p.response_ids)}
            for p in problems])

    args = SFTConfig(output_dir=str(tmp_path / "run"), max_steps=4,
                     per_device_train_batch_size=8, learning_rate=3e-3, eval_strategy="steps",
                     eval_steps=4, save_steps=4, logging_steps=2, report_to=[], use_cpu=True,
                     disable_tqdm=True, seed=0)
    assert args.bf16  # TRL's default
    exact = CoverageCallback(reference, ns=(2, 4))
    trainer = SFTTrainer(model=tiny_llama(task.vocab_size, task.max_length, seed=0, pad=0),
                         args=args, train_dataset=rows(task.sample(64, seed=1)),
                         eval_dataset=rows(task.sample(8, seed=2)),
                         processing_class=task.tokenizer(), callbacks=[exact])
    auto = CoverageCallback(reference, ns=(2, 4), dtype="auto", trainer=trainer)
    trainer.add_callback(auto)
    seen = _SeenLogs()
    trainer.add_callback(seen.callback)
    with caplog.at_level("WARNING", logger="lmcoverage.integrations.trainer"):
        trainer.train()
    assert "dtype='auto': scoring as the Trainer computes (the Trainer's bf16" in caplog.text
    scores = tmp_path / "s.parquet"
    assert main(["score", "--model", str(tmp_path / "run" / "checkpoint-4"), "--data",
                 str(reference), "--out", str(scores), "--no-progress", "--device", "cpu"]) == 0
    cli = ScoreTable.read_parquet(scores).matrix("loglik")[0]
    np.testing.assert_allclose(exact.tables[4].matrix("loglik")[0], cli, atol=1e-4, rtol=0)
    assert exact.tables[4].provenance["dtype"] == "float32"
    under_autocast = auto.tables[4].matrix("loglik")[0]
    assert np.abs(under_autocast - cli).max() > 1e-4  # what the default avoids
    assert auto.tables[4].provenance["dtype"] == "float32 with bf16 autocast"
    assert "coverage/kl" in seen.keys  # trainer=... reaches every on_log (report_to)


def test_scoring_precision_scores_low_precision_weights_in_float32() -> None:
    """Weights stored in bfloat16 are scored through float32 copies and put back bit for bit."""
    from lmcoverage.engine import score_responses
    from lmcoverage.integrations.trainer import scoring_precision

    model = tiny_llama(16, 32, seed=0).to(torch.bfloat16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompts, responses = [[1, 2, 3]], [[[4, 5], [6]]]
    with scoring_precision(model, "float32"):
        assert next(model.parameters()).dtype == torch.float32
        got = score_responses(model, prompts, responses, progress=False)[0]
    upcast = tiny_llama(16, 32, seed=0).to(torch.bfloat16).float()
    want = score_responses(upcast, prompts, responses, progress=False)[0]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert all(torch.equal(before[k], v) and v.dtype == torch.bfloat16
               for k, v in model.state_dict().items())
    from lmcoverage.errors import InputError
    from lmcoverage.integrations import CoverageCallback

    with pytest.raises(InputError, match="dtype"):
        CoverageCallback(Path("unused.jsonl"), dtype="float8")
