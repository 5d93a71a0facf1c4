"""TrainConfig.optimizer / lr_schedule / grad_clip: one make_optimizer, defaults unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tests.test_train import assert_same_weights, small_task, tiny_config, weights

from lmcoverage.errors import InputError
from lmcoverage.train import train
from lmcoverage.train.optimizers import (
    OPTIMIZERS,
    NormalizedSGD,
    ProjectedSGD,
    SignSGD,
    make_optimizer,
)
from lmcoverage.train.schedule import learning_rate


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


def test_make_optimizer_builds_each_rule() -> None:
    adamw = make_optimizer("adamw", _params(), lr=1e-3, betas=(0.8, 0.9), weight_decay=0.1)
    assert isinstance(adamw, torch.optim.AdamW)
    group = adamw.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-3, (0.8, 0.9), 0.1)
    assert isinstance(make_optimizer("sgd", _params(), lr=0.1), ProjectedSGD)
    assert isinstance(make_optimizer("signsgd", _params(), lr=0.1), SignSGD)
    nsgd = make_optimizer("normalized-sgd", _params(), lr=0.1, options={"lam": 0.5})
    assert isinstance(nsgd, NormalizedSGD) and nsgd.param_groups[0]["lam"] == 0.5
    assert set(OPTIMIZERS) == {"adamw", "sgd", "normalized-sgd", "signsgd"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: make_optimizer("lion", _params(), lr=0.1), "unknown 'lion'"),
    (lambda: make_optimizer("normalized-sgd", _params(), lr=0.1), "needs optimizer_options lam"),
    (lambda: make_optimizer("sgd", _params(), lr=0.1, options={"beta": 1}), "optimizer sgd"),
    (lambda: make_optimizer("sgd", _params(), lr=-1.0), "lr"),
    (lambda: tiny_config(optimizer="lion"), "optimizer: unknown"),
    (lambda: tiny_config(lr_schedule="linear"), "lr_schedule: unknown"),
    (lambda: tiny_config(warmup_steps=-1), "warmup_steps"),
    (lambda: tiny_config(min_lr=1.0), "min_lr"),
    (lambda: tiny_config(grad_clip=math.nan), "grad_clip"),
])
def test_bad_optimizer_settings_are_input_errors(call, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_learning_rate_schedules() -> None:
    assert [learning_rate(s, lr=1.0, warmup_steps=4) for s in range(6)] == [
        0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = [learning_rate(s, lr=1.0, schedule="cosine", min_lr=0.1, total_steps=11)
           for s in range(11)]
    assert cos[0] == 1.0 and cos[-1] == pytest.approx(0.1) and cos[5] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(cos, cos[1:], strict=False))


def test_defaults_are_left_out_of_run_json() -> None:
    """Runs recorded before these fields existed still resume: the defaults add no key."""
    keys = set(tiny_config().to_json())
    assert not keys & {"optimizer", "optimizer_options", "lr_schedule", "warmup_steps",
                       "min_lr", "grad_clip"}
    assert tiny_config(optimizer="sgd").to_json()["optimizer"] == "sgd"


def test_explicit_defaults_train_the_same_weights(tmp_path: Path) -> None:
    task = small_task()
    a = train(task, tiny_config(steps=4), tmp_path / "a", progress=False)
    b = train(task, tiny_config(steps=4, optimizer="adamw", lr_schedule="constant",
                                warmup_steps=0, grad_clip=0.0), tmp_path / "b", progress=False)
    assert_same_weights(a, b)


def test_other_optimizers_schedules_and_clipping_change_the_run(tmp_path: Path) -> None:
    task = small_task()
    base = weights(train(task, tiny_config(steps=4), tmp_path / "base", progress=False))
    for name, overrides in {"sgd": {"optimizer": "sgd", "weight_decay": 0.0},
                            "cosine": {"lr_schedule": "cosine", "warmup_steps": 2},
                            "clip": {"grad_clip": 1e-3}}.items():
        other = weights(train(task, tiny_config(steps=4, **overrides), tmp_path / name,
                              progress=False))
        assert any(not torch.equal(base[k], other[k]) for k in base), name


def test_a_cosine_run_refuses_a_longer_resume(tmp_path: Path) -> None:
    task = small_task()
    train(task, tiny_config(steps=4, lr_schedule="cosine"), tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="schedule of the run"):
        train(task, tiny_config(steps=8, lr_schedule="cosine"), tmp_path / "run",
              resume=True, progress=False)


def test_train_cli_optimizer_options(tmp_path: Path) -> None:
    import json

    from tests.test_train import TASK_OPTIONS

    from lmcoverage.cli import main

    task_options = [x for k, v in TASK_OPTIONS.items() for x in ("--task-option", f"{k}={v}")]
    args = ["train", "figure1-finetune", *task_options, "--preset", "tiny", "--steps", "2",
            "--batch-size", "2", "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "a"), "--optimizer", "normalized-sgd",
                 "--optimizer-option", "lam=0.5", "--lr-schedule", "cosine",
                 "--grad-clip", "1"]) == 0
    config = json.loads((tmp_path / "a" / "run.json").read_text())["config"]
    assert (config["optimizer"], config["optimizer_options"], config["lr_schedule"],
            config["grad_clip"]) == ("normalized-sgd", {"lam": 0.5}, "cosine", 1.0)
    assert main([*args, "--out", str(tmp_path / "b"), "--optimizer", "lion"]) == 2
