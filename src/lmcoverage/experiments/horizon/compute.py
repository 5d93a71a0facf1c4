"""horizon: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmcoverage.experiments.horizon.checks import effect_checks
from lmcoverage.experiments.horizon.presets import validate
from lmcoverage.experiments.horizon.report import plot_figures, write_html
from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import (
    UnitFn,
    checks_to_json,
    finish_run,
    make_rng,
    run_units,
)
from lmcoverage.metrics import coverage_mass
from lmcoverage.models.linear import fit_mle
from lmcoverage.tasks.linear import CountEnumeration, IIDInstance, pivotal_instance, prop32_instance


def prop32_mle(inst: IIDInstance, x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Closed-form MLE on Prop 3.2's instance, per replicate.

    Args:
        x: (R, n) prompts. counts: (R, n, 2) token counts (ids 0 = -1, 1 = +1).

    Returns:
        (R,) theta_hat = clip(atanh(mean token on prompt 1) / scale, Theta); 0 when prompt 1
        is never seen (the likelihood is then flat; 0 is the minimum-norm maximiser).
    """
    scale = float(inst.features[1, 1, 0])
    on1 = (x == 1)[..., None] * counts  # (R, n, 2)
    plus, minus = on1[..., 1].sum(1), on1[..., 0].sum(1)
    total = plus + minus
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(total > 0, (plus - minus) / np.maximum(total, 1), 0.0)
        theta = np.arctanh(mean) / scale
    return np.clip(theta, -inst.radius, inst.radius)


def run_prop32(config: dict[str, Any], horizon: int, rng: np.random.Generator) -> dict[str, Any]:
    """Replicated MLEs at one H: exact KL (R,) and Cov_N (R, len(ns))."""
    inst = prop32_instance(int(config["n"]), theta_star=float(config["theta_star"]))
    reps, n = int(config["replicates"]), int(config["n"])
    x, counts = inst.sample_counts(horizon, (reps, n), rng)
    theta = torch.from_numpy(prop32_mle(inst, x, counts))[:, None]
    enum = CountEnumeration(inst, horizon, min_prob=0.0)
    return {
        "theta": theta[:, 0].numpy(),
        "kl": inst.kl(theta, horizon).numpy(),
        "cov": enum.coverage(theta, config["coverage_ns"]),
        "seen": (x == 1).any(1),
    }


def run_rich(
    config: dict[str, Any], family: str, horizon: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Replicated library MLEs on a fresh pivotal instance per replicate at one H."""
    pivotal = int(config["rich_pivotal"]) if family == "pivotal" else None
    kl, cov, sigma2, gap = [], [], [], []
    for _ in range(int(config["rich_replicates"])):
        inst = pivotal_instance(horizon, pivotal, rng)
        x, y = inst.sample(int(config["rich_n"]), rng)
        fit = fit_mle(inst.model(), torch.from_numpy(x), torch.from_numpy(y), tol=1e-8)
        xt, yt = inst.sample(int(config["rich_mc_samples"]), rng)
        ratio = inst.log_ratios(fit.theta[None], xt, yt).numpy()  # (1, samples)
        weights = np.full(ratio.shape[1], 1.0 / ratio.shape[1])
        cov.append(coverage_mass(ratio, weights, config["coverage_ns"])[0])
        kl.append(float(inst.kl(fit.theta)))
        sigma2.append(inst.inherent_variance())
        gap.append(fit.gap)
    return {"kl": np.array(kl), "cov": np.array(cov), "sigma2": np.array(sigma2),
            "gap": np.array(gap)}


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Both parts; one cached unit per (part, H); results.json, figures, report.html."""
    validate(config)
    horizons = [int(h) for h in config["horizons"]]
    rich_h = [int(h) for h in config["rich_horizons"]]
    families = ("pivotal", "dense")
    jobs: dict[str, UnitFn] = {
        f"prop32_H{h}": partial(run_prop32, config, h, make_rng(ctx.seeds, 1, h))
        for h in horizons
    }
    jobs.update({
        f"rich_{fam}_H{h}": partial(run_rich, config, fam, h, make_rng(ctx.seeds, 2, i, h))
        for i, fam in enumerate(families) for h in rich_h
    })
    done = run_units(out_dir, jobs, ctx.executor, ctx.progress)
    part1 = {h: done[f"prop32_H{h}"] for h in horizons}
    part2 = {(fam, h): done[f"rich_{fam}_H{h}"] for fam in families for h in rich_h}
    n = int(config["n"])
    prop = {
        "mean_kl": [float(part1[h]["kl"].mean()) for h in horizons],
        "kl_times_n_over_H": [float(part1[h]["kl"].mean() * n / h) for h in horizons],
        "frac_kl_ge_H_over_8n": [float((part1[h]["kl"] >= h / (8 * n)).mean()) for h in horizons],
        # Eq. 6's constant 1/4: the erratum (docs/experiments/theory.md)
        "frac_kl_ge_H_over_4n": [float((part1[h]["kl"] >= h / (4 * n)).mean()) for h in horizons],
        "unseen_kl_times_n_over_H": [
            float(part1[h]["kl"][~part1[h]["seen"]].mean() * n / h)
            if (~part1[h]["seen"]).any() else float("nan") for h in horizons],
        # Cov_N on prompt 1 among the replicates whose sample contains prompt 1
        "cond_cov_seen": [
            (part1[h]["cov"][part1[h]["seen"]].mean(0) * 2 * n).tolist()
            if part1[h]["seen"].any() else [float("nan")] * len(config["coverage_ns"])
            for h in horizons],
        "mean_cov": [part1[h]["cov"].mean(0).tolist() for h in horizons],
        "frac_prompt1_unseen": float(1 - part1[horizons[0]]["seen"].mean()),
    }
    rich = {
        fam: {
            "sigma2": [float(part2[fam, h]["sigma2"].mean()) for h in rich_h],
            "mean_kl": [float(part2[fam, h]["kl"].mean()) for h in rich_h],
            "mean_cov": [part2[fam, h]["cov"].mean(0).tolist() for h in rich_h],
            "max_mle_gap": max(float(part2[fam, h]["gap"].max()) for h in rich_h),
        }
        for fam in families
    }
    checks = effect_checks(prop, rich, horizons, rich_h, n, config["coverage_ns"])
    results: dict[str, Any] = {
        "n": n,
        "horizons": horizons,
        "coverage_ns": config["coverage_ns"],
        "prop32": prop,
        "rich_horizons": rich_h,
        "rich": rich,
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
