"""The predictiveness report: figures, tables and the reading of :func:`predictiveness`.

Written with :func:`lmcoverage.report.write_report` (self-contained HTML, figures embedded)
next to ``results.json`` holding the same numbers. ``results.json`` is strict JSON: a number
that is not finite is written as null next to a ``KEY_reason`` field saying what it was
(:func:`strict_json`), never as the strings "inf" or "nan".
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.io import atomic_write_text
from lmcoverage.report import Section, Table, save_figure, write_report
from lmcoverage.report.figures import new_figure
from lmcoverage.verify.predictiveness import reading

_LABELS = {"cov_half_n": "Cov_(N/2)", "kl": "KL", "cross_entropy": "cross-entropy"}
_NON_FINITE = {"inf": "+infinity (e.g. a held-out response of probability zero)",
               "-inf": "-infinity", "nan": "undefined (not a number)"}


def strict_json(obj: object) -> object:
    """``obj`` with every non-finite float replaced by None; in a dict, ``KEY_reason`` (unless
    present) then says what the value was. Numpy scalars and arrays become plain types."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if isinstance(value, np.generic):
                value = value.item()
            out[str(key)] = strict_json(value)
            if isinstance(value, float) and not math.isfinite(value):
                out.setdefault(f"{key}_reason", _NON_FINITE[str(value)])
        return out
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def results_text(results: dict[str, Any]) -> str:
    """``results`` as strict JSON text (``allow_nan=False``: raises on a stray non-finite)."""
    return json.dumps(strict_json(results), indent=2, allow_nan=False) + "\n"


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
    for ax, (label, raw) in zip(axes[0], series, strict=True):
        xs = np.asarray(raw, dtype=np.float64)
        edge = np.isinf(xs)  # infinite CE: drawn at the right edge, not dropped
        finite = xs[~edge]
        if edge.any():
            top = finite.max() if finite.size else 0.0
            span = (top - finite.min()) if finite.size > 1 else 1.0
            xs = np.where(edge, top + 0.15 * (span or 1.0), xs)
            ax.axvline(xs[edge][0], color="0.6", ls=":", lw=0.8)
            label += " (dotted: infinite)"
        ax.errorbar(xs, ys, yerr=err, fmt="o", ms=4, capsize=2)
        for x, y, c, inf in zip(xs, ys, cands, edge, strict=True):
            ax.annotate(c["name"] + (" (inf)" if inf else ""), (x, y), fontsize=5)
        ax.set_xlabel(label)
        ax.set_ylabel(f"Pass@{n}")
    return save_figure(fig, path)


def _interval(lo: float | None, hi: float | None, digits: int = 3) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _value(x: object) -> object:
    return "n/a" if x is None else x


def _tables(results: dict[str, Any]) -> list[Table]:
    cand_rows = []
    for c in results["candidates"]:
        row: dict[str, Any] = {"candidate": c["name"], "KL": c["kl"],
                               "cross-entropy": c["cross_entropy"]}
        for p in c["cov_half_n"]:
            row[f"Cov_{p['n'] / 2:g}"] = f"{p['cov']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}]"
            if "normaliser_lo" in p:
                row[f"Cov_{p['n'] / 2:g} with p(x) at its interval's ends"] = (
                    f"{p['normaliser_lo']:.3f} .. {p['normaliser_hi']:.3f}")
        for r in c["pass_at_k"]:
            row[f"Pass@{r['k']}"] = f"{r['pass_at_k']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]"
        cand_rows.append(row)
    corr_rows = [{"N": r["n"], "metric": _LABELS[r["metric"]], "Spearman rho": r["rho"],
                  "interval": f"[{r['lo']:.3f}, {r['hi']:.3f}]", "resamples": r["resamples"]}
                 for r in results["correlations"]]
    regret = {(r["n"], r["selector"]): r for r in results.get("regret", [])}
    pick_rows = []
    for p in results["picks"]:
        r = regret.get((p["n"], p["method"]), {})
        pick_rows.append({"N": p["n"], "selector": p["method"], "pick": p["pick"],
                          "Pass@N of pick": p["pass_at_n"], "best Pass@N": p["best_pass_at_n"],
                          "regret": p["regret"], "regret interval": _interval(r.get("lo"),
                                                                              r.get("hi"))})
    paired_rows = [{"N": r["n"], "rho(Cov_(N/2))": _value(r["rho_cov"]),
                    "rho(CE)": _value(r["rho_ce"]), "D = difference": _value(r["delta"]),
                    "interval": _interval(r["lo"], r["hi"]), "resamples": r["resamples"],
                    "note": r.get("reason") or ""} for r in results.get("paired", [])]
    conf = f"{results['confidence']:.0%}"
    return [Table(cand_rows, caption=f"Per candidate ({conf} intervals: Wilson for Cov, normal "
                                     "over prompts for Pass@k)"),
            Table(corr_rows, caption=f"Spearman rank correlation with Pass@N across candidates "
                                     f"({conf} BCa bootstrap interval over prompts)"),
            Table(pick_rows, caption=f"Selector picks (tournament and oracle at N/2); regret = "
                                     f"best Pass@N - the pick's ({conf} percentile interval over "
                                     "prompt resamples, the pick recomputed on each)"),
            Table(paired_rows, caption=f"Paired difference D_N = rho(Pass@N, Cov_(N/2)) - "
                                       f"rho(Pass@N, CE); D < 0: coverage predicts better ({conf} "
                                       "BCa interval, bootstrap over prompts and candidates)")]


def write_compare_report(results: dict[str, Any], html_path: Path, json_path: Path,
                         config: dict[str, Any] | None = None, setup: str = "",
                         title: str = "Coverage and Best-of-N: predictiveness") -> None:
    """Write ``results.json`` (strict JSON, :func:`results_text`) and the self-contained HTML
    report (figures embedded); ``setup`` (prose) opens the report when given. Both files are
    prepared before either is written, and the HTML is removed again if the JSON cannot be
    written, so a failure leaves neither."""
    text = results_text(results)
    cand_table, corr_table, pick_table, paired_table = _tables(results)
    no_corr = results.get("no_correlation")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".compare-", dir=html_path.parent) as tmp:
        profile = _profile_figure(results, Path(tmp) / "coverage_profile.png")
        sections = [
            Section("Reading", reading(results)),
            Section("Candidates", f"{results['problems']} prompts, {results['examples']} "
                    f"held-out responses from pi_D, {results['samples_per_prompt']} samples "
                    "per prompt and candidate.", [profile], [cand_table]),
        ]
        if no_corr:
            sections.append(Section("Does the metric predict Pass@N?", no_corr + "."))
        else:
            scatter = _scatter_figure(results, Path(tmp) / "pass_vs_metrics.png")
            sections += [Section("Does coverage predict Pass@N better than cross-entropy?", "",
                                 [], [paired_table]),
                         Section("Does the metric predict Pass@N?", "", [scatter],
                                 [corr_table])]
        sections.append(Section("Selection", "", [], [pick_table]))
        if results.get("warnings"):
            sections.insert(0, Section("Warnings", "\n\n".join(results["warnings"])))
        if setup:
            sections.insert(0, Section("Setup", setup))
        write_report(html_path, title, sections, config)
    try:
        atomic_write_text(json_path, text)
    except BaseException:
        html_path.unlink(missing_ok=True)
        raise
