"""The experiment registry and the run-directory protocol behind ``lmcoverage run``.

An experiment is a module with

- ``TITLE: str`` one line for ``--help`` and the report;
- ``PRESETS: dict[str, dict]``: at least ``"cpu"`` (minutes on two cores) and, for the
  graph experiments, ``"paper"`` (the paper's sizes, for a GPU);
- ``run(config: dict, out_dir: Path, ctx: RunContext) -> dict``: does the work, writes
  ``results.json``, PNG figures and ``report.html`` into ``out_dir`` and returns the results;
- optionally ``summary(results) -> list[dict]``: rows of key numbers printed after the run;
- optionally ``NULLABLE: dict[str, type]``: keys that take null besides a positive value of
  that type (``{"train_examples": int}``: a fixed set of that size, or null for fresh samples);
- optionally ``DEFAULT_SEEDS: dict[str, list[int]]``: the seeds a preset runs when none are
  given (``[0]`` otherwise; Figure 2's ``paper`` preset: the paper's 16 seeds);
- optionally ``TYPICAL_TIME: dict[str, str]``: a preset's measured time for ``run --list``
  (``"~1 CPU min"``; ``test`` and ``paper`` default to :data:`DEFAULT_TYPICAL_TIME`).

Modules are imported lazily, so ``lmcoverage --help`` stays fast.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.executors import Executor, LocalExecutor
from lmcoverage.io import RunDir

EXPERIMENTS: dict[str, str] = {
    "figure1": "lmcoverage.experiments.figure1",
    "figure2": "lmcoverage.experiments.figure2",
    "tournament": "lmcoverage.experiments.tournament",
    "bernoulli": "lmcoverage.experiments.bernoulli",
    "horizon": "lmcoverage.experiments.horizon",
    "sgd": "lmcoverage.experiments.sgd",
    "ttt": "lmcoverage.experiments.ttt",
    "distill": "lmcoverage.experiments.distill",
    "real-lm": "lmcoverage.experiments.real_lm",
}

CONFIG_FILE = "config.json"


@dataclass
class RunContext:
    """What an experiment gets besides its config: seeds, executor, progress switch and the
    torch thread count of every unit (applied by
    :func:`lmcoverage.experiments.threads.torch_threads`, never set globally)."""

    seeds: list[int]
    executor: Executor = field(default_factory=LocalExecutor)
    progress: bool = True
    threads: int = 1


#: Typical time of the ``test`` and ``paper`` presets of any experiment.
DEFAULT_TYPICAL_TIME = {"test": "seconds", "paper": "hours on a GPU"}


def typical_time(module: ModuleType, preset: str) -> str:
    """The measured time of experiment ``module``'s ``preset`` (``"?"`` when not measured)."""
    return (getattr(module, "TYPICAL_TIME", {}).get(preset)
            or DEFAULT_TYPICAL_TIME.get(preset) or "?")


def available() -> list[str]:
    """Names of the experiments whose modules are installed."""
    return [name for name, mod in EXPERIMENTS.items() if importlib.util.find_spec(mod)]


def load_experiment(name: str) -> ModuleType:
    """Import and return the experiment module ``name``; ValueError if unknown."""
    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    try:
        return importlib.import_module(EXPERIMENTS[name])
    except ModuleNotFoundError as exc:
        if exc.name == EXPERIMENTS[name]:
            raise InputError(f"experiment {name!r} is not implemented yet") from None
        raise


def default_seeds(module: ModuleType, preset: str) -> list[int]:
    """The seeds ``preset`` runs when the user gives none: ``module.DEFAULT_SEEDS[preset]``
    or ``[0]``."""
    return list(getattr(module, "DEFAULT_SEEDS", {}).get(preset, [0]))


def resolve_config(module: ModuleType, preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's config with ``overrides`` applied; unknown preset or key -> ValueError."""
    presets: dict[str, dict[str, Any]] = module.PRESETS
    if preset not in presets:
        raise InputError(f"unknown preset {preset!r}; choose from {', '.join(presets)}")
    nullable: dict[str, type] = getattr(module, "NULLABLE", {})
    config = json.loads(json.dumps(presets[preset]))
    for key, value in overrides.items():
        if key not in config:
            raise InputError(f"--set {key}: no such config key; keys: {', '.join(config)}")
        if key in nullable:
            config[key] = _nullable(key, nullable[key], value)
        else:
            config[key] = _coerce_like(key, config[key], value)
    config["preset"] = preset
    return config


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "true/false"), (int, "an integer"), (float, "a number"), (str, "a string"),
    (list, "a list"), (dict, "an object"),
)


def _kind(value: object) -> str:
    """The JSON kind of a preset value, in words (bool before int: True is an int)."""
    return next((name for cls, name in _KINDS if isinstance(value, cls)), "null")


def _coerce_like(key: str, preset_value: Any, value: Any) -> Any:
    """``value`` checked against the kind of the preset's value (ints widen to floats)."""
    expected, got = _kind(preset_value), _kind(value)
    if preset_value is None or expected == got:
        if isinstance(value, list) and isinstance(preset_value, list) and preset_value:
            return [_coerce_like(f"{key}[{i}]", preset_value[0], v) for i, v in enumerate(value)]
        return value
    if expected == "a number" and got == "an integer":
        return float(value)
    raise InputError(f"--set {key}: expected {expected} like {json.dumps(preset_value)}, "
                     f"got {json.dumps(value)}")


def _nullable(key: str, kind: type, value: object) -> float | None:
    """``value`` if it is null or a positive ``kind`` (bools are not integers), else
    InputError."""
    if value is None:
        return None
    if (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            and isinstance(value, kind)):
        return value
    expected = next(name for cls, name in _KINDS if cls is kind)
    raise InputError(f"--set {key}: expected {expected} > 0 or null, got {json.dumps(value)}")


def prepare_run_dir(out_dir: Path, record: dict[str, Any]) -> None:
    """Create ``out_dir`` for a run, or resume the run it holds (:class:`lmcoverage.io.RunDir`:
    the one rule of ``train`` and ``run``). ``record`` (experiment, config, seeds) is stored in
    ``config.json``; a directory holding another record, or unrelated files, is refused."""
    RunDir(out_dir, CONFIG_FILE).prepare(record)
