"""The learning rate at each optimizer step (as nanoGPT's training loop sets it).

``constant``: ``lr`` at every step; ``cosine``: cosine decay from ``lr`` to ``min_lr`` (at the last
step) over the run's steps. Either starts with ``warmup_steps`` of linear warm-up from
``lr / warmup_steps``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    import torch

    from lmcoverage.train.loop import TrainConfig

#: learning-rate schedules of ``TrainConfig.lr_schedule``
SCHEDULES = ("constant", "cosine")


def check_schedule(name: str, warmup_steps: int, min_lr: float, lr: float) -> None:
    """InputError naming the field unless the schedule's settings are valid."""
    if name not in SCHEDULES:
        raise InputError(f"lr_schedule: unknown {name!r}; choose from {', '.join(SCHEDULES)}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise InputError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if not (math.isfinite(min_lr) and 0 <= min_lr <= lr):
        raise InputError(f"min_lr must be finite and in [0, lr], got {min_lr!r}")


def learning_rate(step: int, *, lr: float, schedule: str = "constant", warmup_steps: int = 0,
                  min_lr: float = 0.0, total_steps: int = 1) -> float:
    """The rate of optimizer step ``step`` (0-based) of ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    span = max(total_steps - 1 - warmup_steps, 1)  # the last step runs at min_lr
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def step_settings(optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                  config: TrainConfig, step: int) -> None:
    """Before optimizer step ``step``: set its learning rate and clip the gradients' global
    norm to ``config.grad_clip`` (nothing at the defaults: a constant rate, no clipping)."""
    if config.lr_schedule != "constant" or config.warmup_steps > 0:
        rate = learning_rate(step, lr=config.lr, schedule=config.lr_schedule,
                             warmup_steps=config.warmup_steps, min_lr=config.min_lr,
                             total_steps=config.steps)
        for group in optimizer.param_groups:
            group["lr"] = rate
    if config.grad_clip > 0:
        import torch

        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
