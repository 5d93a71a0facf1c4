"""``train --dtype bfloat16`` is mixed precision: float32 master weights and optimizer state,
forward/backward under bf16 autocast, checkpoints saved in bf16 (the resumable one also keeps
the float32 masters, so a resume is bit-exact)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from lmcoverage.models.hf import load_causal_lm, save
from lmcoverage.tasks import get_task
from lmcoverage.train.checkpoint import read_state
from lmcoverage.train.loop import BatchSource, TrainConfig, batch_loss, train
from tiny_llama import tiny_llama

LR = 1e-5  # far below a bf16 weight's resolution (about 0.4% of it: ~6e-5 for |w| ~ 0.016)


def _setup(tmp_path: Path) -> tuple[object, Path]:
    task = get_task("figure2-h4")
    init = save(tiny_llama(task.vocab_size, task.max_length, seed=0), tmp_path / "init",
                tokenizer=task.tokenizer())
    return task, init


def _config(dtype: str, steps: int = 3) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=LR, dtype=dtype, checkpoint_every=2,
                       log_every=1)


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Fraction of weight entries that differ (``before`` cast to ``after``'s dtype)."""
    n = sum(int((before[k].to(after[k].dtype) != after[k]).sum()) for k in after)
    return n / sum(v.numel() for v in after.values())


def test_bf16_updates_float32_masters_and_saves_bf16(tmp_path: Path) -> None:
    task, init = _setup(tmp_path)
    out = tmp_path / "run"
    final = train(task, _config("bfloat16"), out, init_from=init, progress=False, device="cpu")
    start = load_file(str(init / "model.safetensors"))
    state = read_state(final)
    assert {v.dtype for v in state.master.values()} == {torch.float32}
    assert _changed(start, state.master) > 0.99  # every step's update is kept
    for step in (2, 3):  # every checkpoint is bf16: the masters rounded
        saved = load_file(str(out / f"checkpoint-{step}" / "model.safetensors"))
        assert {v.dtype for v in saved.values()} == {torch.bfloat16}
    assert all(torch.equal(saved[k], state.master[k].to(torch.bfloat16)) for k in state.master)
    assert json.loads((out / "run.json").read_text())["model"]["dtype"] == "bfloat16"
    assert all(v.dtype == torch.float32 for v in state.optimizer["state"][0].values()
               if isinstance(v, torch.Tensor))
    assert not (out / "checkpoint-2" / "optimizer.safetensors").exists()  # masters dropped too

    # The old scheme (AdamW on bf16 weights directly) loses most of these updates.
    model = load_causal_lm(init, dtype=torch.bfloat16)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    batches = BatchSource(task, _config("bfloat16"))
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        batch_loss(model, batches(step), task.pad_token_id, "cpu", backward=True)
        opt.step()
    direct = {k: v.detach() for k, v in model.state_dict().items() if k in start}
    assert _changed(start, direct) < 0.5


def test_bf16_resume_is_bit_exact(tmp_path: Path) -> None:
    task, init = _setup(tmp_path)
    whole = train(task, _config("bfloat16", steps=4), tmp_path / "whole", init_from=init,
                  progress=False, device="cpu")
    out = tmp_path / "run"
    train(task, _config("bfloat16", steps=2), out, init_from=init, progress=False,
          device="cpu")
    resumed = train(task, _config("bfloat16", steps=4), out, init_from=init, resume=True,
                    progress=False, device="cpu")
    assert os.readlink(resumed) == "checkpoint-4"
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(str(resumed / name)), load_file(str(whole / name))
        assert a.keys() == b.keys() and any(k.startswith("master/") for k in a) == (
            name == "optimizer.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name  # the RNG state too


def test_float32_runs_keep_no_masters(tmp_path: Path) -> None:
    task, init = _setup(tmp_path)
    final = train(task, _config("float32", steps=2), tmp_path / "run", init_from=init,
                  progress=False, device="cpu")
    assert read_state(final).master == {}
    saved = load_file(str(final / "model.safetensors"))
    assert {v.dtype for v in saved.values()} == {torch.float32}
