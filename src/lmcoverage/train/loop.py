"""Next-token training on a task (the paper's Appendix C): loss on response tokens only, with
the optimizer of ``TrainConfig.optimizer`` (AdamW by default;
:data:`lmcoverage.train.optimizers.OPTIMIZERS`).

``train(task, config, out_dir)`` trains a fresh GPT (or fine-tunes an HF model directory given
by ``init_from``) and writes ``checkpoint-STEP/`` model directories and ``final/`` into
``out_dir``. The batch of step s depends only on ``(config.seed, s)``, dropout draws from the
run's own seeded stream (never the process's), and the optimizer and RNG states are
checkpointed, so a run killed at any moment and resumed (``resume=True``) reaches
bit-identical weights to an uninterrupted run. With a constant learning rate (the default;
warm-up allowed) a finished run resumed with more ``steps`` is extended to them, and its weights
are those of a run started with the larger count; a ``cosine`` schedule spans the total, so
``run.json``'s ``schedule`` records it and the extension is refused.

``final/`` is a relative symbolic link to the last ``checkpoint-STEP/`` (no second copy of
the weights): loading, scoring or fine-tuning from ``final/`` reads that checkpoint.

Batches are left-aligned: each row is prompt then response, padded at the end, so absolute
positions never shift and no attention mask is needed (causal attention never looks right).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.tasks.base import Problem, Task
from lmcoverage.train.checkpoint import (
    FINAL,
    RUN_JSON,
    STATE_JSON,
    checkpoint_path,
    drop_older_optimizer_states,
    latest_resumable,
    read_state,
    remove_partial,
    restore_master,
    run_rng,
    write_checkpoint,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

RUN_FORMAT = "lmcoverage-train-run/1"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes:
        steps: optimizer steps.
        batch_size: problems per step.
        lr: the (peak) learning rate.
        weight_decay: AdamW (decoupled) weight decay, applied to every parameter.
        betas: AdamW betas.
        optimizer: :data:`~lmcoverage.train.optimizers.OPTIMIZERS` key: ``adamw``, ``sgd``,
            ``normalized-sgd`` (Eq. 17-18; needs ``optimizer_options={"lam": ...}``) or
            ``signsgd`` (Eq. 20); ``weight_decay`` and ``betas`` apply to AdamW only.
        optimizer_options: extra keywords of the optimizer (``lam``, ``radius``, ``eps``).
        lr_schedule: ``constant`` or ``cosine`` (to ``min_lr`` over the run's steps), after
            ``warmup_steps`` of linear warm-up (:mod:`lmcoverage.train.schedule`).
        warmup_steps, min_lr: see ``lr_schedule``.
        grad_clip: clip the gradients' global norm to this value before each step (0: off).
        seed: seeds the fresh model's initialisation, every batch and the run's random
            stream (dropout; :func:`~lmcoverage.train.checkpoint.run_rng`).
        model_preset: :data:`lmcoverage.models.gpt.GPT_PRESETS` key (ignored with ``init_from``).
        model_overrides: extra ``GPT2Config`` fields for the fresh model.
        dataset_size: None: fresh samples every batch; N: a fixed dataset of N problems,
            visited in a new seeded random order every epoch.
        checkpoint_every: write ``checkpoint-STEP/`` every K steps (0: only the last step).
        save_initial: also write ``checkpoint-0/`` (the model before training).
        log_every: record the mean loss of every K steps in the history.
        dtype: the checkpoints' weights and the compute dtype: ``float32``, ``bfloat16``,
            ``float16`` or ``auto`` (``init_from``'s own dtype, else float32). Below float32
            it is mixed precision: float32 master weights and optimizer state, forward and
            backward under ``torch.autocast`` in ``dtype`` (no loss scaling for float16), the
            checkpoints' weights in ``dtype`` (the resumable one also keeps the float32
            masters); the loss is computed in float32.
    """

    steps: int
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    model_preset: str = "cpu"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dataset_size: int | None = None
    checkpoint_every: int = 0
    save_initial: bool = False
    log_every: int = 10
    dtype: str = "float32"
    optimizer: str = "adamw"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        from lmcoverage.models.gpt import GPT_PRESETS
        from lmcoverage.models.hf import DTYPES
        from lmcoverage.train.optimizers import OPTIMIZERS
        from lmcoverage.train.schedule import check_schedule

        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

        for name, low in (("steps", 1), ("batch_size", 1), ("checkpoint_every", 0),
                          ("log_every", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.dataset_size is not None and (
                isinstance(self.dataset_size, bool) or not isinstance(self.dataset_size, int)
                or self.dataset_size < 1):
            raise InputError(f"dataset_size must be None or an integer >= 1, "
                             f"got {self.dataset_size!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be finite and > 0, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InputError(f"weight_decay must be finite and >= 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.model_preset not in GPT_PRESETS:
            raise InputError(f"unknown model preset {self.model_preset!r}; choose from "
                             f"{', '.join(GPT_PRESETS)}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer: unknown {self.optimizer!r}; choose from "
                             f"{', '.join(OPTIMIZERS)}")
        check_schedule(self.lr_schedule, self.warmup_steps, self.min_lr, self.lr)
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise InputError(f"grad_clip must be finite and >= 0, got {self.grad_clip!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (``betas`` as a list; ``dtype``, the optimizer, schedule and clipping
        only when not at their defaults, so runs recorded before the fields existed resume)."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        for name, default in _LATER_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return out


#: fields added after ``run.json`` existed, left out of it at these defaults
_LATER_DEFAULTS: dict[str, Any] = {"dtype": "float32", "optimizer": "adamw",
                                   "optimizer_options": {}, "lr_schedule": "constant",
                                   "warmup_steps": 0, "min_lr": 0.0, "grad_clip": 0.0}


#: Training presets: the model preset plus batch size, learning rate, steps, checkpointing.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"model_preset": "paper", "batch_size": 128, "lr": 1e-4, "weight_decay": 0.01,
              "steps": 40_000, "checkpoint_every": 2_000},
    # Exact GeLU instead of GPT-2's tanh approximation: about 20% faster on one CPU thread.
    "cpu": {"model_preset": "cpu", "batch_size": 32, "lr": 2e-3, "weight_decay": 0.01,
            "steps": 2_000, "checkpoint_every": 200,
            "model_overrides": {"activation_function": "gelu"}},
    "tiny": {"model_preset": "tiny", "batch_size": 8, "lr": 3e-3, "weight_decay": 0.01,
             "steps": 50, "checkpoint_every": 10,
             "model_overrides": {"activation_function": "gelu"}},
}


def config_from_preset(preset: str, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from :data:`TRAIN_PRESETS` with ``overrides`` applied."""
    if preset not in TRAIN_PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose from {', '.join(TRAIN_PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown training option {unknown[0]!r}; choose from "
                         f"{', '.join(sorted(known))}")
    return TrainConfig(**{**TRAIN_PRESETS[preset], **overrides})


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (``SeedSequence``), for independent streams."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0] >> 1)


# Stream identifiers for :func:`derive_seed`.
_MODEL, _FRESH, _DATASET, _EPOCH, _DROPOUT = 0, 1, 2, 3, 4


class BatchSource:
    """The problems of every step, a pure function of ``(config.seed, step)``."""

    def __init__(self, task: Task, config: TrainConfig) -> None:
        self.task, self.config = task, config
        self._dataset: list[Problem] | None = None
        self._orders: dict[int, np.ndarray] = {}

    def __call__(self, step: int) -> list[Problem]:
        """Problems of step ``step`` (0-based)."""
        cfg = self.config
        if cfg.dataset_size is None:
            return self.task.sample(cfg.batch_size, seed=derive_seed(cfg.seed, _FRESH, step))
        if self._dataset is None:
            self._dataset = self.task.sample(cfg.dataset_size,
                                             seed=derive_seed(cfg.seed, _DATASET))
        n = cfg.dataset_size
        out = []
        for i in range(step * cfg.batch_size, (step + 1) * cfg.batch_size):
            epoch = i // n
            if epoch not in self._orders:  # keep at most the previous epoch's order
                self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
                rng = np.random.default_rng(derive_seed(cfg.seed, _EPOCH, epoch))
                self._orders[epoch] = rng.permutation(n)
            out.append(self._dataset[int(self._orders[epoch][i % n])])
        return out


def collate(problems: Sequence[Problem],
            pad_id: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Left-aligned ``(input_ids, targets, first)`` for the response-only loss.

    ``input_ids``: ``(B, T)`` prompt + response + pad. ``targets``: ``(B, T - first)``, the token
    at positions ``first..T-1`` where it belongs to a response, -100 elsewhere; position ``p`` is
    predicted from the logits at ``p - 1``. ``first`` is the shortest prompt's length.
    """
    import torch

    lengths = [len(p.prompt_ids) + len(p.response_ids) for p in problems]
    first = min(len(p.prompt_ids) for p in problems)
    width = max(lengths)
    ids = np.full((len(problems), width), pad_id, dtype=np.int64)
    targets = np.full((len(problems), width), -100, dtype=np.int64)
    for row, p in enumerate(problems):
        k, n = len(p.prompt_ids), lengths[row]
        ids[row, :k] = p.prompt_ids
        ids[row, k:n] = p.response_ids
        targets[row, k:n] = p.response_ids
    return torch.from_numpy(ids), torch.from_numpy(targets[:, first:]), first


def response_nll(model: PreTrainedModel, input_ids: torch.Tensor, targets: torch.Tensor,
                 first: int) -> torch.Tensor:
    """Summed next-token cross-entropy (nats) over response tokens; logits only where needed."""
    import torch.nn.functional as F

    keep = input_ids.shape[1] - first + 1
    logits = model(input_ids=input_ids, logits_to_keep=keep).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=-100, reduction="sum")


def length_chunks(lengths: Sequence[int], max_chunks: int = 4,
                  overhead: int = 256) -> list[list[int]]:
    """Split rows into at most ``max_chunks`` groups of similar length to cut padding.

    Rows sorted by length are cut into contiguous groups minimising the padded token count
    ``sum(rows * longest)`` plus ``overhead`` tokens per extra forward pass (dynamic programming).
    Returns lists of row indices.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    values = sorted(set(lengths))  # groups are ranges of distinct lengths
    below = [0]  # below[j]: rows no longer than values[j - 1]
    for v in values:
        below.append(below[-1] + sum(1 for x in lengths if x == v))
    r = len(values)
    inf = float("inf")
    # cost[k][j]: cheapest split of the rows of the j shortest lengths into k groups.
    cost = [[inf] * (r + 1) for _ in range(max_chunks + 1)]
    cut = [[0] * (r + 1) for _ in range(max_chunks + 1)]
    cost[0][0] = 0.0
    for k in range(1, max_chunks + 1):
        for j in range(1, r + 1):
            for i in range(j):
                c = cost[k - 1][i] + (below[j] - below[i]) * values[j - 1] + overhead
                if c < cost[k][j]:
                    cost[k][j], cut[k][j] = c, i
    best = min(range(1, max_chunks + 1), key=lambda k: cost[k][r])
    groups, j = [], r
    for k in range(best, 0, -1):
        i = cut[k][j]
        groups.append(order[below[i]:below[j]])
        j = i
    return groups[::-1]


def batch_loss(model: PreTrainedModel, problems: Sequence[Problem], pad_id: int, device: str,
               backward: bool, autocast: torch.dtype | None = None) -> tuple[float, int]:
    """Mean response-token loss of ``problems`` (and its gradient if ``backward``).

    The batch is split by :func:`length_chunks`; each chunk's summed loss is divided by the
    batch's total number of response tokens before its backward pass, so the accumulated
    gradient is that of the batch mean. ``autocast``: a torch dtype to run the forward pass
    in under ``torch.autocast`` (None: the model's own). Returns ``(mean loss, tokens
    processed)``.
    """
    import torch

    total = sum(len(p.response_ids) for p in problems)
    lengths = [len(p.prompt_ids) + len(p.response_ids) for p in problems]
    loss, tokens = 0.0, 0
    for rows in length_chunks(lengths):
        input_ids, targets, first = collate([problems[i] for i in rows], pad_id)
        with (torch.autocast(torch.device(device).type, dtype=autocast) if autocast is not None
              else nullcontext()):
            part = response_nll(model, input_ids.to(device), targets.to(device), first) / total
        if backward:
            part.backward()
        loss += float(part.detach())
        tokens += sum(lengths[i] for i in rows)
    return loss, tokens


@contextmanager
def _progress_bar(total: int, start: int, enabled: bool, label: str) -> Iterator[Any]:
    """A rich bar of ``label`` steps with loss and tokens/s fields, or a no-op when disabled."""
    if not enabled:
        yield None
        return
    from lmcoverage.progress import standard_progress

    with standard_progress("loss {task.fields[loss]}", "{task.fields[tps]} tok/s",
                           transient=False) as bar:
        bar.add_task(f"{label} steps", total=total, completed=start, loss="-", tps="-")
        yield bar


def _run_meta(task: Task, config: TrainConfig, init_from: Path | None) -> dict[str, Any]:
    """What ``run.json`` records of a run (its ``model`` entry is added by :func:`train`);
    with ``init_from`` the GPT preset fields, which do not apply, are left out."""
    cfg = config.to_json()
    if init_from is not None:
        cfg.pop("model_preset")
        cfg.pop("model_overrides")
    return {"format": RUN_FORMAT, "task": {"name": task.name, "options": task.options},
            "config": cfg, "schedule": schedule_of(config),
            "init_from": str(init_from.resolve()) if init_from is not None else None}


def schedule_of(config: TrainConfig) -> dict[str, Any]:
    """What the learning rate depends on, for ``run.json``: the schedule's name, and for one
    spanning the run (``cosine``) its ``"total_steps"``; ``--resume`` with other ``steps`` then
    refuses (:func:`_check_steps`)."""
    if config.lr_schedule == "constant":
        return {"lr": "constant"}
    return {"lr": config.lr_schedule, "total_steps": config.steps}

#: ``run.json`` entries describing the run rather than fixing it (not compared on resume).
_DESCRIPTIVE = ("model",)


def _comparable(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` without its descriptive entries, its ``steps`` and, with ``init_from``, the GPT
    preset fields (recorded by runs written before they were left out)."""
    out = {k: v for k, v in meta.items() if k not in _DESCRIPTIVE}
    cfg = {k: v for k, v in dict(out.get("config") or {}).items() if k != "steps"}
    if out.get("init_from") is not None:
        cfg.pop("model_preset", None)
        cfg.pop("model_overrides", None)
    out["config"] = cfg
    schedule = dict(out.get("schedule") or {"lr": "constant"})  # runs recorded before it
    schedule.pop("total_steps", None)
    out["schedule"] = schedule
    return out


def _check_steps(out: Path, before: dict[str, Any], meta: dict[str, Any]) -> None:
    """Accept ``--steps`` other than the run's when resuming: refused (one line) when the
    schedule depends on the total or the count is below the steps already trained."""
    old, new = before["config"]["steps"], meta["config"]["steps"]
    if old == new:
        return
    if (before.get("schedule") or {}).get("total_steps") is not None:
        raise InputError(f"--resume --steps {new}: the learning-rate schedule of the run in "
                         f"{out} spans its {old} steps and would change; resume with --steps "
                         f"{old} or start a new run")
    latest = latest_resumable(out)
    done = read_state(latest).step if latest is not None else 0
    if new < done:
        raise InputError(f"--resume --steps {new}: the run in {out} has already trained {done} "
                         "steps; give --steps >= that")


def _first_difference(a: object, b: object,
                      where: str = "") -> tuple[str, object, object] | None:
    """``(dotted path, a's value, b's value)`` of the first leaf where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if a == b else (where, a, b)


def _option_name(path: str, task_name: str = "") -> str:
    """The ``lmcoverage train`` option behind a ``run.json`` path (``config.lr`` -> ``--lr``);
    for a ``train --model --data`` run (task ``pairs``) the pairs file's digest, row count
    and ``dataset_size`` come from ``--data``, and ``init_from`` is ``--model``."""
    if task_name == "pairs":
        if path.startswith("task.options.") or path == "config.dataset_size":
            return "--data (the pairs file)"
        if path == "init_from":
            return "--model"
    head, _, key = path.partition(".")
    if head == "config" and key == "model_preset":
        return "--preset"
    if head == "config" and "." not in key:
        return "--" + key.replace("_", "-")
    if path.startswith("task.options."):
        return f"--task-option {path.removeprefix('task.options.').split('.')[0]}"
    return {"task.name": "TASK", "init_from": "--init-from"}.get(path, path)


def _prepare_run_dir(out: Path, meta: dict[str, Any], resume: bool) -> None:
    """Create ``out`` or resume the run it holds (:class:`lmcoverage.io.RunDir`, the one rule of
    ``train`` and ``run``: the same command re-run resumes; another option is refused, named).

    ``resume`` matters only for a run stopped by a non-finite loss: a plain re-run starts it
    afresh, ``--resume`` continues from its last finite checkpoint.
    """
    import json

    from lmcoverage.io import RunDir, atomic_write_json, to_jsonable

    run_json = out / RUN_JSON
    if out.is_dir() and run_json.is_file():
        remove_partial(out)
        if not resume and DIVERGED in json.loads(run_json.read_text()):
            _clear_run(out)  # a run stopped by a non-finite loss: a plain re-run starts afresh

    def differs(recorded: dict[str, Any], now: dict[str, Any]) -> str | None:
        diff = _first_difference(_comparable(recorded), _comparable(now))
        if diff:
            path, before, new = diff
            name = _option_name(path, str(now["task"]["name"]))
            raise InputError(f"{'--resume' if resume else f'--out {out}'}: {name} differs from "
                             f"the run in {out} (started with {before!r}, now {new!r}); re-run "
                             "with the same options or choose another --out")
        _check_steps(out, recorded, now)
        return None

    recorded = RunDir(out, RUN_JSON, "a training run").prepare(meta, differs)
    if recorded is not None and recorded["config"]["steps"] != meta["config"]["steps"]:
        atomic_write_json(run_json, {**recorded, "config": to_jsonable(meta)["config"]})


#: The ``run.json`` key of a run stopped by a non-finite loss: ``{"step", "loss"}``.
DIVERGED = "diverged"


def _clear_run(out: Path) -> None:
    """Remove a run's checkpoints, ``final/`` and ``run.json`` (nothing else is in ``out``)."""
    import shutil

    for path in out.iterdir():
        if path.name == FINAL or path.name == RUN_JSON or path.name.startswith("checkpoint-"):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _stop_if_diverged(out: Path, model: torch.nn.Module, loss: float, step: int,
                      latest: Path | None, weights: bool = False) -> None:
    """Stop training at the first non-finite ``loss`` (or, with ``weights``, non-finite
    parameters) before anything is saved from it: record the step in ``run.json`` and raise
    an :class:`InputError` (exit 2) naming the step, the loss and the checkpoint kept."""
    import json

    import torch

    if math.isfinite(loss) and not (weights and not all(
            bool(torch.isfinite(p).all()) for p in model.parameters())):
        return
    from lmcoverage.io import atomic_write_json

    run_json = out / RUN_JSON
    atomic_write_json(run_json, {**json.loads(run_json.read_text()),
                                 DIVERGED: {"step": step, "loss": loss}})
    what = f"the loss is {loss}" if not math.isfinite(loss) else "the weights are not finite"
    kept = (f"the last finite checkpoint {latest} is kept" if latest is not None
            else "no checkpoint was written")
    raise InputError(f"train: {what} at step {step}: stopped, {kept}; lower --lr (a re-run "
                     "without --resume starts afresh)")


def _initial_model(task: Task, config: TrainConfig, init_from: Path | None, device: str,
                   dtype: torch.dtype) -> PreTrainedModel:
    from lmcoverage.models.gpt import build_gpt
    from lmcoverage.models.hf import load_causal_lm

    if init_from is None:  # PreTrainedModel.to: typed through functools.wraps, unbound for mypy
        return build_gpt(config.model_preset, task.vocab_size, task.max_length,
                         seed=derive_seed(config.seed, _MODEL), **config.model_overrides
                         ).to(device=device, dtype=dtype)  # type: ignore[call-arg]
    model = load_causal_lm(init_from, device=device, dtype=dtype)
    vocab = model.get_input_embeddings().weight.shape[0]  # type: ignore[index]  # a Module
    if vocab < task.vocab_size:
        raise InputError(f"init_from {init_from}: model vocabulary {vocab} is smaller than the "
                         f"task's {task.vocab_size}")
    ctx = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None)
    if ctx is not None and ctx < task.max_length:
        raise InputError(f"init_from {init_from}: context {ctx} is shorter than the task's "
                         f"max_length {task.max_length}")
    return model


def _model_record(model: PreTrainedModel, config: TrainConfig, init_from: Path | None,
                  dtype: torch.dtype) -> dict[str, Any]:
    """``run.json``'s ``model``: what is trained (the directory fine-tuned, else the GPT
    preset), its architecture, parameter count and the checkpoints' ``dtype``."""
    return {"from": str(init_from.resolve()) if init_from is not None
            else f"lmcoverage GPT preset {config.model_preset!r}",
            "model_type": getattr(model.config, "model_type", type(model).__name__),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "dtype": str(dtype).removeprefix("torch.")}


def link_final(out: Path, step: int) -> Path:
    """Point ``out/final`` at ``checkpoint-STEP`` (a relative symbolic link, replaced
    atomically; a ``final/`` directory of an older run is removed first)."""
    import os
    import shutil

    final = out / FINAL
    tmp = out / f".{FINAL}.link.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(checkpoint_path(out, step).name, tmp, target_is_directory=True)
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def _finished_step(final: Path) -> int | None:
    """The step ``final/`` holds (None: no final yet)."""
    import json

    if not (final / STATE_JSON).is_file():
        return None
    return int(json.loads((final / STATE_JSON).read_text())["step"])


def train(
    task: Task,
    config: TrainConfig,
    out_dir: str | Path,
    init_from: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
) -> Path:
    """Train on ``task`` and return the ``final/`` model directory.

    Args:
        task: the task; problems come from ``task.sample`` (see :class:`BatchSource`).
        config: hyper-parameters.
        out_dir: run directory: ``run.json``, ``checkpoint-STEP/`` and ``final/``; must be new,
            empty, or (with ``resume``) a run of the same task, config and ``init_from``.
        init_from: HF model directory to fine-tune instead of a fresh GPT.
        resume: continue from the newest complete checkpoint in ``out_dir``.
        progress: show a rich progress bar with loss and tokens/s.
        device: torch device; default ``cuda`` when available, else ``cpu``. Bit-identical
            resume is guaranteed on CPU (GPU kernels may be non-deterministic).

    Raises:
        ValueError: bad config, an ``out_dir`` that is not this run, an unusable ``init_from``.
    """
    import torch

    out = Path(out_dir)
    init = Path(init_from) if init_from is not None else None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except RuntimeError:
        raise InputError(f"device must be a torch device string, got {device!r}") from None
    from lmcoverage.models.hf import checkpoint_dtype, load_causal_lm, resolve_dtype

    dtype = resolve_dtype(config.dtype, device,
                          checkpoint_dtype(init) if init is not None else None)
    # Mixed precision below float32: the model (master weights) and optimizer stay float32.
    autocast = None if dtype == torch.float32 else dtype
    _prepare_run_dir(out, _run_meta(task, config, init), resume)
    final = out / FINAL
    if _finished_step(final) == config.steps:
        return final  # finished earlier (a larger --steps extends it below)

    tokenizer = task.tokenizer()
    latest = latest_resumable(out)
    if latest is not None:
        state = read_state(latest)
        model = load_causal_lm(latest, device=device, dtype=torch.float32)
        restore_master(model, state.master)
        start, history = state.step, state.history
    else:
        model = _initial_model(task, config, init, device, torch.float32)
        start, history = 0, []
    _record_model(out, _model_record(model, config, init, dtype))
    model.train()
    from lmcoverage.train.optimizers import make_optimizer
    from lmcoverage.train.schedule import step_settings

    optimizer = make_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                               betas=config.betas, weight_decay=config.weight_decay,
                               options=config.optimizer_options)
    if latest is not None:
        optimizer.load_state_dict(state.optimizer)
    # Dropout draws from torch's global generators: the run has its own stream, seeded from
    # its seed or continued from the checkpoint, saved in every resumable checkpoint.
    with run_rng(device, derive_seed(config.seed, _DROPOUT),
                 state.rng if latest is not None else None):
        if latest is None and config.save_initial:
            write_checkpoint(checkpoint_path(out, 0), model, tokenizer, 0, history,
                             optimizer.state_dict(), dtype=dtype)
            latest = checkpoint_path(out, 0)
        batches = BatchSource(task, config)
        window: list[float] = []
        tokens, t0 = 0, time.perf_counter()
        with _progress_bar(config.steps, start, progress,
                           "pre-train" if init is None else "fine-tune") as bar:
            for step in range(start, config.steps):
                optimizer.zero_grad(set_to_none=True)
                value, n_tokens = batch_loss(model, batches(step), task.pad_token_id, device,
                                             backward=True, autocast=autocast)
                _stop_if_diverged(out, model, value, step + 1, latest)
                step_settings(optimizer, model, config, step)
                optimizer.step()
                done = step + 1
                window.append(value)
                tokens += n_tokens
                save = done == config.steps or (config.checkpoint_every > 0
                                                and done % config.checkpoint_every == 0)
                if save or done % config.log_every == 0:
                    history.append([done, float(np.mean(window))])
                    window = []
                if bar is not None:
                    rate = tokens / max(time.perf_counter() - t0, 1e-9)
                    bar.update(bar.task_ids[0], completed=done, loss=f"{value:.4f}",
                               tps=f"{rate:,.0f}")
                if save:
                    _stop_if_diverged(out, model, value, done, latest, weights=True)
                    path = write_checkpoint(checkpoint_path(out, done), model, tokenizer, done,
                                            history, optimizer.state_dict(), dtype=dtype)
                    drop_older_optimizer_states(out, done)
                    latest = path
        if latest != checkpoint_path(out, config.steps):
            write_checkpoint(checkpoint_path(out, config.steps), model, tokenizer, config.steps,
                             history, optimizer.state_dict(), dtype=dtype)
    return link_final(out, config.steps)


def _record_model(out: Path, record: dict[str, Any]) -> None:
    import json

    from lmcoverage.io import atomic_write_json

    run_json = out / RUN_JSON
    meta = json.loads(run_json.read_text())
    if meta.get("model") != record:
        atomic_write_json(run_json, {**meta, "model": record})
