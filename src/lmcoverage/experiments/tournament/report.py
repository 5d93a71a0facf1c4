"""tournament: Figures and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.experiments.theory_common import Check, check_section
from lmcoverage.experiments.tournament.presets import TITLE


def plot_figures(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Prop E.1, Thm 6.3 and Thm 6.4 figures, in this order."""
    from lmcoverage.report.figures import new_figure, save_figure

    paths: dict[str, Path] = {}
    e1 = results["prop_e1"]
    fig, ax = new_figure(ncols=2)
    pred = np.array([r["prediction"] for r in e1])
    ax[0, 0].loglog(pred, [r["cov_mle"] for r in e1], "o", label="likelihood maximiser")
    grid = np.geomspace(pred.min(), pred.max(), 10)
    ax[0, 0].loglog(grid, grid, "k--", lw=1, label="alpha^2 / (2 log M)")
    ax[0, 0].set_xlabel("alpha^2 / (2 log M)")
    ax[0, 0].set_ylabel(f"exact Cov_{results['config']['e1_n']:g}")
    ax[0, 0].set_title("Prop E.1: the MLE's coverage (the other: 0)")
    ax[0, 0].legend(fontsize=8)
    labels = [f"a={r['alpha']:g},M={r['m']:g}" for r in e1]
    x = np.arange(len(e1))
    ax[0, 1].bar(x - 0.2, [r["tournament_cover_rate"] for r in e1], 0.4, label="tournament")
    ax[0, 1].bar(x + 0.2, [r["ce_cover_rate"] for r in e1], 0.4, label="min cross-entropy")
    ax[0, 1].set_xticks(x, labels, rotation=90, fontsize=6)
    ax[0, 1].set_ylabel("rate of picking 'cover'")
    ax[0, 1].set_ylim(0, 1.25)
    ax[0, 1].legend(fontsize=8, loc="upper center", ncols=2)
    paths["prop_e1"] = save_figure(fig, out_dir / "prop_e1.png")

    a = results["config"]["a"]
    fig, ax = new_figure(ncols=2)
    for col, sweep, xkey, xlabel in ((0, "ns", "n", "N"),
                                     (1, "heldout_sizes", "heldout", "held-out examples n")):
        rows = [r for r in results["thm63"] if r["sweep"] == sweep]
        xs = [r[xkey] for r in rows]
        axis = ax[0, col]
        axis.plot(xs, [r["tournament_median"] for r in rows], "o-", label="tournament, median")
        axis.plot(xs, [r["tournament_q90"] for r in rows], "o:", label="tournament, 90%")
        axis.plot(xs, [r["min_ce_median"] for r in rows], "s-", label="min-CE, median")
        axis.plot(xs, [r["oracle_best"] for r in rows], "k-", lw=1,
                  label="best in class (oracle)")
        axis.plot(xs, [r["bound"] for r in rows], "r--", label="Thm 6.3 bound (constant 1)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("symlog", linthresh=1e-3)
        axis.set_ylim(bottom=0)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(f"exact Cov_(N^{1 + a:g}) of the pick")
        fixed = (f"n = {rows[0]['heldout']}" if sweep == "ns" else f"N = {rows[0]['n']:g}")
        axis.set_title(f"Thm 6.3 ({fixed})")
        axis.legend(fontsize=7)
    paths["thm63"] = save_figure(fig, out_dir / "thm63.png")

    fig, ax = new_figure()
    rows = results["thm64"]
    xs = [r["n"] for r in rows]
    axis = ax[0, 0]
    axis.plot(xs, [r["simple_mean"] for r in rows], "o-", label="simple tournament (Eq. 29)")
    axis.plot(xs, [r["offset_exact_mean"] for r in rows], "s-", label="offset, exact on-policy")
    axis.plot(xs, [r["offset_sampled_mean"] for r in rows], "^--",
              label=f"offset, {results['config']['offset_samples']} samples/prompt")
    axis.plot(xs, [r["simple_slack"] for r in rows], "r:", label="1/N^(1-a)")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("N")
    axis.set_ylabel(f"mean exact Cov_(N^{1 + a:g}) of the pick")
    axis.set_title("Thm 6.4: the offset removes the 1/N^(1-a) term")
    axis.legend(fontsize=7)
    paths["thm64"] = save_figure(fig, out_dir / "thm64.png")
    return list(paths.values())


def write_html(
    results: dict[str, Any], figures: list[Path], checks: list[Check], config: dict[str, Any],
    out_dir: Path,
) -> None:
    """report.html: the verdict, then one section per part with its figure and table."""
    from lmcoverage.report import Section, Table, write_report

    figs = dict(zip(("prop_e1", "thm63", "thm64"), figures, strict=True))
    within = min(r["fraction_within_bound"] for r in results["thm63"])
    sections = [
        check_section(checks, "Prop E.1, Thm 6.3 and Thm 6.4"),
        Section(
            "Misspecification: likelihood picks the model that misses a slice (after Prop E.1)",
            "Two candidates on three responses {a, b, s}. 'cover' tilts a and b by 1 +/- alpha "
            "and is exact on s, so Cov_N = 0 for N > 1/(1-alpha). 'mle' is M times too unlikely "
            "on s, which has pi_D-mass alpha^2 / (2 log M); its KL is smaller, so it is the "
            "likelihood maximiser, yet its Cov_N is alpha^2 / (2 log M) for 1 < N < M. Each "
            "draw has enough held-out examples for about "
            f"{config['e1_slice_examples']} to land on s. The rates below are measured.",
            figures=[figs["prop_e1"]],
            tables=[Table(results["prop_e1"], columns=[
                "alpha", "m", "heldout", "kl_cover", "kl_mle", "cov_cover", "cov_mle",
                "prediction", "tournament_cover_rate", "ce_cover_rate"])],
        ),
        Section(
            "Thm 6.3: the simple tournament's guarantee",
            "A random misspecified family (noisy, slice-missing and sharpened versions of a "
            "random pi_D). For each held-out draw the simple tournament picks a candidate and "
            f"we compute its exact Cov_(N^(1+a)) with a = {config['a']:g}. The bound is the "
            "theorem's right-hand side with constant 1 (the theorem has unspecified "
            f"constants) and delta = {config['delta']:g}. Smallest fraction of draws within the "
            f"bound over all settings: {within:.3f}.",
            figures=[figs["thm63"]],
            tables=[Table(results["thm63"], columns=[
                "sweep", "n", "heldout", "draws", "tournament_median", "tournament_q90",
                "min_ce_median", "oracle_best", "bound", "fraction_within_bound"])],
        ),
        Section(
            "Thm 6.4: the offset tournament at small N",
            "A family built to fool the simple tournament: 'good' is pi_D; 'sharp-N' drops about "
            "1/(2N) of pi_D's mass and is sharper elsewhere, so opponents rarely beat it by N; "
            "'adversary-N' concentrates on mass about 1/N and beats 'good' there by a factor N. "
            "The simple tournament may pay up to 1/N^(1-a); the offset term 2 N^a "
            "hatCov^pi_N, estimated exactly or from samples of each candidate on the held-out "
            "prompts, cancels the adversaries' wins.",
            figures=[figs["thm64"]],
            tables=[Table(results["thm64"], columns=[
                "n", "draws", "simple_mean", "offset_exact_mean", "offset_sampled_mean",
                "simple_q90", "offset_exact_q90", "min_cov_n_a", "simple_slack"])],
        ),
    ]
    write_report(out_dir / "report.html", TITLE, sections, config)
