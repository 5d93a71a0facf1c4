"""Horizon dependence: the MLE's KL grows with H, its coverage does not (Prop 3.2, Thm 4.1-4.2).

Part 1, Prop 3.2's instance (:func:`lmcoverage.tasks.linear.prop32_instance`): d = 1,
X = {0, 1}, V = {-1, +1}, mu(1) = 1/(2n), phi(1, y_1:h) = y_h, Theta = [-1, 1]. With constant
probability the n samples never show prompt 1, the MLE stays at 0 there, and the KL is
mu(1) * H * KL_token: linear in H. Coverage only counts the prompt-1 mass, at most 1/(2n), for
every H. The MLE is exact in closed form (tanh(theta) = mean token on prompt 1, clipped to
Theta); KL and Cov_N are exact (token-count enumeration).

Part 2, a random feature map with few pivotal tokens (:func:`lmcoverage.tasks.linear.
pivotal_instance`): per position its own coordinate; at pivotal positions the token is random,
elsewhere deterministic. Two families at each H: ``pivotal`` (a fixed number of pivotal
positions, sigma_star^2 constant in H) and ``dense`` (every position pivotal, sigma_star^2
linear in H). The MLE is the library's :func:`lmcoverage.models.linear.fit_mle`; KL and
sigma_star^2 are exact, Cov_N is Monte Carlo. Thm 4.2 predicts Cov_N(MLE) tracks sigma_star^2,
not H: flat for the pivotal family, growing for the dense one.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import (
    Check,
    UnitFn,
    check_rows,
    check_section,
    checks_to_json,
    finish_run,
    make_rng,
    run_units,
)
from lmcoverage.metrics import coverage_mass
from lmcoverage.models.linear import fit_mle
from lmcoverage.report import Section, Table, write_report
from lmcoverage.report.figures import new_figure, save_figure
from lmcoverage.tasks.linear import CountEnumeration, IIDInstance, pivotal_instance, prop32_instance

TITLE = "KL grows with H, coverage does not (Prop 3.2, Thm 4.2)"

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


def _validate(config: dict[str, Any]) -> None:
    for key in ("n", "replicates", "rich_n", "rich_replicates"):
        if int(config[key]) < 1:
            raise ValueError(f"{key}: must be >= 1, got {config[key]}")
    if int(config["rich_mc_samples"]) < 2:
        raise ValueError(f"rich_mc_samples: must be >= 2, got {config['rich_mc_samples']}")
    for key in ("horizons", "rich_horizons"):
        if not config[key] or min(config[key]) < 1:
            raise ValueError(f"{key}: H must be >= 1, got {config[key]}")
    if min(config["coverage_ns"]) < 2:
        raise ValueError(f"coverage_ns: N must be >= 2, got {config['coverage_ns']}")
    if not -1.0 <= float(config["theta_star"]) <= 1.0:
        raise ValueError(f"theta_star: must lie in Theta = [-1, 1], got {config['theta_star']}")
    if not 0 <= int(config["rich_pivotal"]) <= min(config["rich_horizons"]):
        raise ValueError(f"rich_pivotal: must be in [0, min(rich_horizons)], got "
                         f"{config['rich_pivotal']}")


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Both parts; one cached unit per (part, H); results.json, figures, report.html."""
    _validate(config)
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
    checks = _checks(prop, rich, horizons, rich_h, n, config["coverage_ns"])
    results: dict[str, Any] = {
        "n": n,
        "horizons": horizons,
        "coverage_ns": config["coverage_ns"],
        "prop32": prop,
        "rich_horizons": rich_h,
        "rich": rich,
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, _plot, _report)


def _slope(xs: list[int], ys: list[float]) -> float:
    return float(np.polyfit(np.log(xs), np.log(np.maximum(ys, 1e-300)), 1)[0])


def _checks(
    prop: dict[str, Any], rich: dict[str, Any], horizons: list[int], rich_h: list[int], n: int,
    ns: list[float],
) -> list[Check]:
    kl_slope = _slope(horizons, prop["mean_kl"])
    cov_first = [c[0] for c in prop["mean_cov"]]
    ceiling = 1.0 / (2 * n)
    big = [h for h in horizons if h >= horizons[-1] / 4]
    cov_growth = cov_first[-1] / max(cov_first[horizons.index(big[0])], 1e-300)
    kl_growth = prop["mean_kl"][-1] / prop["mean_kl"][horizons.index(big[0])]
    piv = [c[0] for c in rich["pivotal"]["mean_cov"]]
    dense = [c[0] for c in rich["dense"]["mean_cov"]]
    sig_p, sig_d = rich["pivotal"]["sigma2"], rich["dense"]["sigma2"]
    return [
        Check(
            "Prop 3.2: E[KL(MLE)] grows linearly in H (log-log slope ~ 1)",
            f"slope {kl_slope:.3f}; KL * n / H = "
            + ", ".join(f"{v:.3f}" for v in prop["kl_times_n_over_H"]),
            0.9 <= kl_slope <= 1.1,
        ),
        Check(
            "Prop 3.2: KL >= c H/n with constant probability (here c = 1/8, prob >= 1/4)",
            "P[KL >= H/(8n)] per H: " + ", ".join(f"{v:.2f}" for v in prop["frac_kl_ge_H_over_8n"]),
            min(prop["frac_kl_ge_H_over_8n"]) >= 0.25,
        ),
        Check(
            f"Cov_{ns[0]:g}(MLE) stays below mu(prompt 1) = 1/(2n) = {ceiling:.3g} at every H",
            "E[Cov] per H: " + ", ".join(f"{v:.4f}" for v in cov_first),
            max(cov_first) <= ceiling + 1e-12,
        ),
        Check(
            f"from H={big[0]} to H={horizons[-1]} KL keeps growing while Cov_{ns[0]:g} does not",
            f"KL x{kl_growth:.2f}, Cov x{cov_growth:.2f}",
            kl_growth >= 0.75 * horizons[-1] / big[0] and cov_growth <= 1.1,
        ),
        Check(
            "Thm 4.2: with a fixed number of pivotal tokens, sigma_star^2 and Cov_N(MLE) stay "
            "flat in H",
            f"sigma_star^2 {min(sig_p):.2f}..{max(sig_p):.2f}; Cov_{ns[0]:g} "
            + ", ".join(f"{v:.3f}" for v in piv),
            max(piv) - min(piv) <= 0.05,
        ),
        Check(
            "Thm 4.2: when every token is pivotal (sigma_star^2 ~ H), Cov_N(MLE) grows with H "
            "and exceeds the pivotal family's at the largest H",
            f"sigma_star^2 {sig_d[0]:.2f} -> {sig_d[-1]:.2f}; Cov_{ns[0]:g} "
            + ", ".join(f"{v:.3f}" for v in dense),
            dense[-1] >= dense[0] + 0.05 and dense[-1] >= piv[-1] + 0.05,
        ),
    ]


def _plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    hs = results["horizons"]
    prop = results["prop32"]
    n = results["n"]
    ns = results["coverage_ns"]
    fig, axes = new_figure(ncols=2)
    ax = axes[0, 0]
    ax.plot(hs, prop["mean_kl"], "o-", label="E[KL(MLE)]")
    ax.plot(hs, [h / (8 * n) for h in hs], "k--", lw=1, label="H / (8n)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("H")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"Prop 3.2 instance, n = {n}: KL grows with H")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for j, nc in enumerate(ns):
        ax.plot(hs, [c[j] for c in prop["mean_cov"]], "o-", label=f"E[Cov_{nc:g}(MLE)]")
    ax.axhline(1 / (2 * n), color="k", ls="--", lw=1, label="mu(prompt 1) = 1/(2n)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("H")
    ax.set_ylabel("coverage")
    ax.set_title("coverage is capped by 1/(2n)")
    ax.legend(fontsize=8)
    paths = [save_figure(fig, out_dir / "prop32.png")]

    rh = results["rich_horizons"]
    fig, axes = new_figure(ncols=3, width=4.0)
    for fam, style in (("pivotal", "o-"), ("dense", "s--")):
        r = results["rich"][fam]
        axes[0, 0].plot(rh, [c[0] for c in r["mean_cov"]], style, label=fam)
        axes[0, 1].plot(rh, r["mean_kl"], style, label=fam)
        axes[0, 2].plot(r["sigma2"], [c[0] for c in r["mean_cov"]], style, label=fam)
    axes[0, 0].set_ylabel(f"E[Cov_{ns[0]:g}(MLE)]")
    axes[0, 1].set_ylabel("E[KL(MLE)]")
    axes[0, 1].set_yscale("log")
    axes[0, 2].set_xscale("log")
    axes[0, 2].set_xlabel("sigma_star^2 (Eq. 8)")
    axes[0, 2].set_ylabel(f"E[Cov_{ns[0]:g}(MLE)]")
    for ax in axes[0, :2]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("H")
    axes[0, 0].set_title("coverage vs H")
    axes[0, 1].set_title("KL vs H")
    axes[0, 2].set_title("coverage tracks sigma_star^2")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    paths.append(save_figure(fig, out_dir / "pivotal.png"))
    return paths


def _report(
    results: dict[str, Any], figures: list[Path], checks: list[Check], config: dict[str, Any],
    out_dir: Path,
) -> None:
    prop = results["prop32"]
    rows1 = [
        {"H": h, "E[KL]": prop["mean_kl"][i], "KL n/H": prop["kl_times_n_over_H"][i],
         **{f"E[Cov_{nc:g}]": prop["mean_cov"][i][j]
            for j, nc in enumerate(results["coverage_ns"])}}
        for i, h in enumerate(results["horizons"])
    ]
    rows2 = [
        {"family": fam, "H": h, "sigma_star^2": r["sigma2"][i], "E[KL]": r["mean_kl"][i],
         **{f"E[Cov_{nc:g}]": r["mean_cov"][i][j]
            for j, nc in enumerate(results["coverage_ns"])}}
        for fam, r in results["rich"].items() for i, h in enumerate(results["rich_horizons"])
    ]
    gap = max(r["max_mle_gap"] for r in results["rich"].values())
    sections = [
        check_section(checks, "Prop 3.2 (KL grows with H) and Thm 4.1-4.2 (coverage does not; "
                      "it tracks sigma_star^2)"),
        Section(
            "Part 1: Prop 3.2's instance",
            f"n = {results['n']} samples, mu(prompt 1) = 1/(2n), theta_star = "
            f"{config['theta_star']}, {config['replicates']} replicates per H. Prompt 1 was "
            f"never sampled in {prop['frac_prompt1_unseen']:.1%} of the replicates; there the "
            "MLE stays at 0 and pays KL_token on every one of the H tokens. KL and Cov_N exact.",
            figures=figures[:1],
            tables=[Table(rows1)],
        ),
        Section(
            "Part 2: few pivotal tokens (Thm 4.2)",
            f"Random feature maps with d = 1 + H, {config['rich_n']} training sequences, "
            f"{config['rich_replicates']} instances per (family, H). 'pivotal': the first "
            f"{config['rich_pivotal']} tokens random, the rest deterministic; 'dense': every "
            "token random. MLE by the library's fit_mle (largest duality gap "
            f"{gap:.1e}); KL and sigma_star^2 exact; Cov_N from {config['rich_mc_samples']} "
            "fresh samples per instance.",
            figures=figures[1:],
            tables=[Table(rows2)],
        ),
    ]
    write_report(out_dir / "report.html", TITLE, sections, config)


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check."""
    return check_rows(results)
