"""Hugging Face causal-LM directories: load (safetensors only, never unpickle) and save atomically.

A model directory is what ``save_pretrained`` writes: ``config.json``, ``model.safetensors`` (or
sharded ``model-0000x-of-0000y.safetensors`` with an index), and optionally a tokenizer. Pickle
checkpoints (``pytorch_model.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) are refused: unpickling a
file someone handed us can run arbitrary code. Nothing is downloaded: loading is local-only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lmcoverage.io import usual_mode

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model")


@contextmanager
def _quiet_hf() -> Iterator[None]:
    """Hide transformers' own progress bars (loading/writing shards) for the duration."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path if it is a local HF model directory with safetensors weights.

    Raises:
        ValueError: the path is missing, is not a directory, has no ``config.json``, has only
            pickle weights, or has no weights at all.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"model directory not found: {p}")
    if not p.is_dir():
        raise ValueError(f"model path is not a directory: {p}")
    if not (p / "config.json").is_file():
        raise ValueError(f"model directory has no config.json: {p}")
    if any(p.glob("*.safetensors")):
        return p
    pickled = sorted(f.name for f in p.iterdir() if f.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ValueError(
            f"model directory {p} holds only pickle checkpoints ({', '.join(pickled)}); "
            "refusing to unpickle them: convert to safetensors first"
        )
    raise ValueError(f"model directory has no weights (*.safetensors): {p}")


def load_causal_lm(
    path: str | os.PathLike[str], trust_remote_code: bool = False, device: str = "cpu"
) -> Any:
    """Load a causal LM from a local directory, safetensors only, in eval mode on ``device``.

    Args:
        path: directory written by ``save_pretrained`` (any architecture ``AutoModelForCausalLM``
            knows; custom code only with ``trust_remote_code=True``).
        trust_remote_code: allow Python code shipped in the directory to run (off by default).
        device: torch device string (``cpu``, ``cuda``, ``cuda:1``).

    Raises:
        ValueError: see :func:`check_model_dir`; also an unknown architecture or device.
    """
    p = check_model_dir(path)
    import torch
    from transformers import AutoModelForCausalLM

    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be a torch device string, got {device!r}") from exc
    try:
        with _quiet_hf():
            model: Any = AutoModelForCausalLM.from_pretrained(
                p, use_safetensors=True, trust_remote_code=trust_remote_code,
                local_files_only=True,
            )
    except (OSError, KeyError) as exc:
        raise ValueError(f"cannot load a causal LM from {p}: {exc}") from exc
    return model.to(torch_device).eval()


def load_tokenizer(path: str | os.PathLike[str], trust_remote_code: bool = False) -> Any:
    """The tokenizer saved in a model directory (local files only).

    Raises:
        ValueError: the directory holds no tokenizer.
    """
    from transformers import AutoTokenizer

    p = Path(path)
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(f"no usable tokenizer in model directory {p}: no tokenizer files")
    try:
        return AutoTokenizer.from_pretrained(
            p, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"no usable tokenizer in model directory {p}: {exc}") from exc


def save(model: Any, path: str | os.PathLike[str], tokenizer: Any = None) -> Path:
    """Write ``model`` (and ``tokenizer``) as an HF directory with safetensors weights, atomically.

    Everything is written to a temporary sibling directory first and renamed onto ``path``, so a
    crash never leaves a half-written model; an existing directory at ``path`` is replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, usual_mode(directory=True))
    try:
        with _quiet_hf():
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if not any(tmp.glob("*.safetensors")):
            raise ValueError(f"save_pretrained wrote no safetensors weights for {target}")
        for written in tmp.iterdir():  # some writers use 0600 temporary files
            if written.is_file():
                os.chmod(written, usual_mode())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                        dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
