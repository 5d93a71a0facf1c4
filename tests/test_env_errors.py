"""Environment errors are exit 1 with the path and the OS reason (#19 item 12): an unreadable
--data or model.safetensors ("Permission denied"), and a GGUF file without the gguf package
(with the install hint). As root every file is readable, so the unreadable files are
simulated by an ``open`` that refuses them; with chmod 000 where the tests do not run as root.
"""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path
from typing import Any

import pytest

import lmcoverage.io
import lmcoverage.models.hf
from lmcoverage.cli import main
from lmcoverage.io import write_jsonl


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_real_models import _tiny

    return _tiny(tmp_path_factory.mktemp("env") / "m", 0)


def _refusing(path: Path) -> Any:
    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, *args, **kwargs)

    return fake_open


def _sample(model: Path, data: Path, out: Path) -> list[str]:
    return ["sample", "--model", str(model), "--data", str(data), "--n", "1",
            "--max-new-tokens", "2", "--out", str(out), "--device", "cpu", "--no-progress"]


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and all(w in err for w in words), err


def test_unreadable_data_is_an_environment_error(model: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "p.jsonl"
    write_jsonl(data, [{"prompt": "a b"}])
    monkeypatch.setattr(lmcoverage.io, "open", _refusing(data), raising=False)
    assert main(_sample(model, data, tmp_path / "o.jsonl")) == 1
    _one_line(capsys, str(data), "Permission denied")


def test_unreadable_weights_are_an_environment_error(model: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "p.jsonl"
    write_jsonl(data, [{"prompt": "a b"}])
    weights = model / "model.safetensors"
    monkeypatch.setattr(lmcoverage.models.hf, "open", _refusing(weights), raising=False)
    assert main(_sample(model, data, tmp_path / "o.jsonl")) == 1
    _one_line(capsys, str(weights), "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_data_is_an_environment_error(model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "p.jsonl"
    write_jsonl(data, [{"prompt": "a b"}])
    data.chmod(0)
    assert main(_sample(model, data, tmp_path / "o.jsonl")) == 1
    _one_line(capsys, str(data), "Permission denied")


def test_gguf_without_the_package_is_an_environment_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))  # the header is all check_model_dir reads
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    data = tmp_path / "p.jsonl"
    write_jsonl(data, [{"prompt": "a b"}])
    assert main(_sample(gguf, data, tmp_path / "o.jsonl")) == 1
    _one_line(capsys, "pip install 'lmcoverage[gguf]'")
