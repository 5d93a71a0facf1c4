"""The predictiveness report: figures, tables and the reading of :func:`predictiveness`.

Written with :func:`lmcoverage.report.write_report` (self-contained HTML, figures embedded)
next to ``results.json`` holding the same numbers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lmcoverage.io import atomic_write_json
from lmcoverage.report import Section, Table, save_figure, write_report
from lmcoverage.report.figures import new_figure
from lmcoverage.verify.predictiveness import reading

_LABELS = {"cov_half_n": "Cov_(N/2)", "kl": "KL", "cross_entropy": "cross-entropy"}


def _profile_figure(results: dict[str, Any], path: Path) -> Path:
    """Cov_N against N (log axis) per candidate, with its interval as a band."""
    fig, axes = new_figure(width=6.0, height=4.0)
    ax = axes[0, 0]
    for cand in results["candidates"]:
        ns = [p["n"] for p in cand["coverage"]]
        line = ax.plot(ns, [p["cov"] for p in cand["coverage"]], marker="o", ms=3,
                       label=cand["name"])[0]
        ax.fill_between(ns, [p["lo"] for p in cand["coverage"]],
                        [p["hi"] for p in cand["coverage"]], color=line.get_color(), alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N")
    ax.set_ylabel("Cov_N")
    ax.set_title("Coverage profile (band: interval)")
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def _scatter_figure(results: dict[str, Any], path: Path) -> Path:
    """Pass@N against Cov_(N/2) and against cross-entropy at the largest N, with intervals."""
    n = results["ns"][-1]
    cands = results["candidates"]
    passes = [next(r for r in c["pass_at_k"] if r["k"] == n) for c in cands]
    ys = [p["pass_at_k"] for p in passes]
    err = [[y - p["lo"] for y, p in zip(ys, passes, strict=True)],
           [p["hi"] - y for y, p in zip(ys, passes, strict=True)]]
    series = [(f"Cov_{n / 2:g}", [c["cov_half_n"][-1]["cov"] for c in cands]),
              ("cross-entropy (nats)", [c["cross_entropy"] for c in cands])]
    fig, axes = new_figure(ncols=2, width=4.2, height=3.6)
    for ax, (label, xs) in zip(axes[0], series, strict=True):
        ax.errorbar(xs, ys, yerr=err, fmt="o", ms=4, capsize=2)
        for x, y, c in zip(xs, ys, cands, strict=True):
            ax.annotate(c["name"], (x, y), fontsize=5)
        ax.set_xlabel(label)
        ax.set_ylabel(f"Pass@{n}")
    return save_figure(fig, path)


def _tables(results: dict[str, Any]) -> list[Table]:
    cand_rows = []
    for c in results["candidates"]:
        row: dict[str, Any] = {"candidate": c["name"], "KL": c["kl"],
                               "cross-entropy": c["cross_entropy"]}
        for p in c["cov_half_n"]:
            row[f"Cov_{p['n'] / 2:g}"] = f"{p['cov']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}]"
        for r in c["pass_at_k"]:
            row[f"Pass@{r['k']}"] = f"{r['pass_at_k']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]"
        cand_rows.append(row)
    corr_rows = [{"N": r["n"], "metric": _LABELS[r["metric"]], "Spearman rho": r["rho"],
                  "interval": f"[{r['lo']:.3f}, {r['hi']:.3f}]", "resamples": r["resamples"]}
                 for r in results["correlations"]]
    pick_rows = [{"N": p["n"], "selector": p["method"], "pick": p["pick"],
                  "Pass@N of pick": p["pass_at_n"], "best Pass@N": p["best_pass_at_n"],
                  "regret": p["regret"]} for p in results["picks"]]
    conf = f"{results['confidence']:.0%}"
    return [Table(cand_rows, caption=f"Per candidate ({conf} intervals: Wilson for Cov, normal "
                                     "over prompts for Pass@k)"),
            Table(corr_rows, caption=f"Spearman rank correlation with Pass@N across candidates "
                                     f"({conf} bootstrap interval over prompts)"),
            Table(pick_rows, caption="Selector picks (tournament and oracle at N/2)")]


def write_compare_report(results: dict[str, Any], html_path: Path, json_path: Path,
                         config: dict[str, Any] | None = None, setup: str = "",
                         title: str = "Coverage and Best-of-N: predictiveness") -> None:
    """Write ``results.json`` and the self-contained HTML report (figures embedded); ``setup``
    (prose) opens the report when given."""
    atomic_write_json(json_path, results)
    cand_table, corr_table, pick_table = _tables(results)
    with tempfile.TemporaryDirectory(prefix=".compare-", dir=html_path.parent) as tmp:
        profile = _profile_figure(results, Path(tmp) / "coverage_profile.png")
        scatter = _scatter_figure(results, Path(tmp) / "pass_vs_metrics.png")
        sections = [
            Section("Reading", reading(results)),
            Section("Candidates", f"{results['problems']} prompts, {results['examples']} "
                    f"held-out responses from pi_D, {results['samples_per_prompt']} samples "
                    "per prompt and candidate.", [profile], [cand_table]),
            Section("Does the metric predict Pass@N?", "", [scatter], [corr_table]),
            Section("Selection", "", [], [pick_table]),
        ]
        if setup:
            sections.insert(0, Section("Setup", setup))
        write_report(html_path, title, sections, config)
