"""Sec. 3 case study: the Bernoulli MLE has infinite KL with positive probability, yet Cov_N
for N >= 2 is O(log(1/delta)/n) with probability 1 - delta.

pi_D = Ber(p*), the estimator is the empirical frequency p_hat = k/n. For each sample size n
and each p* family (fixed p*, and the rare-event family p* = c/n), ``reps`` independent
estimates are drawn from the run's seeds; their KL and Cov_N are exact (two outcomes). The
exact law of p_hat (Binomial) gives P[KL = inf] = (1-p*)^n + p*^n to compare with, and the
worst case over a grid of p* of the (1 - delta)-quantile of Cov_N, whose product with
n / log(1/delta) (the constant C) must stay bounded as n grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import (
    Check,
    check_rows,
    check_section,
    checks_to_json,
    finish_run,
    make_rng,
)
from lmcoverage.metrics import binomial_interval
from lmcoverage.report import Section, Table, write_report
from lmcoverage.report.figures import new_figure, save_figure
from lmcoverage.tasks.bernoulli import (
    bernoulli_coverage,
    bernoulli_kl,
    mle_law,
    sample_mle,
    upper_quantile,
)

TITLE = "Bernoulli case study (Sec. 3): infinite KL, small coverage"

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
    },
}


def _validate(config: dict[str, Any]) -> None:
    if not 0.0 < config["delta"] < 1.0:
        raise ValueError(f"delta: must be in (0, 1), got {config['delta']}")
    if min(config["coverage_ns"]) < 2:
        raise ValueError(f"coverage_ns: the claim is for N >= 2, got {config['coverage_ns']}")
    if min(config["sample_sizes"]) < 1:
        raise ValueError(f"sample_sizes: must be >= 1, got {config['sample_sizes']}")
    if config["reps"] < 1:
        raise ValueError(f"reps: must be >= 1, got {config['reps']}")
    if not 0.0 < config["rare_c"] < min(config["sample_sizes"]):
        raise ValueError(f"rare_c: p* = rare_c / n must be in (0, 1), got {config['rare_c']}")
    if not 0.0 < config["p_grid_min"] < 0.5:
        raise ValueError(f"p_grid_min: must be in (0, 0.5), got {config['p_grid_min']}")


def worst_case_quantile(
    n: int, p_grid: np.ndarray, ns: list[float], level: float
) -> np.ndarray:
    """max over p* in ``p_grid`` of the exact ``level``-quantile of Cov_N(MLE): shape (len(ns),)."""
    best = np.zeros(len(ns))
    for p in p_grid:
        q, pmf = mle_law(float(p), n)
        cov = bernoulli_coverage(p, q, ns)  # (n + 1, len(ns))
        quant = [upper_quantile(cov[:, j], pmf, level) for j in range(len(ns))]
        best = np.maximum(best, quant)
    return best


def _family(name: str, config: dict[str, Any]) -> list[float]:
    """p* for every sample size: fixed, or c/n for the rare family."""
    if name == "rare":
        return [config["rare_c"] / n for n in config["sample_sizes"]]
    return [float(name)] * len(config["sample_sizes"])


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Simulate, compute the exact laws, write results.json, figures and report.html."""
    _validate(config)
    ns = [float(n) for n in config["coverage_ns"]]
    sizes = [int(n) for n in config["sample_sizes"]]
    delta = float(config["delta"])
    level = 1.0 - delta
    families = [str(p) for p in config["p_fixed"]] + ["rare"]

    mc: dict[str, dict[str, list[Any]]] = {}
    for fi, fam in enumerate(families):
        rows: dict[str, list[Any]] = {k: [] for k in (
            "p_star", "frac_inf", "frac_inf_lo", "frac_inf_hi", "exact_frac_inf", "mean_kl",
            "median_kl", "quantile_kl", "mean_cov", "quantile_cov", "exact_quantile_cov")}
        for ni, (n, p) in enumerate(zip(sizes, _family(fam, config), strict=True)):
            rng = make_rng(ctx.seeds, fi, ni)
            p_hat = sample_mle(p, n, int(config["reps"]), rng)
            kl = bernoulli_kl(p, p_hat)
            cov = bernoulli_coverage(p, p_hat, ns)  # (reps, len(ns))
            frac = float(np.mean(np.isinf(kl)))
            lo, hi = binomial_interval(frac, float(config["reps"]), confidence=0.999)
            q_law, pmf = mle_law(p, n)
            cov_law = bernoulli_coverage(p, q_law, ns)
            rows["p_star"].append(p)
            rows["frac_inf"].append(frac)
            rows["frac_inf_lo"].append(float(lo))
            rows["frac_inf_hi"].append(float(hi))
            rows["exact_frac_inf"].append((1 - p) ** n + p**n)
            rows["mean_kl"].append(float(np.mean(kl)))
            rows["median_kl"].append(float(np.quantile(kl, 0.5, method="inverted_cdf")))
            rows["quantile_kl"].append(float(np.quantile(kl, level, method="inverted_cdf")))
            rows["mean_cov"].append(cov.mean(axis=0).tolist())
            rows["quantile_cov"].append(
                np.quantile(cov, level, axis=0, method="inverted_cdf").tolist())
            rows["exact_quantile_cov"].append(
                [upper_quantile(cov_law[:, j], pmf, level) for j in range(len(ns))])
        mc[fam] = rows

    p_grid = np.geomspace(config["p_grid_min"], 0.5, int(config["p_grid_size"]))
    worst = np.array([worst_case_quantile(n, p_grid, ns, level) for n in sizes])  # (sizes, ns)
    c_hat = worst * np.array(sizes)[:, None] / np.log(1.0 / delta)
    slopes = [
        float(np.polyfit(np.log(sizes), np.log(np.maximum(worst[:, j], 1e-300)), 1)[0])
        for j in range(len(ns))
    ]

    checks = _checks(mc, families, sizes, ns, c_hat, slopes, delta)
    results: dict[str, Any] = {
        "sample_sizes": sizes,
        "coverage_ns": ns,
        "delta": delta,
        "families": families,
        "monte_carlo": mc,
        "worst_case_quantile_cov": worst.tolist(),
        "C_hat": c_hat.tolist(),
        "loglog_slope_worst_quantile": slopes,
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, _plot, _report)


def _checks(
    mc: dict[str, dict[str, list[Any]]],
    families: list[str],
    sizes: list[int],
    ns: list[float],
    c_hat: np.ndarray,
    slopes: list[float],
    delta: float,
) -> list[Check]:
    rare = mc["rare"]
    agree = all(
        lo <= ex <= hi
        for fam in families
        for lo, ex, hi in zip(mc[fam]["frac_inf_lo"], mc[fam]["exact_frac_inf"],
                              mc[fam]["frac_inf_hi"], strict=True)
    )
    quant_ok = all(
        q <= c * np.log(1 / delta) / n + 1e-12
        for fam in families
        for n, qs in zip(sizes, mc[fam]["quantile_cov"], strict=True)
        for q, c in zip(qs, c_hat.max(axis=0), strict=True)
    )
    ratio = c_hat.max(axis=0) / np.maximum(c_hat.min(axis=0), 1e-300)
    return [
        Check(
            "KL of the MLE is infinite with positive probability at every n "
            "(p* = c/n: about exp(-c))",
            "fraction of seeds with KL = inf, p* = c/n: "
            + ", ".join(f"n={n}: {f:.3f}" for n, f in zip(sizes, rare["frac_inf"], strict=True)),
            min(rare["frac_inf"]) > 0.0,
        ),
        Check(
            "Monte Carlo P[KL = inf] agrees with the exact (1-p*)^n + p*^n",
            "inside the 99.9% Wilson interval at every (p*, n)" if agree
            else "outside the interval somewhere",
            agree,
        ),
        Check(
            "E[KL] = inf, so the KL-based bound (Prop 3.1) says nothing",
            "mean KL over seeds, p* = c/n: "
            + ", ".join(f"{k:g}" for k in rare["mean_kl"]),
            all(np.isinf(rare["mean_kl"])),
        ),
        Check(
            f"Cov_N (N >= 2) <= C log(1/delta)/n w.p. 1 - delta (delta={delta}), "
            "C independent of n and p*",
            "worst-case C_hat over p* and n: "
            + ", ".join(f"N={n:g}: {c:.3g}" for n, c in zip(ns, c_hat.max(axis=0), strict=True))
            + "; max/min of C_hat across n: "
            + ", ".join(f"{r:.2f}" for r in ratio),
            bool(np.all(ratio <= 3.0)),
        ),
        Check(
            "the worst-case (1-delta)-quantile of Cov_N falls like 1/n",
            "log-log slope against n: " + ", ".join(
                f"N={n:g}: {s:.2f}" for n, s in zip(ns, slopes, strict=True)),
            all(-1.2 <= s <= -0.8 for s in slopes),
        ),
        Check(
            "every simulated family's (1-delta)-quantile of Cov_N is below C_hat log(1/delta)/n",
            "holds at every (p*, n, N)" if quant_ok else "violated somewhere",
            quant_ok,
        ),
    ]


def _plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    sizes = np.array(results["sample_sizes"])
    ns = results["coverage_ns"]
    mc = results["monte_carlo"]
    delta = results["delta"]
    label = {f: "p* = c/n" if f == "rare" else f"p* = {f}" for f in results["families"]}

    fig, axes = new_figure(ncols=3)
    ax = axes[0, 0]
    for fam in results["families"]:
        r = mc[fam]
        frac = np.array(r["frac_inf"])
        seen = frac > 0
        line = ax.plot(sizes, np.maximum(r["exact_frac_inf"], 1e-300), "-", lw=1,
                       label=f"{label[fam]} (exact)")
        ax.plot(sizes[seen], frac[seen], "o", ms=4, color=line[0].get_color(),
                label=f"{label[fam]} (seeds)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.5)
    ax.set_xlabel("n (samples)")
    ax.set_ylabel("P[KL(MLE) = inf]")
    ax.set_title("KL is infinite with positive probability")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for fam in results["families"]:
        ax.plot(sizes, mc[fam]["median_kl"], "o-", ms=4, label=f"median KL, {label[fam]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (samples)")
    ax.set_ylabel("KL (nats)")
    ax.set_title("mean KL = inf at every n (not plottable)")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    worst = np.array(results["worst_case_quantile_cov"])
    c_max = np.array(results["C_hat"]).max(axis=0)
    for j, n_cov in enumerate(ns):
        line = ax.plot(sizes, np.maximum(worst[:, j], 1e-6), "o-", ms=4,
                       label=f"N={n_cov:g}: worst over p*")
        ax.plot(sizes, c_max[j] * np.log(1 / delta) / sizes, "--", color=line[0].get_color(),
                lw=1, label=f"C log(1/delta)/n, C={c_max[j]:.2g}")
    rare_q = np.array(mc["rare"]["quantile_cov"])
    ax.plot(sizes, np.maximum(rare_q[:, 0], 1e-6), "k^", ms=5, label=f"N={ns[0]:g}, p* = c/n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (samples)")
    ax.set_ylabel(f"{1 - delta:g}-quantile of Cov_N(MLE)")
    ax.set_title("coverage falls like log(1/delta)/n")
    ax.legend(fontsize=7)
    path = save_figure(fig, out_dir / "bernoulli.png")
    return [path]


def _report(
    results: dict[str, Any], figures: list[Path], checks: list[Check], config: dict[str, Any],
    out_dir: Path,
) -> None:
    sizes = results["sample_sizes"]
    rows = []
    for fam in results["families"]:
        r = results["monte_carlo"][fam]
        for i, n in enumerate(sizes):
            rows.append({
                "p*": f"{r['p_star'][i]:.3g}", "n": n,
                "P[KL=inf] (MC)": r["frac_inf"][i], "P[KL=inf] (exact)": r["exact_frac_inf"][i],
                "mean KL": r["mean_kl"][i], "median KL": r["median_kl"][i],
                **{f"q Cov_{n_cov:g}": r["quantile_cov"][i][j]
                   for j, n_cov in enumerate(results["coverage_ns"])},
            })
    sections = [
        check_section(checks, "the Sec. 3 case study (E[KL] = inf, Cov_N = O(log(1/delta)/n))"),
        Section(
            "Set-up",
            "pi_D = Ber(p*); the estimator is the MLE p_hat = k/n from n samples. KL and Cov_N "
            "of Ber(p_hat) are exact (two outcomes). For each p* family and n, "
            f"{config['reps']} independent estimates are drawn; the exact Binomial law of "
            "p_hat gives the reference values. The worst case over "
            f"{config['p_grid_size']} values of p* in [{config['p_grid_min']:g}, 0.5] of the "
            f"{1 - results['delta']:g}-quantile of Cov_N defines C_hat(n) = n * quantile / "
            "log(1/delta); the theory predicts it stays bounded as n grows.",
            figures=figures,
            tables=[Table(rows, caption="Per family and n (q = upper quantile over seeds)")],
        ),
    ]
    write_report(out_dir / "report.html", TITLE, sections, config)


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check: claim, measurement, holds."""
    return check_rows(results)
