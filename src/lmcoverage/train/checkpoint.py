"""Training checkpoints: HF model directories plus the state needed to resume bit-exactly.

A run directory holds ``run.json`` (what is being trained), ``checkpoint-STEP/`` directories and,
at the end, ``final``: a relative symbolic link to the last checkpoint (its weights are not
copied). Each checkpoint is an ordinary HF model directory (``config.json``,
``model.safetensors``, tokenizer files) plus

- ``trainer_state.json``: step, loss history, the optimizer's non-tensor state (param groups);
- ``optimizer.safetensors``: the optimizer's tensors and the torch RNG state(s), and, when the
  weights are saved in a lower precision than they train in (``train --dtype bfloat16``), the
  float32 master weights (``master/NAME``), so that a resume continues from them exactly.

A checkpoint is written into a hidden temporary directory and renamed into place, so a killed
run never leaves a half-written ``checkpoint-STEP/``. Only the newest checkpoint keeps
``optimizer.safetensors`` (older ones remain full model directories, for scoring); resuming
uses the newest checkpoint that has it. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "optimizer.safetensors"
RUN_JSON = "run.json"
FINAL = "final"
PARTIAL_PREFIX = ".partial-"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


@dataclass
class TrainerState:
    """What a resumed run restores: step, optimizer state dict, RNG states, loss history."""

    step: int
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    history: list[list[float]]
    master: dict[str, Any]  # parameter name -> float32 master weight ({}: the saved weights)


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``[(step, path), ...]`` of the run's ``checkpoint-STEP/`` directories, in step order."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"run directory not found: {root}")
    found = []
    for p in root.iterdir():
        m = _CHECKPOINT.fullmatch(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """``run_dir/checkpoint-STEP``."""
    return run_dir / f"checkpoint-{step}"


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and JSON-able data."""
    import torch

    tensors: dict[str, Any] = {}
    plain: dict[str, Any] = {"param_groups": state_dict["param_groups"], "state": {}}
    for idx, entry in state_dict["state"].items():
        plain_entry: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{idx}/{key}"] = value.detach().contiguous().cpu()
            else:
                plain_entry[key] = value
        plain["state"][str(idx)] = plain_entry
    return tensors, plain


def _unflatten_optimizer(tensors: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(e) for i, e in plain["state"].items()}
    for name, value in tensors.items():
        _, idx, key = name.split("/", 2)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def _cuda_devices(device: str | torch.device) -> list[int]:
    """The CUDA devices whose generators a run on ``device`` draws from (none on CPU)."""
    import torch

    return list(range(torch.cuda.device_count())) if torch.device(device).type == "cuda" else []


def rng_state(device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The torch RNG states a run on ``device`` draws from, as uint8 tensors: the CPU's
    (``rng/torch_cpu``) and, on a CUDA device, every CUDA device's (``rng/cuda_I``)."""
    import torch

    out = {"rng/torch_cpu": torch.get_rng_state()}
    for i in _cuda_devices(device):
        out[f"rng/cuda_{i}"] = torch.cuda.get_rng_state(i)
    return out


@contextmanager
def run_rng(device: str | torch.device, seed: int,
            saved: dict[str, torch.Tensor] | None = None) -> Iterator[None]:
    """Run the block on the training run's own random stream, the caller's left untouched.

    Dropout inside a model draws from torch's global generators (it takes no generator), so
    the block runs in :func:`torch.random.fork_rng` of the CPU's (and, on a CUDA ``device``,
    every CUDA device's) generator, set to ``saved`` (what :func:`rng_state` wrote into a
    checkpoint: a resumed run continues the stream) or else seeded with ``seed``. The stream
    is then a function of the run's seed and step alone, not of the process's global state
    (which torch seeds afresh in every process, and other code may draw from), and the
    caller's states come back on exit.
    """
    import torch

    cuda = _cuda_devices(device)
    with torch.random.fork_rng(devices=cuda):
        if saved is None:
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed_all(seed)
        else:
            torch.set_rng_state(saved["rng/torch_cpu"])
            for i in cuda:
                if f"rng/cuda_{i}" in saved:
                    torch.cuda.set_rng_state(saved[f"rng/cuda_{i}"], i)
        yield


def write_checkpoint(path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     step: int, history: list[list[float]],
                     optimizer: dict[str, Any] | None = None,
                     dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` + ``tokenizer`` (+ resumable state) to ``path`` atomically.

    Args:
        step: optimizer steps taken so far.
        history: ``[[step, loss], ...]`` recorded so far.
        optimizer: the optimizer's ``state_dict()``; when given, it and the torch RNG states
            the model's device draws from (:func:`rng_state`; inside :func:`run_rng`, the
            run's own stream) are saved so that the run can resume from here. An existing
            ``path`` is replaced.
        dtype: the saved weights' torch dtype (default: the model's own). When it differs,
            a converted copy is saved and, with ``optimizer``, the model's own weights go
            with the optimizer state as ``master/NAME`` (see :func:`restore_master`).
    """
    import copy

    from safetensors.torch import save_file

    from lmcoverage.io import atomic_write_json, usual_mode
    from lmcoverage.models.hf import save

    tmp = path.parent / f"{PARTIAL_PREFIX}{path.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    converted = dtype is not None and dtype != next(model.parameters()).dtype
    # PreTrainedModel.to is typed through functools.wraps, which mypy does not bind to self
    save(copy.deepcopy(model).to(dtype=dtype) if converted else model,  # type: ignore[call-arg]
         tmp, tokenizer)
    meta: dict[str, Any] = {"step": step, "history": history}
    if optimizer is not None:
        tensors, plain = _flatten_optimizer(optimizer)
        tensors.update(rng_state(next(model.parameters()).device))
        if converted:
            tensors.update({f"master/{name}": p.detach().contiguous().cpu()
                            for name, p in model.named_parameters()})
        save_file(tensors, str(tmp / STATE_TENSORS))
        os.chmod(tmp / STATE_TENSORS, usual_mode())  # safetensors writes 0600
        meta["optimizer"] = plain
    atomic_write_json(tmp / STATE_JSON, meta)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def read_state(path: Path) -> TrainerState:
    """The resumable state of a checkpoint written with a ``state``."""
    from safetensors.torch import load_file

    meta = json.loads((path / STATE_JSON).read_text())
    tensors = load_file(str(path / STATE_TENSORS))
    rng = {k: v for k, v in tensors.items() if k.startswith("rng/")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optim/")}
    master = {k.removeprefix("master/"): v for k, v in tensors.items()
              if k.startswith("master/")}
    return TrainerState(step=int(meta["step"]), optimizer=_unflatten_optimizer(optim,
                        meta["optimizer"]), rng=rng, history=meta["history"], master=master)


def restore_master(model: torch.nn.Module, master: dict[str, torch.Tensor]) -> None:
    """Copy a checkpoint's float32 master weights (``TrainerState.master``) into ``model``
    (loaded from that checkpoint's lower-precision weights); nothing when there are none."""
    import torch

    if not master:
        return
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(master[name])


def is_resumable(path: Path) -> bool:
    """A checkpoint that holds the optimizer and RNG state (written last, atomically)."""
    return (path / STATE_TENSORS).is_file() and (path / STATE_JSON).is_file()


def latest_resumable(run_dir: Path) -> Path | None:
    """The newest checkpoint with optimizer state, or None."""
    for _, path in reversed(list_checkpoints(run_dir)):
        if is_resumable(path):
            return path
    return None


def drop_older_optimizer_states(run_dir: Path, step: int) -> None:
    """Remove ``optimizer.safetensors`` from every checkpoint of the run older than ``step``
    (they stay model directories), also one that a run killed right after writing
    ``checkpoint-STEP/`` left behind."""
    for older, path in list_checkpoints(run_dir):
        if older < step:
            (path / STATE_TENSORS).unlink(missing_ok=True)


def remove_partial(run_dir: Path) -> None:
    """Delete temporary directories a killed run left behind (never complete checkpoints)."""
    for p in run_dir.iterdir():
        if p.name.startswith(PARTIAL_PREFIX) or (p.name.startswith(".") and
                                                 p.name.endswith((".tmp", ".old"))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
