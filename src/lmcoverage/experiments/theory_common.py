"""Helpers shared by the theory experiments (bernoulli, horizon, sgd, ttt, distill).

- :func:`check_sweep`: the size and grid checks of a step-size sweep (sgd, distill);
- :func:`make_rng`: a numpy Generator derived from the run's seeds and a unit key, so every
  unit (a horizon H, a sample size n) draws its own reproducible stream;
- :func:`run_units`: independent units (one per H, ...) through the run's executor, each
  stored as an ``.npz`` file in the run directory, so an interrupted run resumes;
- :class:`Check` and :func:`check_section`: the "does the measurement match the theorem" table
  every report ends with;
- :func:`best_over_grid`: per method and H, the grid point with the best final Cov_N of a
  tuned sweep (sgd, distill);
- :func:`finish_run`: the common tail of ``run()``: results.json, figures, report.html.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.executors import Executor, LocalExecutor
from lmcoverage.io import atomic_path, atomic_write_json
from lmcoverage.report import Section, Table


def log_grid(lo: float, hi: float, per_decade: int) -> list[float]:
    """Log-spaced values from ``lo`` to ``hi`` (both included), ``per_decade`` per decade."""
    if not 0 < lo < hi or per_decade < 1:
        raise InputError(f"log_grid: need 0 < lo < hi and per_decade >= 1, got {lo}, {hi}, "
                         f"{per_decade}")
    count = int(round((np.log10(hi) - np.log10(lo)) * per_decade)) + 1
    return [float(v) for v in np.logspace(np.log10(lo), np.log10(hi), count)]


def check_sweep(config: dict[str, Any], grids: Sequence[str]) -> None:
    """ValueError naming the key unless a step-size sweep's sizes (``T``, ``replicates``,
    ``tune_replicates``, ``checkpoints``, ``horizons``) are >= 1 and each grid in ``grids`` is
    non-empty and > 0."""
    for key in ("T", "replicates", "tune_replicates", "checkpoints"):
        if int(config[key]) < 1:
            raise InputError(f"{key}: must be >= 1, got {config[key]}")
    if not config["horizons"] or min(config["horizons"]) < 1:
        raise InputError(f"horizons: H must be >= 1, got {config['horizons']}")
    for key in grids:
        if not config[key] or min(config[key]) <= 0:
            raise InputError(f"{key}: need a non-empty grid of values > 0, got {config[key]}")


def make_rng(seeds: Sequence[int], *keys: int) -> np.random.Generator:
    """A Generator seeded by ``(*seeds, *keys)``: same seeds and keys, same stream."""
    if not seeds:
        raise InputError("seeds: give at least one seed")
    if any(int(s) < 0 for s in (*seeds, *keys)):
        raise InputError(f"seeds: must be >= 0, got {list(seeds)} and keys {list(keys)}")
    return np.random.default_rng(np.random.SeedSequence([int(s) for s in (*seeds, *keys)]))


UnitFn = Callable[[], dict[str, Any]]


def _load_unit(path: Path) -> dict[str, NDArray[Any]]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _store_unit(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    """Write a unit's arrays to ``path`` atomically (``.npz``, no pickled objects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def _compute_unit(job: tuple[Path, UnitFn]) -> dict[str, NDArray[Any]]:
    """Run one unit and store it, so it survives an interruption of the units after it."""
    path, compute = job
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    _store_unit(path, arrays)
    return arrays


def run_units(
    out_dir: Path, jobs: dict[str, UnitFn], executor: Executor | None = None,
    progress: bool = False,
) -> dict[str, dict[str, NDArray[Any]]]:
    """Results of the independent units ``jobs`` (name -> zero-argument function of arrays).

    A finished unit lives in ``<out_dir>/units/<name>.npz`` and is loaded instead of recomputed,
    so an interrupted run resumes. Missing units go through ``executor.map`` (local by default,
    or Ray); each is stored as soon as it finishes. ``progress`` shows a rich progress bar
    over the units run locally.
    """
    root = Path(out_dir) / "units"
    paths = {name: root / f"{name}.npz" for name in jobs}
    done = {name: _load_unit(path) for name, path in paths.items() if path.is_file()}
    missing = [name for name in jobs if name not in done]
    items = [(paths[name], jobs[name]) for name in missing]
    ex = executor or LocalExecutor()
    if progress and isinstance(ex, LocalExecutor) and items:
        from rich.progress import track

        computed = [_compute_unit(item) for item in track(items, description="units")]
    else:
        computed = ex.map(_compute_unit, items)
    for name, arrays in zip(missing, computed, strict=True):
        if not paths[name].is_file():  # a remote worker's file system is not ours
            _store_unit(paths[name], arrays)
        done[name] = arrays
    return {name: done[name] for name in jobs}


@dataclass
class Check:
    """One claim of a theorem tested against the measurement."""

    claim: str
    measured: str
    holds: bool


def check_section(checks: list[Check], theorem: str) -> Section:
    """The report section that says plainly whether the measurement matches ``theorem``."""
    n_ok = sum(c.holds for c in checks)
    verdict = (
        f"All {len(checks)} checks hold: the measured curves match {theorem}."
        if n_ok == len(checks)
        else f"{len(checks) - n_ok} of {len(checks)} checks FAIL: the measured curves do not "
        f"fully match {theorem} (see the table)."
    )
    rows = [{**asdict(c), "holds": "yes" if c.holds else "NO"} for c in checks]
    return Section("Verdict", verdict, tables=[Table(rows, caption="Prediction vs measurement")])


def checks_to_json(checks: list[Check]) -> list[dict[str, Any]]:
    """Checks as plain dicts for results.json."""
    return [asdict(c) for c in checks]


@dataclass
class GridBest:
    """Per method and H (keys ``[method][str(H)]``), the best grid point of a tuned sweep."""

    final_cov: dict[str, dict[str, float]]
    final_cov_se: dict[str, dict[str, float]]
    choice: dict[str, dict[str, Any]]
    cov_curve: dict[str, dict[str, list[float]]]
    kl_curve: dict[str, dict[str, list[float]]]


def best_over_grid(
    units: dict[int, dict[str, NDArray[Any]]], methods: Sequence[str],
    choice: Callable[[str, int], Any],
) -> GridBest:
    """Read each unit's best grid point per method.

    ``units`` maps H to a unit with, per method ``m``, arrays ``m.best`` (index of the best
    grid point), ``m.final_cov`` (grid,), ``m.best_se``, ``m.curve`` and ``m.curve_kl``
    (checkpoints,). ``choice(m, index)`` is the grid value stored for the best index.
    """
    out = GridBest({m: {} for m in methods}, {m: {} for m in methods}, {m: {} for m in methods},
                   {m: {} for m in methods}, {m: {} for m in methods})
    for h, unit in units.items():
        for m in methods:
            best = int(unit[f"{m}.best"])
            out.final_cov[m][str(h)] = float(unit[f"{m}.final_cov"][best])
            out.final_cov_se[m][str(h)] = float(unit[f"{m}.best_se"])
            out.choice[m][str(h)] = choice(m, best)
            out.cov_curve[m][str(h)] = unit[f"{m}.curve"].tolist()
            out.kl_curve[m][str(h)] = unit[f"{m}.curve_kl"].tolist()
    return out


def tuned_results(
    config: dict[str, Any], horizons: list[int], methods: Sequence[str], best: GridBest,
    choice_key: str, steps: list[int],
) -> dict[str, Any]:
    """The results.json fields every step-size sweep shares (those :func:`tuned_summary` and
    the sweep plots read), in this order; ``best.choice`` is stored under ``choice_key``."""
    return {
        "N": config["N"],
        "T": config["T"],
        "horizons": horizons,
        "methods": list(methods),
        "replicates": config["replicates"],
        "tune_replicates": config["tune_replicates"],
        "best_final_cov": best.final_cov,
        "best_final_cov_se": best.final_cov_se,
        choice_key: best.choice,
        "checkpoint_steps": steps,
        "cov_curve": best.cov_curve,
        "kl_curve": best.kl_curve,
    }


ReportFn = Callable[[dict[str, Any], list[Path], list[Check], dict[str, Any], Path], None]


def finish_run(
    out_dir: Path, results: dict[str, Any], checks: list[Check], config: dict[str, Any],
    plot: Callable[[dict[str, Any], Path], list[Path]], report: ReportFn,
) -> dict[str, Any]:
    """Write ``results.json``, then ``plot(results, out_dir)``'s figures, then
    ``report(results, figures, checks, config, out_dir)``; return ``results``."""
    atomic_write_json(out_dir / "results.json", results)
    figures = plot(results, out_dir)
    report(results, figures, checks, config, out_dir)
    return results


def tuned_summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """``summary()`` rows of a step-size sweep: best final Cov_N per method and H, then the
    checks (``results`` has ``N``, ``horizons``, ``methods``, ``best_final_cov``)."""
    rows: list[dict[str, Any]] = [
        {"claim": f"best Cov_{results['N']}: {m}",
         "measured": ", ".join(f"H={h}: {results['best_final_cov'][m][str(h)]:.3f}"
                               for h in results["horizons"]),
         "holds": ""}
        for m in results["methods"]
    ]
    return rows + check_rows(results)


def check_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """``summary()`` rows: one per check stored in ``results["checks"]``."""
    return [
        {"claim": c["claim"], "measured": c["measured"], "holds": "yes" if c["holds"] else "NO"}
        for c in results.get("checks", [])
    ]
