"""horizon: Figures and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmcoverage.experiments.horizon.presets import TITLE
from lmcoverage.experiments.theory_common import Check, check_section
from lmcoverage.report import Section, Table, write_report
from lmcoverage.report.figures import new_figure, save_figure


def plot_figures(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the figures into ``out_dir``; return their paths."""
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


def write_html(
    results: dict[str, Any], figures: list[Path], checks: list[Check], config: dict[str, Any],
    out_dir: Path,
) -> None:
    """Write report.html: the verdict, the set-up with figures and tables."""
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
            "MLE stays at 0 and pays KL_token on every one of the H tokens: KL = "
            f"{prop['unseen_kl_times_n_over_H'][0]:.4f} H/n, below Eq. 6's H/(4n) (an erratum: "
            "the proof's 2 KL(Ber(e/(e+e^-1)) || Ber(1/2)) >= 1 is 0.656), above H/(8n). "
            "KL and Cov_N exact.",
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
