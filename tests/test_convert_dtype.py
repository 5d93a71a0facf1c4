"""``convert --dtype`` and ``train --dtype``: weights written in the dtype asked for.

The GGUF reader is replaced by a tiny random Llama (a real GGUF conversion is the slow
SmolLM2 test in test_real_models.py); what is checked is the dtype of what convert writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import lmcoverage.models.hf as hf
from lmcoverage.cli import main
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama


def _dtypes(folder: Path) -> set[torch.dtype]:
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return {f.get_tensor(k).dtype for k in f.keys()}


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    task = get_task("figure2-h4")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(hf, "is_gguf", lambda p: Path(p).suffix == ".gguf")
    monkeypatch.setattr(hf, "load_tokenizer", lambda p, **k: task.tokenizer())
    monkeypatch.setattr(hf, "load_causal_lm",
                        lambda p, **k: tiny_llama(task.vocab_size, task.max_length, seed=0))
    return gguf


@pytest.mark.parametrize(("dtype", "want"), [("float32", torch.float32),
                                             ("bfloat16", torch.bfloat16),
                                             ("auto", torch.float32)])
def test_convert_writes_the_dtype_asked_for(fake_gguf: Path, tmp_path: Path, dtype: str,
                                            want: torch.dtype,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"out-{dtype}"
    assert main(["convert", str(fake_gguf), "--out", str(out), "--dtype", dtype,
                 "--no-progress"]) == 0
    assert _dtypes(out) == {want}
    assert hf.checkpoint_dtype(out) == str(want).removeprefix("torch.")
    assert capsys.readouterr().out == f"wrote {out} ({str(want).removeprefix('torch.')})\n"


def test_convert_refuses_an_unknown_dtype(fake_gguf: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["convert", str(fake_gguf), "--out", str(out), "--dtype", "float8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dtype 'float8'" in err
    assert not out.exists()


def test_train_dtype_bfloat16_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "figure1-finetune", "--preset", "tiny", "--out", str(out), "--steps",
                 "2", "--batch-size", "2", "--task-option", "layers=2", "--task-option",
                 "nodes_per_layer=2", "--dtype", "bfloat16", "--no-progress"]) == 0
    assert _dtypes(out / "final") == {torch.bfloat16}
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["dtype"] == "bfloat16" and meta["model"]["dtype"] == "bfloat16"


def test_train_refuses_an_unknown_dtype(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "figure1-finetune", "--preset", "tiny", "--out", str(out), "--steps",
                 "2", "--dtype", "float8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dtype 'float8'" in err
    assert not out.exists()
