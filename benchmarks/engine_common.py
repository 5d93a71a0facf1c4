"""Shared set-up for the engine benchmarks: paper-shape model, Figure 2 problems, timing.

Not a benchmark itself; imported by ``engine_scoring.py``, ``engine_passn.py`` and
``engine_sampling.py`` (run them from the repository root with ``.venv/bin/python``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

torch.set_num_threads(1)


def paper_model(task: Any, seed: int = 0) -> Any:
    """The paper's 6-layer, 4-head, width-384 GPT-2 for ``task`` (random weights: speed does
    not depend on them), in eval mode."""
    from lmcoverage.models.gpt import build_gpt

    return build_gpt("paper", task.vocab_size, task.max_length, seed=seed).eval()


def validation_mix(task_name: str, per_class: int, seed: int = 0) -> tuple[Any, list[Any]]:
    """``per_class`` problems of each class of ``task_name`` (the paper's per-class sets)."""
    from lmcoverage.tasks import get_task

    task = get_task(task_name)
    problems = [p for k, g in enumerate(sorted(task.class_weights))
                for p in task.sample(per_class, seed + k, group=g)]
    return task, problems


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Least CPU time (seconds, this process) over ``repeats`` calls of ``fn``, and its result.

    CPU time, not wall time: on a shared machine other processes stretch wall time but not the
    work this single-threaded process does.
    """
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def matmul_gflops(size: int = 768, repeats: int = 20) -> float:
    """Measured float32 matmul rate (GFLOP/s) on one thread: the compute limit of the model."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    seconds, _ = timed(lambda: [a @ b for _ in range(repeats)], repeats=3)
    return 2 * size**3 * repeats / seconds / 1e9


def flops_per_token(model: Any, context: float) -> float:
    """Forward FLOPs for one token attending to ``context`` positions: 2 x (non-embedding
    weights + LM head) plus attention scores and values (4 x layers x width x context)."""
    cfg = model.config
    weights = sum(p.numel() for n, p in model.named_parameters()
                  if p.dim() == 2 and "wte" not in n and "wpe" not in n)
    return 2.0 * (weights + cfg.vocab_size * cfg.n_embd) + 4.0 * cfg.n_layer * cfg.n_embd * context
