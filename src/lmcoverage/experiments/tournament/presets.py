"""tournament: Presets (the run's configuration keys and sizes) and their validation."""

from __future__ import annotations

from typing import Any

TITLE = "Choosing checkpoints by coverage: tournaments vs likelihood on exact finite families"


_BASE: dict[str, Any] = {
    # part 1: Prop E.1
    "alphas": [0.1, 0.2, 0.3, 0.4, 0.5],
    "ms": [16, 100, 1000, 10000],
    "e1_n": 8.0,
    "e1_slice_examples": 20,
    "e1_draws": 100,
    # part 2: Thm 6.3, on bound_breaking_family(s) for s in family_seeds
    "family_seeds": [0, 1, 2, 3, 4],
    "a": 0.5,
    "delta": 0.1,
    "ns": [2, 8, 32, 64, 128, 256],
    "heldout": 1000,
    "n_fixed": 256.0,
    "heldout_sizes": [125, 250, 500, 1000, 2000, 4000],
    "draws": 100,
    # part 3: Thm 6.4 where it applies ((a, N) with N^(1-2a) >= 8), then a = 0.5 (heuristic)
    "thm64_cases": [[0.1, 16], [0.25, 64]],
    "offset_family_seed": 0,
    "heuristic_a": 0.5,
    "offset_ns": [2, 4, 8, 16],
    "offset_heldout": 2000,
    "offset_samples": 16,
    "offset_draws": 50,
}


#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~20 CPU s", "full": "~1.7 CPU min"}
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(_BASE),
    "full": {**_BASE, "e1_draws": 500, "draws": 500, "offset_draws": 300},
}
