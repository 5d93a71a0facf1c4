"""Same seed, same numbers: two training runs save identical files, whatever the process's
global random state; a resumed run equals an uninterrupted one bit-exactly; training leaves
the caller's torch random state as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lmcoverage.tasks import get_task
from lmcoverage.train import config_from_preset, train
from lmcoverage.train import loop as train_loop


def _task():
    return get_task("figure1-finetune", layers=2, nodes_per_layer=2, node_range=12)


def _config(**overrides):
    # Dropout on, so the run's random stream changes the weights (the presets train without).
    base = {"steps": 6, "batch_size": 4, "checkpoint_every": 2, "seed": 3, "log_every": 1,
            "model_overrides": {"n_layer": 1, "n_embd": 16, "n_head": 2, "resid_pdrop": 0.2}}
    return config_from_preset("tiny", **{**base, **overrides})


def _files(run: Path) -> dict[str, Path]:
    return {str(p.relative_to(run)): p for p in sorted(run.rglob("*")) if p.is_file()}


def assert_same_run(a: Path, b: Path) -> None:
    """Every file of run ``a`` is in run ``b`` and equal: each tensor of each safetensors file,
    each value of each JSON file (``run.json``, ``trainer_state.json``, configs), other bytes."""
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    for name, path in fa.items():
        if name.endswith(".safetensors"):
            ta, tb = load_file(str(path)), load_file(str(fb[name]))
            assert ta.keys() == tb.keys(), name
            for key in ta:
                assert torch.equal(ta[key], tb[key]), f"{name}: {key}"
        elif name.endswith(".json"):
            assert json.loads(path.read_text()) == json.loads(fb[name].read_text()), name
        else:
            assert path.read_bytes() == fb[name].read_bytes(), name
    assert (a / "final").readlink() == (b / "final").readlink()


def test_two_runs_save_identical_files_whatever_the_global_state(tmp_path: Path) -> None:
    task = _task()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # two processes start from different global states
        train(task, _config(), tmp_path / "a", progress=False, device="cpu")
        torch.manual_seed(2)
        train(task, _config(), tmp_path / "b", progress=False, device="cpu")
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_dropout_stream_is_seeded(tmp_path: Path) -> None:
    """The run's stream (dropout) changes the weights: without dropout they differ from with."""
    task = _task()
    train(task, _config(), tmp_path / "drop", progress=False, device="cpu")
    train(task, _config(model_overrides={"n_layer": 1, "n_embd": 16, "n_head": 2}),
          tmp_path / "plain", progress=False, device="cpu")
    a = load_file(str(tmp_path / "drop" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "plain" / "final" / "model.safetensors"))
    assert not torch.equal(a["transformer.wte.weight"], b["transformer.wte.weight"])


def test_training_leaves_the_global_random_state(tmp_path: Path) -> None:
    before = torch.get_rng_state()
    train(_task(), _config(steps=2), tmp_path / "run", progress=False, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)


class _Killed(Exception):
    pass


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped right after checkpoint-4 is written (as if killed) and re-run: every saved
    tensor and JSON value equals the uninterrupted run's, the RNG state included."""
    task, config = _task(), _config(steps=8, save_initial=True)
    write = train_loop.write_checkpoint

    def write_then_die(path, *args, **kwargs):
        out = write(path, *args, **kwargs)
        if path.name == "checkpoint-4":
            raise _Killed
        return out

    monkeypatch.setattr(train_loop, "write_checkpoint", write_then_die)
    with pytest.raises(_Killed):
        train(task, config, tmp_path / "killed", progress=False, device="cpu")
    monkeypatch.setattr(train_loop, "write_checkpoint", write)
    assert not (tmp_path / "killed" / "final").exists()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)  # the resuming process starts from another global state
        train(task, config, tmp_path / "killed", progress=False, device="cpu")
    train(task, config, tmp_path / "whole", progress=False, device="cpu")
    assert_same_run(tmp_path / "killed", tmp_path / "whole")
