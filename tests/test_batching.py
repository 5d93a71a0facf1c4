"""``batch_size="auto"``: token budgets, halving on out-of-memory, and the ``--batch-size`` flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from injected_oom import limit_passes, no_memory
from lmcoverage.cli import main
from lmcoverage.engine import score_responses, scoring
from lmcoverage.errors import EnvError, InputError
from lmcoverage.io import write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

VOCAB = 40


@pytest.fixture(scope="module")
def llama() -> torch.nn.Module:
    return tiny_llama(VOCAB, 64, seed=0)


def _problems(seed: int) -> tuple[list[list[int]], list[list[list[int]]]]:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(0, VOCAB, int(rng.integers(1, 12))).tolist() for _ in range(9)]
    responses = [[rng.integers(0, VOCAB, int(rng.integers(1, 8))).tolist()
                  for _ in range(int(rng.integers(1, 4)))] for _ in prompts]
    return prompts, responses


def test_budgets_of_auto_and_of_a_number() -> None:
    cpu = scoring.batch_budget("auto", "cpu")
    assert (cpu.rows, cpu.tokens, cpu.logits) == (scoring.AUTO_MAX_ROWS,
                                                  *scoring.AUTO_BUDGETS["cpu"])
    assert scoring.batch_budget("auto", "cuda:1").tokens == scoring.AUTO_BUDGETS["cuda"][0]
    assert scoring.batch_budget(7) == scoring.Budget(7)
    assert scoring.Budget(7, 100, 50).halved() == scoring.Budget(3, 50, 25)
    for bad in (0, -1, True, 2.5, "big"):
        with pytest.raises(InputError, match="batch_size"):
            scoring.batch_budget(bad)  # type: ignore[arg-type]


def test_auto_gives_the_scores_of_any_fixed_batch_size(llama: torch.nn.Module) -> None:
    prompts, responses = _problems(0)
    want = score_responses(llama, prompts, responses, batch_size=1, progress=False)
    got = score_responses(llama, prompts, responses, progress=False)  # auto
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_out_of_memory_halves_the_budget_and_retries(llama: torch.nn.Module,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An injected CUDA out-of-memory error on passes over 2 prompts or 3 rows: the pass is
    redone with half the budget, and every score is the one an unconstrained run gives."""
    prompts, responses = _problems(1)
    want = score_responses(llama, prompts, responses, progress=False)
    seen = limit_passes(monkeypatch, scoring, max_prompts=2, max_rows=3)
    got = score_responses(llama, prompts, responses, progress=False)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert seen["oom"] and seen["prompts"][0] > 2  # it did start big, then shrank
    assert max(seen["prompts"][-3:]) <= 2


def test_out_of_memory_on_a_single_sequence_is_an_env_error(
        llama: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    no_memory(monkeypatch, scoring)
    with pytest.raises(EnvError, match="out of device memory scoring a single sequence"):
        score_responses(llama, [[1, 2]], [[[3]]], progress=False)


def test_batch_size_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = get_task("figure2-h4")
    model = save(tiny_llama(task.vocab_size, task.max_length, seed=1), tmp_path / "m",
                 tokenizer=task.tokenizer())
    data = tmp_path / "d.jsonl"
    write_jsonl(data, [task.to_row(p) for p in task.sample(4, seed=0)])
    for value in ("auto", "3"):
        assert main(["score", "--model", str(model), "--data", str(data), "--out",
                     str(tmp_path / f"{value}.parquet"), "--batch-size", value,
                     "--no-progress"]) == 0
    for bad in ("0", "many"):
        out = tmp_path / "bad.parquet"
        assert main(["score", "--model", str(model), "--data", str(data), "--out", str(out),
                     "--batch-size", bad, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"--batch-size {bad!r}" in err, err
        assert not out.exists()


def test_a_huge_prompt_line_is_refused_before_it_is_tokenized_whole(tmp_path: Path) -> None:
    from lmcoverage.models.encoding import MAX_CHARS_PER_TOKEN, encode_prompt

    task = get_task("figure2-h4")
    tok = task.tokenizer()
    tok.model_max_length = 20
    word = tok.convert_ids_to_tokens(task.sample(1, seed=0)[0].prompt_ids[0])
    text = " ".join([word] * (10 * 20 * MAX_CHARS_PER_TOKEN))
    calls: list[int] = []
    real = type(tok).__call__

    def counting(self, text, *args, **kwargs):
        calls.append(len(text))
        return real(self, text, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(tok), "__call__", counting)
        with pytest.raises(InputError, match="longer than the tokenizer's maximum of 20 tokens"):
            encode_prompt(tok, {"prompt": text}, "d.jsonl:1")
    assert calls and max(calls) <= 20 * MAX_CHARS_PER_TOKEN < len(text)
    assert encode_prompt(tok, {"prompt": " ".join([word] * 5)}, "d.jsonl:2")  # short: fine
