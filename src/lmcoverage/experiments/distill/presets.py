"""distill: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.experiments.sgd.presets import SWEEP_CPU, SWEEP_TEST
from lmcoverage.experiments.theory_common import check_sweep, log_grid

TITLE = "Truncated-gradient vs plain distillation across horizons (Thm 6.2)"


METHODS = ("plain", "truncated")


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~40 CPU s"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        **SWEEP_CPU,
        "plain_lr": log_grid(1e-8, 1e-1, 8),
        "truncated_lr": log_grid(1e-6, 1.0, 8),
        "checkpoints": 16,
    },
    "test": {
        **SWEEP_TEST,
        "plain_lr": log_grid(1e-8, 1e-1, 8),
        "truncated_lr": log_grid(1e-5, 1e-1, 4),
        "checkpoints": 6,
    },
}


def validate(config: dict[str, Any]) -> None:
    """ValueError naming the key when a config value is out of range."""
    check_sweep(config, ("plain_lr", "truncated_lr"))
    if config["N"] <= 1:
        raise InputError(f"N: must be > 1 (A = log N > 0), got {config['N']}")
