"""bernoulli: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.experiments.bernoulli.checks import effect_checks
from lmcoverage.experiments.bernoulli.presets import validate
from lmcoverage.experiments.bernoulli.report import plot_figures, write_html
from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import checks_to_json, finish_run, make_rng
from lmcoverage.metrics import binomial_interval
from lmcoverage.tasks.bernoulli import (
    bernoulli_coverage,
    bernoulli_kl,
    mle_law,
    sample_mle,
    upper_quantile,
)

P_MAX = 0.5  # Sec. 3's class: Pi = {Ber(p)}, p in (0, 1/2)


def restricted_mle(frequency: np.ndarray) -> np.ndarray:
    """The MLE over Sec. 3's class {Ber(p): p in (0, 1/2)} (closure [0, 1/2]): min(k/n, 1/2).

    The log-likelihood k log p + (n-k) log(1-p) is unimodal with its peak at k/n, so the
    constrained maximiser is k/n clipped to the class; k = 0 gives Ber(0) (the supremum).
    """
    return np.minimum(frequency, P_MAX)


def restricted_law(p_star: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact law of :func:`restricted_mle` from n samples: (values, Binomial probabilities)."""
    q, pmf = mle_law(p_star, n)
    return restricted_mle(q), pmf


def worst_case_quantile(
    n: int, p_grid: np.ndarray, ns: list[float], level: float
) -> np.ndarray:
    """max over p* in ``p_grid`` of the exact ``level``-quantile of Cov_N(MLE): shape (len(ns),)."""
    best = np.zeros(len(ns))
    for p in p_grid:
        q, pmf = restricted_law(float(p), n)
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
    validate(config)
    ns = [float(n) for n in config["coverage_ns"]]
    sizes = [int(n) for n in config["sample_sizes"]]
    delta = float(config["delta"])
    level = 1.0 - delta
    families = [str(p) for p in config["p_fixed"]] + ["rare"]

    mc: dict[str, dict[str, list[Any]]] = {}
    for fi, fam in enumerate(families):
        rows: dict[str, list[Any]] = {k: [] for k in (
            "p_star", "frac_inf", "frac_inf_lo", "frac_inf_hi", "exact_frac_inf", "mean_kl",
            "median_kl", "quantile_kl", "mean_cov", "quantile_cov", "exact_quantile_cov",
            "frac_cov2_zero", "case1")}
        for ni, (n, p) in enumerate(zip(sizes, _family(fam, config), strict=True)):
            rng = make_rng(ctx.seeds, fi, ni)
            p_hat = restricted_mle(sample_mle(p, n, int(config["reps"]), rng))
            kl = bernoulli_kl(p, p_hat)
            cov = bernoulli_coverage(p, p_hat, ns)  # (reps, len(ns))
            frac = float(np.mean(np.isinf(kl)))
            lo, hi = binomial_interval(frac, float(config["reps"]), confidence=0.999)
            q_law, pmf = restricted_law(p, n)
            cov_law = bernoulli_coverage(p, q_law, ns)
            rows["p_star"].append(p)
            rows["frac_inf"].append(frac)
            rows["frac_inf_lo"].append(float(lo))
            rows["frac_inf_hi"].append(float(hi))
            rows["exact_frac_inf"].append((1 - p) ** n)  # k = 0; k/n = 1 is outside the class
            rows["mean_kl"].append(float(np.mean(kl)))
            rows["median_kl"].append(float(np.quantile(kl, 0.5, method="inverted_cdf")))
            rows["quantile_kl"].append(float(np.quantile(kl, level, method="inverted_cdf")))
            rows["mean_cov"].append(cov.mean(axis=0).tolist())
            # case 1 of Sec. 3: n >= factor log(1/delta) / p* should give Cov_2 = 0 w.p. 1 - delta
            rows["frac_cov2_zero"].append(
                float(np.mean(bernoulli_coverage(p, p_hat, [2.0])[:, 0] == 0.0)))
            rows["case1"].append(bool(n * p >= config["case1_factor"] * np.log(1.0 / delta)))
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

    # the log(1/delta) dependence: worst-case quantiles at the largest n for several deltas
    big = sizes[-1]
    deltas = [float(d) for d in config["rate_deltas"]]
    by_delta = np.array([worst_case_quantile(big, p_grid, ns, 1.0 - d) for d in deltas])
    c_delta = by_delta * big / np.log(1.0 / np.array(deltas))[:, None]  # (deltas, ns)

    checks = effect_checks(mc, families, sizes, ns, c_hat, slopes, delta, c_delta)
    results: dict[str, Any] = {
        "sample_sizes": sizes,
        "coverage_ns": ns,
        "delta": delta,
        "families": families,
        "monte_carlo": mc,
        "worst_case_quantile_cov": worst.tolist(),
        "C_hat": c_hat.tolist(),
        "loglog_slope_worst_quantile": slopes,
        "rate_deltas": deltas,
        "C_hat_by_delta": c_delta.tolist(),
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
