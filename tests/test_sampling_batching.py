"""Sampling under ``batch_size="auto"``: the decode budget, halving on out-of-memory, and
``--batch-size`` on ``sample``, ``reference`` and ``verify``; the samples never depend on the
batch split (as ``tests/test_batching.py`` checks for scoring)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from injected_oom import limit_passes, no_memory
from lmcoverage.cli import main
from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine import sampling
from lmcoverage.engine.sampling import Sample, sample_with_logp
from lmcoverage.errors import EnvError
from lmcoverage.io import write_jsonl
from lmcoverage.models.hf import save
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

VOCAB = 40


@pytest.fixture(scope="module")
def llama() -> torch.nn.Module:
    return tiny_llama(VOCAB, 64, seed=0, eos=2, pad=0)


def _prompts(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, VOCAB, int(rng.integers(1, 12))).tolist() for _ in range(7)]


def _same(got: list[list[Sample]], want: list[list[Sample]]) -> None:
    """The same tokens and stops; log-probs equal up to float32 rounding of the logits, which
    depends on the batch's shape (4.8e-7 nats at most here, as for integer batch sizes)."""
    assert [[(s.ids, s.stopped) for s in g] for g in got] == [
        [(s.ids, s.stopped) for s in g] for g in want]
    np.testing.assert_allclose([s.logp for g in got for s in g],
                               [s.logp for g in want for s in g], rtol=0, atol=1e-5)


def _draw(model: torch.nn.Module, prompts: list[list[int]], batch_size: int | str
          ) -> list[list[Sample]]:
    return sample_with_logp(model, prompts, 5, 6, DecodingSpec(temperature=1.3, top_k=20),
                            seed=11, stop_token_ids=[2], batch_size=batch_size, progress=False)


def test_batch_sizes_1_3_and_auto_give_the_same_samples(llama: torch.nn.Module) -> None:
    """1 and 3 split each prompt's 5 samples over decode batches, auto decodes all 7 prompts x
    5 samples in one."""
    want = _draw(llama, _prompts(0), "auto")
    assert any(s.stopped for group in want for s in group)  # the stop token is exercised
    assert len({tuple(s.ids) for group in want for s in group}) > 20  # not all alike
    for batch_size in (1, 3):
        _same(_draw(llama, _prompts(0), batch_size), want)


def test_the_auto_budget_bounds_sequences_times_length(llama: torch.nn.Module,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decode step holds at most ``tokens`` positions (sequences x (padded prompt +
    max_new_tokens)); a prompt whose 5 samples exceed it decodes them in smaller batches."""
    prompts = [[3], [4, 5], list(range(5, 16)), [7], [8]]
    want = _draw(llama, prompts, 1)
    tokens = 80  # two short prompts' 10 samples share a batch, the 11-token one's 5 do not
    monkeypatch.setitem(sampling.AUTO_DECODE_BUDGETS, "cpu", (tokens, 2**25))
    run_prompts, forward = sampling.run_prompts, sampling.forward
    widths: list[int] = []
    rows: list[int] = []

    def recording_prompts(model, batch):
        widths.append(max(map(len, batch)))
        return run_prompts(model, batch)

    def recording_steps(model, ids, *args, **kwargs):  # decode steps only
        rows.append(ids.shape[0])
        assert ids.shape[0] * (widths[-1] + 6) <= tokens
        return forward(model, ids, *args, **kwargs)

    monkeypatch.setattr(sampling, "run_prompts", recording_prompts)
    monkeypatch.setattr(sampling, "forward", recording_steps)
    _same(_draw(llama, prompts, "auto"), want)
    assert set(rows) == {10, 4, 1}  # 80 // (11 + 6) = 4 of the long prompt's 5, then 1


def test_out_of_memory_halves_the_budget_and_gives_the_same_samples(
        llama: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """An injected CUDA out-of-memory error on prompt passes over 2 prompts or decode batches
    over 3 sequences: the pass is redone with half the budget, same samples and log-probs."""
    prompts = _prompts(1)
    want = _draw(llama, prompts, "auto")
    seen = limit_passes(monkeypatch, sampling, max_prompts=2, max_rows=3)
    _same(_draw(llama, prompts, "auto"), want)
    assert seen["oom"] and seen["prompts"][0] == len(prompts)  # it did start big, then shrank
    assert max(seen["prompts"][-3:]) <= 2


def test_out_of_memory_on_a_single_sequence_is_an_env_error(
        llama: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    no_memory(monkeypatch, sampling)
    with pytest.raises(EnvError, match="out of device memory sampling a single sequence"):
        _draw(llama, [[3, 4]], "auto")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sample_batch")
    task = get_task("figure2-h4")
    model = save(tiny_llama(task.vocab_size, task.max_length, seed=1), d / "m",
                 tokenizer=task.tokenizer())
    rows = [{"prompt_ids": list(p.prompt_ids), "answer": ""} for p in task.sample(5, seed=0)]
    write_jsonl(d / "d.jsonl", rows)
    return model, d / "d.jsonl"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _but_logp(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("logp")}


@pytest.mark.parametrize("command", ["sample", "reference", "verify"])
def test_batch_size_flag(command: str, inputs: tuple[Path, Path], tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """auto (the default) and a number write the same file; 0 and a word exit 2, one line."""
    model, data = inputs
    extra = {"sample": ["--n", "3"], "reference": ["--n", "3", "--verifier", "regex:$"],
             "verify": ["--n", "3", "--verifier", "exact"]}[command]  # regex:$ accepts all
    base = [command, "--model", str(model), "--data", str(data), *extra, "--device", "cpu",
            "--max-new-tokens", "4", "--no-progress"]
    outs = []
    for value in (None, "auto", "2"):
        out = tmp_path / f"{value}.jsonl"
        code = main([*base, "--out", str(out), *(["--batch-size", value] if value else [])])
        assert code == 0, capsys.readouterr().err
        outs.append(_lines(out))
    for got in outs[1:]:  # the same rows; log-probs up to float32 rounding (see _same)
        assert [_but_logp(r) for r in got] == [_but_logp(r) for r in outs[0]]
        for key in {k for r in outs[0] for k in r if k.startswith("logp")}:
            np.testing.assert_allclose([r[key] for r in got], [r[key] for r in outs[0]],
                                       rtol=0, atol=1e-5)
    for bad in ("0", "big"):
        out = tmp_path / "bad.jsonl"
        assert main([*base, "--out", str(out), "--batch-size", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"--batch-size {bad!r}" in err, err
        assert not out.exists()


@pytest.mark.parametrize("command", ["sample", "reference"])
def test_help_shows_auto(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = " ".join(re.sub("[\u2500-\u257f]", " ", capsys.readouterr().out).split())
    assert "--batch-size <str> Sequences per forward pass, or auto (default): a token budget" \
        in text, text


def test_prompt_passes_are_the_passes_sampling_runs(llama: torch.nn.Module,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = [[3], [4, 5], list(range(5, 16)), [7], [8], [9, 10, 11]]
    monkeypatch.setitem(sampling.AUTO_DECODE_BUDGETS, "cpu", (80, 2**25))
    run_prompts, passes = sampling.run_prompts, []

    def recording(model, batch):
        passes.append(len(batch))
        return run_prompts(model, batch)

    monkeypatch.setattr(sampling, "run_prompts", recording)
    _draw(llama, prompts, "auto")
    plan = sampling.prompt_passes([len(p) for p in prompts], 5, 6)
    assert plan == [0, 0, 1, 2, 2, 3]
    assert passes == [plan.count(k) for k in range(max(plan) + 1)]
    assert sampling.prompt_passes([1] * 7, 5, 6, batch_size=10) == [0, 0, 1, 1, 2, 2, 3]


def test_sharded_sample_under_auto_writes_the_same_file(
        inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards cut between the auto prompt passes (here 3 prompts each): byte for byte."""
    model, data = inputs
    monkeypatch.setitem(sampling.AUTO_DECODE_BUDGETS, "cpu", (600, 2**25))
    files = []
    for name, extra in (("one", []), ("three", ["--shards", "3"])):
        out = tmp_path / f"{name}.jsonl"
        assert main(["sample", "--model", str(model), "--data", str(data), "--n", "3",
                     "--max-new-tokens", "4", "--seed", "5", "--out", str(out), "--no-progress",
                     "--device", "cpu", *extra]) == 0
        files.append(out.read_bytes())
    assert files[0] == files[1] and len(files[0].splitlines()) == 15
