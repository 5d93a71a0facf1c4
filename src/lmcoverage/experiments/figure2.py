"""Figure 2: coverage ignores the horizon H, KL does not (the paper's Appendix C).

For each H and seed, a GPT is trained on the ``figure2-h{H}`` mixture (class 1: one valid
path, weight 0.94; class 2: H/2 parity decisions keyed to the XOR of the parities of the
intermediate layers' passable nodes, 0.05; class 3: uniform over 16 paths, 0.01), on a fixed
training set of ``train_examples`` problems (the paper: 8 x 64,000) or on fresh samples.
Every checkpoint is scored on per-class validation sets, the class metrics are mixed with the
class weights, and KL, Cov_16 and Cov_8 are plotted over training per H (median over seeds,
1/16-15/16 band). Where the hard classes stay unlearned they add KL that grows with H but
leave Cov_16 alone.

Units of work (one per (H, seed)) run through ``ctx.executor``, so ``--workers N`` (local
processes) or ``--executor ray`` trains them in parallel; each unit caches its ScoreTable and
metrics in the run directory and is skipped on re-run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmcoverage.experiments import graph_common as gc
from lmcoverage.experiments.numerics import numeric_environment
from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.threads import torch_threads
from lmcoverage.io import atomic_write_json

if TYPE_CHECKING:
    from lmcoverage.engine.table import Examples
    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.tasks import Task

TITLE = "Figure 2: KL grows with the horizon H, coverage does not"

CLASSES = (1, 2, 3)
COV_NS = (8, 16)

#: Effect thresholds of the issue (checked in the report, the summary and the tests).
CLASS1_MAX_KL = 0.05
CLASS1_MIN_ACCURACY = 0.99
MAX_COV16 = 0.10
KL_SLOPE_FRACTION = 0.75
MAX_COV16_SPREAD = 0.05

_COMMON: dict[str, Any] = {
    "edge_order": "layer",
    # m, the node-id range, the same at every H (Appendix C.1: V in [m] for a fixed m), so the
    # vocabulary does not change with H; null: the default m of the largest H (twice its
    # graph's nodes, rounded up to 16: 80 for H = 8, 208 for H = 24).
    "node_range": None,
    "model": "cpu",
    "model_overrides": {},
    "lr": 2e-3,
    "weight_decay": 0.01,
    "batch_size": 32,
    "val_per_class": 256,
    "val_seed": 10_000,
    "score_batch_size": 512,
    # The paper's KL and KL/Cov_16 axes are linear; "log" shows KL over decades.
    "kl_axis": "linear",
}

# A fixed set of that many problems, or null for fresh samples every batch; node_range null:
# the default m of the largest horizon.
NULLABLE: dict[str, type] = {"train_examples": int, "node_range": int}

#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~4 CPU min a seed"}
PRESETS: dict[str, dict[str, Any]] = {
    # CI: two horizons, a handful of steps; checks the machinery, not the effect.
    "test": {**_COMMON, "horizons": [4, 8], "model": "tiny", "steps": 20,
             "checkpoint_every": 10, "val_per_class": 8, "train_examples": 64},
    # A fixed training set seen for 10 epochs, as in the paper (40k steps x 128 over
    # 8 x 64,000 problems): 1500 steps x 32 / 10 = 4,800 problems.
    "cpu": {**_COMMON, "horizons": [4, 8], "steps": 1500, "checkpoint_every": 250,
            "val_per_class": 128, "train_examples": 4800},
    "paper": {**_COMMON, "horizons": [8, 16, 24], "edge_order": "shuffled", "model": "paper",
              "lr": 1e-4, "batch_size": 128, "steps": 40_000, "checkpoint_every": 2_000,
              "val_per_class": 1024, "train_examples": 8 * 64_000},
}

#: The paper ran 16 seeds and plots their median and 1/16-15/16 band (Appendix C.3).
DEFAULT_SEEDS: dict[str, list[int]] = {"paper": list(range(16))}


# --------------------------------------------------------------------------------------------
# one unit: train (H, seed), score every checkpoint


@dataclass(frozen=True)
class Unit:
    """One (H, seed) run: everything a worker needs (picklable, for Ray)."""

    horizon: int
    seed: int
    config: dict[str, Any]
    unit_dir: str
    progress: bool = False
    threads: int = 1


def node_range(config: dict[str, Any]) -> int:
    """m of every horizon: ``config["node_range"]``, or the largest horizon's default."""
    from lmcoverage.tasks.graph import default_node_range
    from lmcoverage.tasks.registry import FIGURE2_NODES_PER_LAYER

    if config["node_range"] is not None:
        return int(config["node_range"])
    return default_node_range(max(int(h) for h in config["horizons"]), FIGURE2_NODES_PER_LAYER)


def _task(horizon: int, config: dict[str, Any]) -> Task:
    from lmcoverage.tasks import get_task

    return get_task(f"figure2-h{horizon}", edge_order=config["edge_order"],
                    node_range=node_range(config))


def validation_set(task: Task, config: dict[str, Any]) -> Examples:
    """Per-class validation sets of ``val_per_class`` prompts, mixed with the class weights."""
    per_class = {g: task.sample(config["val_per_class"], seed=config["val_seed"] + g, group=g)
                 for g in task.class_weights}
    return gc.make_validation_set(per_class, task.class_weights)


def unit_metrics(table: ScoreTable, accuracy: dict[int, float]) -> dict[str, Any]:
    """Mixture KL / Cov_8 / Cov_16 per checkpoint and per-class KL and accuracy at the end."""
    mix = gc.curve_metrics(table, COV_NS, pass_ns=(1,))
    per_class = {}
    for g in sorted(accuracy):
        cls = gc.curve_metrics(table, COV_NS, pass_ns=(1,), group=str(g))
        per_class[str(g)] = {"kl": cls["kl"][-1], "cov_16": cls["cov"][16][-1],
                             "accuracy": accuracy[g]}
    return {"kl": mix["kl"], "cov_16": mix["cov"][16], "cov_8": mix["cov"][8],
            "per_class": per_class}


def run_unit(unit: Unit) -> dict[str, Any]:
    """Train one (H, seed) model (resuming) and score its checkpoints.

    Writes ``scores.parquet`` and ``metrics.json`` into the unit's directory (so a finished
    unit is skipped on re-run) and returns the metrics record.
    """
    with torch_threads(unit.threads):
        return _train_and_score(unit)


def _train_and_score(unit: Unit) -> dict[str, Any]:
    from lmcoverage.scoretable import ScoreTable

    cfg = unit.config
    task = _task(unit.horizon, cfg)
    checkpoints = gc.train_checkpoints(
        task, Path(unit.unit_dir) / "train", seed=unit.seed, steps=cfg["steps"], lr=cfg["lr"],
        checkpoint_every=cfg["checkpoint_every"], config=cfg, examples=cfg["train_examples"],
        save_initial=True, progress=unit.progress)
    vset = validation_set(task, cfg)
    tables = []
    for step, path in checkpoints:
        model = gc.HFSequenceModel.load(str(path), batch_size=cfg["score_batch_size"])
        tables.append(gc.score_model(model, f"step-{step}", vset, correct="support"))
    accuracy = gc.greedy_accuracy(model, vset, task)  # the last checkpoint
    table = ScoreTable.concat(tables)
    unit_dir = Path(unit.unit_dir)
    table.write_parquet(unit_dir / "scores.parquet")
    record = {**unit_metrics(table, accuracy), "iterations": [step for step, _ in checkpoints],
              "threads": unit.threads, "environment": numeric_environment()}
    atomic_write_json(unit_dir / "metrics.json", record)  # marks the unit done
    return record


# --------------------------------------------------------------------------------------------
# aggregation over seeds


def aggregate(horizons: Sequence[int], iterations: Sequence[int],
              per_unit: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any]:
    """Build results.json's ``by_horizon`` (seeds x checkpoints lists, medians and bands)."""
    by_h: dict[str, Any] = {}
    seeds = sorted({s for _, s in per_unit})
    for h in horizons:
        units = [per_unit[(h, s)] for s in seeds]
        entry: dict[str, Any] = {}
        for key in ("kl", "cov_16", "cov_8"):
            mat = np.array([u[key] for u in units], dtype=np.float64)
            med, lo, hi = gc.quantile_band(mat)
            entry[key] = mat.tolist()
            entry[f"{key}_median"] = med.tolist()
            if key != "cov_8":
                entry[f"{key}_band"] = [lo.tolist(), hi.tolist()]
        kl = np.array(entry["kl"])
        cov = np.array(entry["cov_16"])
        ratio = np.where(cov > 0, kl / np.where(cov > 0, cov, 1.0), np.nan)
        entry["kl_over_cov_16_median"] = [
            float(np.median(col[np.isfinite(col)])) if np.isfinite(col).any() else math.nan
            for col in ratio.T]
        entry["per_class"] = {
            str(g): {k: float(np.median([u["per_class"][str(g)][k] for u in units]))
                     for k in ("kl", "cov_16", "accuracy")}
            for g in CLASSES if str(g) in units[0]["per_class"]}
        by_h[str(h)] = entry
    return {"horizons": list(horizons), "iterations": list(iterations), "seeds": seeds,
            "by_horizon": by_h}


def training_data(config: dict[str, Any]) -> dict[str, Any]:
    """The training data regime of every unit (:func:`graph_common.training_data`)."""
    return gc.training_data(config["train_examples"], config["steps"], config["batch_size"])


def effect_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's Figure 2 criteria, each ``{"check", "value", "threshold", "ok"}``."""
    hs = [int(h) for h in results["horizons"]]
    by_h = results["by_horizon"]
    checks: list[dict[str, Any]] = []
    for h in hs:
        pc = by_h[str(h)]["per_class"]["1"]
        checks.append({"check": f"H={h}: class-1 KL <= {CLASS1_MAX_KL}", "value": pc["kl"],
                       "threshold": CLASS1_MAX_KL, "ok": pc["kl"] <= CLASS1_MAX_KL})
        checks.append({"check": f"H={h}: class-1 greedy accuracy >= {CLASS1_MIN_ACCURACY}",
                       "value": pc["accuracy"], "threshold": CLASS1_MIN_ACCURACY,
                       "ok": pc["accuracy"] >= CLASS1_MIN_ACCURACY})
        cov = by_h[str(h)]["cov_16_median"][-1]
        checks.append({"check": f"H={h}: final Cov_16 <= {MAX_COV16}", "value": cov,
                       "threshold": MAX_COV16, "ok": cov <= MAX_COV16})
    h_min, h_max = min(hs), max(hs)
    kl_lo, kl_hi = by_h[str(h_min)]["kl_median"][-1], by_h[str(h_max)]["kl_median"][-1]
    need = KL_SLOPE_FRACTION * h_max / h_min
    # KL 0 at both ends (a perfect model) shows no growth: the ratio is undefined, the check fails.
    ratio = kl_hi / kl_lo if kl_lo > 0 else math.inf if kl_hi > 0 else math.nan
    checks.append({"check": f"KL(H={h_max}) / KL(H={h_min}) >= {KL_SLOPE_FRACTION} * "
                            f"{h_max}/{h_min}", "value": ratio, "threshold": need,
                   "ok": ratio >= need})
    covs = [by_h[str(h)]["cov_16_median"][-1] for h in hs]
    spread = max(covs) - min(covs)
    checks.append({"check": f"Cov_16 spread across H <= {MAX_COV16_SPREAD}", "value": spread,
                   "threshold": MAX_COV16_SPREAD, "ok": spread <= MAX_COV16_SPREAD})
    return checks


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Key numbers per H at the end of training (printed after ``lmcoverage run``)."""
    rows = []
    for h in results["horizons"]:
        e = results["by_horizon"][str(h)]
        rows.append({"H": h, "KL": e["kl_median"][-1], "Cov_16": e["cov_16_median"][-1],
                     "Cov_8": e["cov_8_median"][-1],
                     "class-1 KL": e["per_class"]["1"]["kl"],
                     "class-1 acc": e["per_class"]["1"]["accuracy"],
                     "class-2 KL": e["per_class"]["2"]["kl"]})
    return rows


# --------------------------------------------------------------------------------------------
# plot and report


def plot(results: dict[str, Any], path: Path, kl_axis: str = "linear") -> Path:
    """Three panels like the paper's Figure 2: KL, Cov_16 and KL/Cov_16 over training per H
    (median over seeds, 1/16-15/16 band); ``kl_axis`` ``linear`` (the paper's) or ``log``."""
    from lmcoverage.report.figures import new_figure, save_figure

    fig, axes = new_figure(ncols=3)
    it = np.asarray(results["iterations"])
    for h in results["horizons"]:
        e = results["by_horizon"][str(h)]
        for ax, key, band in ((axes[0, 0], "kl", "kl_band"), (axes[0, 1], "cov_16",
                                                              "cov_16_band")):
            line, = ax.plot(it, e[f"{key}_median"], marker="o", ms=3, label=f"H = {h}")
            ax.fill_between(it, e[band][0], e[band][1], color=line.get_color(), alpha=0.2)
        axes[0, 2].plot(it, e["kl_over_cov_16_median"], marker="o", ms=3, label=f"H = {h}")
    titles = ("KL(pi_D || pi_hat) (nats)", "Cov_16", "KL / Cov_16")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_xlabel("training iteration")
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0, 0].set_yscale(kl_axis)
    axes[0, 2].set_yscale(kl_axis)
    return save_figure(fig, path)


def reading(results: dict[str, Any], checks: list[dict[str, Any]]) -> str:
    """A short plain-language reading generated from the numbers."""
    hs = [int(h) for h in results["horizons"]]
    by_h = results["by_horizon"]
    lo, hi = str(min(hs)), str(max(hs))
    kl_lo, kl_hi = by_h[lo]["kl_median"][-1], by_h[hi]["kl_median"][-1]
    cov_lo, cov_hi = by_h[lo]["cov_16_median"][-1], by_h[hi]["cov_16_median"][-1]
    grow = "grew" if kl_hi > kl_lo else "did not grow"
    text = (
        f"Each model trained on {gc.describe_training_data(results['training_data'])}; "
        f"median over seeds {', '.join(map(str, results['seeds']))}. "
        f"At the end of training, the median KL was {kl_lo:.3g} nats at H = {lo} and "
        f"{kl_hi:.3g} nats at H = {hi}: KL {grow} with the horizon "
        f"(ratio {kl_hi / kl_lo if kl_lo > 0 else math.inf:.3g} for a horizon ratio "
        f"{int(hi) / int(lo):.3g}). Cov_16 was {cov_lo:.3g} and {cov_hi:.3g}. "
        f"Class 1 reached KL {by_h[lo]['per_class']['1']['kl']:.3g} / "
        f"{by_h[hi]['per_class']['1']['kl']:.3g} with greedy accuracy "
        f"{by_h[lo]['per_class']['1']['accuracy']:.3g} / "
        f"{by_h[hi]['per_class']['1']['accuracy']:.3g}; class 2 kept KL "
        f"{by_h[lo]['per_class']['2']['kl']:.3g} / {by_h[hi]['per_class']['2']['kl']:.3g} "
        f"(a model at 1/2 per decision would have (H/2) ln 2 = "
        f"{int(lo) / 2 * math.log(2):.3g} / {int(hi) / 2 * math.log(2):.3g}).\n\n"
    )
    return text + gc.effect_verdict(
        checks,
        "The run shows the paper's point: the rare hard classes stay unlearned and "
        "contribute KL that scales with H, while the fraction of prompts the model "
        "misses by a factor of 16 or more does not depend on H.",
    )


def write_report(results: dict[str, Any], config: dict[str, Any], out_dir: Path) -> Path:
    """Write figure2.png and report.html (figure, reading, checks, per-H table, config)."""
    from lmcoverage.report import Section, Table
    from lmcoverage.report import write_report as write_html

    figure = plot(results, out_dir / "figure2.png", gc.kl_axis(config))
    checks = effect_checks(results)
    table = Table(summary(results), caption="End of training, median over seeds")
    sections = [
        Section("Reading", reading(results, checks), figures=[figure]),
        Section("Key numbers", tables=[table, Table(checks, caption="Effect checks")]),
    ]
    sections.append(Section("Notes: how the preset was sized", gc.SIZING_NOTE))
    return write_html(out_dir / "report.html", TITLE, sections, config=config)


# --------------------------------------------------------------------------------------------
# the experiment


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Train every (H, seed), score, aggregate; write results.json, figure2.png, report."""
    out_dir = Path(out_dir)
    gc.kl_axis(config)
    horizons = [int(h) for h in config["horizons"]]
    units = [Unit(h, s, config, str(out_dir / "units" / f"h{h}-seed{s}"),
                  ctx.progress and ctx.executor.name == "local", ctx.threads)
             for h in horizons for s in ctx.seeds]
    todo = [u for u in units if not (Path(u.unit_dir) / "metrics.json").is_file()]
    ctx.executor.map(run_unit, todo)
    # Read every unit back from disk, so fresh and cached units go through the same JSON.
    per_unit = {(u.horizon, u.seed): json.loads((Path(u.unit_dir) / "metrics.json").read_text())
                for u in units}
    iterations = per_unit[(horizons[0], ctx.seeds[0])]["iterations"]
    results = aggregate(horizons, iterations, per_unit)
    results["training_data"] = training_data(config)
    results["node_range"] = node_range(config)
    # The numbers are reproducible at a fixed thread count, library build and CPU kernel set
    # only: each unit's (None: a unit cached before they were recorded).
    for key in ("threads", "environment"):
        results[key] = {Path(u.unit_dir).name: per_unit[(u.horizon, u.seed)].get(key)
                        for u in units}
    results["effect_checks"] = effect_checks(results)
    results["config"] = config
    atomic_write_json(out_dir / "results.json", results)
    write_report(results, config, out_dir)
    return results
