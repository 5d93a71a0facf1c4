"""sgd: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.experiments.theory_common import check_sweep, log_grid

TITLE = "SGD vs normalized SGD across horizons (Prop 5.1, Thm 5.1)"


METHODS = ("sgd", "normalized_sgd", "sign_sgd", "adam")


#: sizes shared by the step-size sweeps (sgd, distill): cpu and test. ``tune_replicates``
#: choose each method's step size; the other ``replicates`` are the reported ones.
SWEEP_CPU: dict[str, Any] = {"instance": "two-prompt", "horizons": [4, 16, 64, 256], "T": 1000,
                             "N": 8, "replicates": 64, "tune_replicates": 32}
SWEEP_TEST: dict[str, Any] = {"instance": "two-prompt", "horizons": [4, 64], "T": 250, "N": 8,
                              "replicates": 16, "tune_replicates": 8}

_CPU_PRESET: dict[str, Any] = {
    **SWEEP_CPU,
    "sgd_lr": log_grid(1e-8, 1e-1, 8),
    "nsgd_lr": log_grid(1e-3, 1.0, 8),
    "nsgd_lam": [1e-3, 0.1, 1.0, 10.0, 100.0],
    "nsgd_K": [1, 4, 16],
    "sign_lr": log_grid(1e-4, 1.0, 8),
    "adam_lr": log_grid(1e-4, 1.0, 8),
    "checkpoints": 16,
}


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~1.5 CPU min", "cpu-graded": "~2.5 CPU min"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": _CPU_PRESET,
    # the same sweep on the graded instance
    "cpu-graded": {**_CPU_PRESET, "instance": "graded"},
    "test": {
        **SWEEP_TEST,
        "sgd_lr": log_grid(1e-8, 1e-1, 8),
        "nsgd_lr": log_grid(1e-2, 1.0, 4),
        "nsgd_lam": [1.0, 100.0],
        "nsgd_K": [1],
        "sign_lr": log_grid(1e-3, 1.0, 2),
        "adam_lr": log_grid(1e-3, 1.0, 2),
        "checkpoints": 6,
    },
}


def validate(config: dict[str, Any]) -> None:
    """ValueError naming the key when a config value is out of range."""
    check_sweep(config, ("sgd_lr", "nsgd_lr", "nsgd_lam", "sign_lr", "adam_lr"))
    if config["N"] < 1:
        raise InputError(f"N: must be >= 1, got {config['N']}")
    if not config["nsgd_K"] or min(config["nsgd_K"]) < 1:
        raise InputError(f"nsgd_K: K must be >= 1, got {config['nsgd_K']}")
