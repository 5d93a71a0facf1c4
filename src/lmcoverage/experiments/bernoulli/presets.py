"""bernoulli: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

from lmcoverage.errors import InputError

TITLE = "Bernoulli case study (Sec. 3): infinite KL, small coverage"


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~10 CPU s"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "p_fixed": [0.3, 0.03],
        "rare_c": 1.0,
        "sample_sizes": [10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
        "coverage_ns": [2, 4, 16],
        "delta": 0.05,
        "reps": 20000,
        "p_grid_size": 300,
        "p_grid_min": 1e-5,
        "case1_factor": 8.0,
        "rate_deltas": [0.2, 0.05, 0.01, 0.001],
    },
    "test": {
        "p_fixed": [0.3],
        "rare_c": 1.0,
        "sample_sizes": [40, 160, 640],
        "coverage_ns": [2, 16],
        "delta": 0.05,
        "reps": 2000,
        "p_grid_size": 20,
        "p_grid_min": 1e-3,
        "case1_factor": 8.0,
        "rate_deltas": [0.2, 0.05, 0.01],
    },
}


def validate(config: dict[str, Any]) -> None:
    """ValueError naming the key when a config value is out of range."""
    if not 0.0 < config["delta"] < 1.0:
        raise InputError(f"delta: must be in (0, 1), got {config['delta']}")
    if min(config["coverage_ns"]) < 2:
        raise InputError(f"coverage_ns: the claim is for N >= 2, got {config['coverage_ns']}")
    if min(config["sample_sizes"]) < 1:
        raise InputError(f"sample_sizes: must be >= 1, got {config['sample_sizes']}")
    if config["reps"] < 1:
        raise InputError(f"reps: must be >= 1, got {config['reps']}")
    if not 0.0 < config["rare_c"] < min(config["sample_sizes"]) / 2:
        raise InputError(f"rare_c: p* = rare_c / n must be in (0, 1/2), got {config['rare_c']}")
    if any(not 0.0 < p < 0.5 for p in config["p_fixed"]):
        raise InputError(f"p_fixed: Sec. 3's class needs p* in (0, 1/2), got {config['p_fixed']}")
    if any(not 0.0 < d < 1.0 for d in config["rate_deltas"]) or len(config["rate_deltas"]) < 2:
        raise InputError(f"rate_deltas: need two or more values in (0, 1), got "
                         f"{config['rate_deltas']}")
    if config["case1_factor"] <= 0:
        raise InputError(f"case1_factor: must be > 0, got {config['case1_factor']}")
    if not 0.0 < config["p_grid_min"] < 0.5:
        raise InputError(f"p_grid_min: must be in (0, 0.5), got {config['p_grid_min']}")
