"""bernoulli: Figures and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.experiments.bernoulli.presets import TITLE
from lmcoverage.experiments.theory_common import Check, check_section
from lmcoverage.report import Section, Table, write_report
from lmcoverage.report.figures import new_figure, save_figure


def plot_figures(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the figures into ``out_dir``; return their paths."""
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


def write_html(
    results: dict[str, Any], figures: list[Path], checks: list[Check], config: dict[str, Any],
    out_dir: Path,
) -> None:
    """Write report.html: the verdict, the set-up with figures and tables."""
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
            "pi_D = Ber(p*); the estimator is the MLE over Sec. 3's class {Ber(p): p < 1/2}, "
            "p_hat = min(k/n, 1/2), from n samples. KL and Cov_N "
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
