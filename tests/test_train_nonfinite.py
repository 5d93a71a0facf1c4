"""``train --lr 1e30`` (#19 item 4): training stops at the first non-finite loss with one line
(step, loss), keeps the last finite checkpoint (no NaN weights are ever saved), exits 2, and a
plain re-run of the same directory starts afresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lmcoverage.cli import main


def _train(out: Path, lr: str) -> list[str]:
    return ["train", "figure2-h4", "--preset", "tiny", "--out", str(out), "--steps", "8",
            "--batch-size", "4", "--checkpoint-every", "1", "--lr", lr, "--no-progress",
            "--device", "cpu"]


def test_non_finite_loss_stops_keeps_finite_checkpoints_and_reruns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(_train(out, "1e30")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("lmcoverage: error: train: "), err
    assert " at step " in err and "stopped" in err and ("nan" in err or "inf" in err
                                                        or "not finite" in err), err
    assert not (out / "final").exists()
    kept = sorted(out.glob("checkpoint-*"))
    assert kept, "the finite checkpoints before the divergence are kept"
    for ckpt in kept:
        for name, tensor in load_file(str(ckpt / "model.safetensors")).items():
            assert bool(torch.isfinite(tensor).all()), (ckpt, name)
    assert str(kept[-1]) in err
    assert "diverged" in json.loads((out / "run.json").read_text())
    # A plain re-run with a sane learning rate is not blocked by the stopped run.
    assert main(_train(out, "1e-3")) == 0, capsys.readouterr().err
    assert (out / "final" / "model.safetensors").is_file()
    assert "diverged" not in json.loads((out / "run.json").read_text())
