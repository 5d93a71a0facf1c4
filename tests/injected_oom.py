"""Inject CUDA out-of-memory errors into an engine module's passes (scoring or sampling)."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch


def _oom() -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError("CUDA out of memory (injected)")


def limit_passes(monkeypatch: pytest.MonkeyPatch, module: ModuleType, max_prompts: int,
                 max_rows: int) -> dict[str, list[int]]:
    """Make ``module.run_prompts`` fail on more than ``max_prompts`` prompts and
    ``module.forward`` on more than ``max_rows`` rows, as a device out of memory would.

    Returns the record the passes fill: ``prompts`` (every prompt pass's size), ``rows`` (every
    forward pass's rows) and ``oom`` (the sizes that failed).
    """
    run_prompts, forward = module.run_prompts, module.forward
    seen: dict[str, list[int]] = {"prompts": [], "rows": [], "oom": []}

    def small_prompt_passes(model, batch):
        seen["prompts"].append(len(batch))
        if len(batch) > max_prompts:
            seen["oom"].append(len(batch))
            raise _oom()
        return run_prompts(model, batch)

    def small_row_passes(model, ids, *args, **kwargs):
        seen["rows"].append(ids.shape[0])
        if ids.shape[0] > max_rows:
            seen["oom"].append(ids.shape[0])
            raise _oom()
        return forward(model, ids, *args, **kwargs)

    monkeypatch.setattr(module, "run_prompts", small_prompt_passes)
    monkeypatch.setattr(module, "forward", small_row_passes)
    return seen


def no_memory(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    """Make every prompt pass of ``module`` fail as out of memory."""
    def fail(*args, **kwargs):
        raise _oom()

    monkeypatch.setattr(module, "run_prompts", fail)
