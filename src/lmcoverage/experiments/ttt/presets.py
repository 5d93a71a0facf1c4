"""ttt: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

from lmcoverage.errors import InputError

TITLE = "Token-level SGD with and without test-time-training decoding (Thm 6.1)"


DECODERS = ("plain", "ttt")


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~50 CPU s"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "T": 50,
        "scale": 5.0,
        "theta_star": 1.0,
        "horizons": [1, 4, 16, 64, 256],
        "lr_grid": [0.01, 0.03, 0.1, 0.3, 1.0],
        "coverage_ns": [4, 16],
        "replicates": 200,
        "mc_samples": 400,
    },
    "test": {
        "T": 20,
        "scale": 5.0,
        "theta_star": 1.0,
        "horizons": [2, 32],
        "lr_grid": [0.1, 1.0],
        "coverage_ns": [4, 16],
        "replicates": 40,
        "mc_samples": 100,
    },
}


def validate(config: dict[str, Any]) -> None:
    """ValueError naming the key when a config value is out of range."""
    for key in ("T", "replicates"):
        if int(config[key]) < 1:
            raise InputError(f"{key}: must be >= 1, got {config[key]}")
    if int(config["mc_samples"]) < 2:
        raise InputError(f"mc_samples: must be >= 2, got {config['mc_samples']}")
    if not config["horizons"] or min(config["horizons"]) < 1:
        raise InputError(f"horizons: H must be >= 1, got {config['horizons']}")
    if not config["lr_grid"] or min(config["lr_grid"]) <= 0:
        raise InputError(f"lr_grid: eta must be > 0, got {config['lr_grid']}")
    if min(config["coverage_ns"]) < 2:
        raise InputError(f"coverage_ns: N must be >= 2, got {config['coverage_ns']}")
    if not -1.0 <= float(config["theta_star"]) <= 1.0:
        raise InputError(f"theta_star: must lie in Theta = [-1, 1], got {config['theta_star']}")
    if float(config["scale"]) <= 0:
        raise InputError(f"scale: must be > 0, got {config['scale']}")
