"""horizon: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

from lmcoverage.errors import InputError

TITLE = "KL grows with H, coverage does not (Prop 3.2, Thm 4.2)"


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~30 CPU s"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "n": 50,
        "theta_star": 1.0,
        "horizons": [1, 2, 4, 8, 16, 32, 64, 128, 256],
        "coverage_ns": [2, 8],
        "replicates": 4000,
        "rich_n": 100,
        "rich_horizons": [2, 4, 8, 16, 32, 64],
        "rich_pivotal": 2,
        "rich_replicates": 6,
        "rich_mc_samples": 4000,
    },
    "test": {
        "n": 20,
        "theta_star": 1.0,
        "horizons": [1, 4, 16, 64],
        "coverage_ns": [2, 8],
        "replicates": 1000,
        "rich_n": 60,
        "rich_horizons": [2, 16],
        "rich_pivotal": 2,
        "rich_replicates": 2,
        "rich_mc_samples": 1000,
    },
}


def validate(config: dict[str, Any]) -> None:
    """ValueError naming the key when a config value is out of range."""
    for key in ("n", "replicates", "rich_n", "rich_replicates"):
        if int(config[key]) < 1:
            raise InputError(f"{key}: must be >= 1, got {config[key]}")
    if int(config["rich_mc_samples"]) < 2:
        raise InputError(f"rich_mc_samples: must be >= 2, got {config['rich_mc_samples']}")
    for key in ("horizons", "rich_horizons"):
        if not config[key] or min(config[key]) < 1:
            raise InputError(f"{key}: H must be >= 1, got {config[key]}")
    if min(config["coverage_ns"]) < 2:
        raise InputError(f"coverage_ns: N must be >= 2, got {config['coverage_ns']}")
    if not -1.0 <= float(config["theta_star"]) <= 1.0:
        raise InputError(f"theta_star: must lie in Theta = [-1, 1], got {config['theta_star']}")
    if not 0 <= int(config["rich_pivotal"]) <= min(config["rich_horizons"]):
        raise InputError(f"rich_pivotal: must be in [0, min(rich_horizons)], got "
                         f"{config['rich_pivotal']}")
