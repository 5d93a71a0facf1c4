"""Checkpoint selection by coverage, checked where the truth is known exactly.

Three parts, all on finite families (``lmcoverage.select.families``) where pi_D is known and
Cov_N, KL and on-policy coverage are exact sums:

1. Misspecification (after Prop E.1): a two-model class where the likelihood maximiser has
   Cov_N = alpha^2 / (2 log M) and the other model has Cov_N = 0. How often do min
   cross-entropy and the simple tournament (Eq. 29) pick each, on random held-out data?
2. Thm 6.3: over many held-out draws, Cov_{N^(1+a)} of the tournament's pick against
   min_j Cov_{N^a}(pi_j) + 1/N^(1-a) + log(|Pi|/delta)/n, across N and across n.
3. Thm 6.4: the offset tournament (Eq. 32) against the simple one on a family built to fool
   the simple tournament at small N, with exact and with sampled on-policy estimates.

Units of work are (part, seed); each is cached in ``units/`` of the run directory, so a rerun
resumes. All randomness comes from the seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.experiments.registry import RunContext
from lmcoverage.io import atomic_write_json

TITLE = "Choosing checkpoints by coverage: tournaments vs likelihood on exact finite families"

_BASE: dict[str, Any] = {
    # part 1: Prop E.1
    "alphas": [0.1, 0.2, 0.3, 0.4, 0.5],
    "ms": [16, 100, 1000, 10000],
    "e1_n": 8.0,
    "e1_slice_examples": 20,
    "e1_draws": 100,
    # part 2: Thm 6.3
    "family_seed": 0,
    "a": 0.5,
    "delta": 0.1,
    "ns": [2, 4, 8, 16, 32, 64],
    "heldout": 1000,
    "n_fixed": 8.0,
    "heldout_sizes": [125, 250, 500, 1000, 2000, 4000],
    "draws": 100,
    # part 3: Thm 6.4
    "offset_ns": [2, 4, 8, 16],
    "offset_heldout": 2000,
    "offset_samples": 16,
    "offset_draws": 50,
}

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(_BASE),
    "full": {**_BASE, "e1_draws": 500, "draws": 500, "offset_draws": 300},
}


# ------------------------------------------------------------------------------ the units
def _steps(items: list[Any], description: str, progress: bool) -> Any:
    """``items`` with a transient rich progress bar (none when ``progress`` is False)."""
    from rich.progress import track

    return track(items, description=description, disable=not progress, transient=True)


def _unit_prop_e1(config: dict[str, Any], seed: int, progress: bool) -> dict[str, Any]:
    from lmcoverage.select import min_cross_entropy, simple_tournament
    from lmcoverage.select.families import misspecification_example

    rng = np.random.default_rng([seed, 1])
    n_thr = float(config["e1_n"])
    rows = []
    pairs = [(alpha, m) for alpha in config["alphas"] for m in config["ms"]]
    for alpha, m in _steps(pairs, f"Prop E.1 (seed {seed})", progress):
        fam = misspecification_example(float(alpha), float(m))
        cov = fam.coverage(n_thr)
        p = float(fam.data[0, 2])
        size = math.ceil(config["e1_slice_examples"] / p)
        ce_cover = tour_cover = 0
        for _ in range(config["e1_draws"]):
            held = fam.sample(size, rng)
            ce_cover += min_cross_entropy(held.loglik).index == 0
            tour_cover += simple_tournament(held.loglik, n_thr).index == 0
        rows.append({
            "alpha": float(alpha), "m": float(m), "heldout": size,
            "kl_cover": float(fam.kl()[0]), "kl_mle": float(fam.kl()[1]),
            "cov_cover": float(cov[0]), "cov_mle": float(cov[1]),
            "prediction": float(alpha) ** 2 / (2.0 * math.log(float(m))),
            "draws": int(config["e1_draws"]),
            "ce_picks_cover": int(ce_cover), "tournament_picks_cover": int(tour_cover),
        })
    return {"rows": rows}


def _unit_thm63(config: dict[str, Any], seed: int, progress: bool) -> dict[str, Any]:
    from lmcoverage.select import min_cross_entropy, simple_tournament
    from lmcoverage.select.families import random_family

    fam = random_family(int(config["family_seed"]))
    rng = np.random.default_rng([seed, 2])
    a = float(config["a"])
    settings = [(float(n), int(config["heldout"]), "ns") for n in config["ns"]]
    settings += [(float(config["n_fixed"]), int(s), "heldout_sizes")
                 for s in config["heldout_sizes"]]
    rows = []
    for n_thr, size, sweep in _steps(settings, f"Thm 6.3 (seed {seed})", progress):
        cov = fam.coverage(n_thr ** (1.0 + a))  # exact Cov_{N^(1+a)} of every candidate
        tour, ce = [], []
        for _ in range(config["draws"]):
            held = fam.sample(size, rng)
            tour.append(float(cov[simple_tournament(held.loglik, n_thr).index]))
            ce.append(float(cov[min_cross_entropy(held.loglik).index]))
        rows.append({"sweep": sweep, "n": n_thr, "heldout": size, "tournament": tour,
                     "min_ce": ce})
    return {"rows": rows}


def _unit_thm64(config: dict[str, Any], seed: int, progress: bool) -> dict[str, Any]:
    from lmcoverage.select import offset_tournament, onpolicy_from_samples, simple_tournament
    from lmcoverage.select.families import offset_family

    fam = offset_family(int(config["family_seed"]),
                        ns=tuple(float(n) for n in config["offset_ns"]))
    rng = np.random.default_rng([seed, 3])
    a = float(config["a"])
    rows = []
    for n in _steps(list(config["offset_ns"]), f"Thm 6.4 (seed {seed})", progress):
        n_thr = float(n)
        cov = fam.coverage(n_thr ** (1.0 + a))
        simple, exact, sampled = [], [], []
        for _ in range(config["offset_draws"]):
            held = fam.sample(int(config["offset_heldout"]), rng)
            simple.append(float(cov[simple_tournament(held.loglik, n_thr).index]))
            onp = fam.onpolicy(held.prompt, n_thr)
            exact.append(float(cov[offset_tournament(held.loglik, n_thr, a, onp).index]))
            s, counts = fam.sample_onpolicy(held.prompt, int(config["offset_samples"]), rng)
            onp_s = onpolicy_from_samples(s, n_thr, counts)
            sampled.append(float(cov[offset_tournament(held.loglik, n_thr, a, onp_s).index]))
        rows.append({"n": n_thr, "simple": simple, "offset_exact": exact,
                     "offset_sampled": sampled})
    return {"rows": rows}


_UNITS = {"prop_e1": _unit_prop_e1, "thm63": _unit_thm63, "thm64": _unit_thm64}


def _run_unit(item: tuple[str, dict[str, Any], int, str, bool]) -> dict[str, Any]:
    """Run one (part, seed) unit, or read it from the cache file; picklable for Ray."""
    part, config, seed, cache, progress = item
    path = Path(cache)
    if path.is_file():
        import json

        cached: dict[str, Any] = json.loads(path.read_text())
        return cached
    result = _UNITS[part](config, seed, progress)
    atomic_write_json(path, result)
    return result


# ------------------------------------------------------------------------------ aggregation
def _aggregate_prop_e1(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in units[0]["rows"]]
    for row, *others in zip(rows, *(u["rows"] for u in units[1:]), strict=True):
        for other in others:
            for key in ("draws", "ce_picks_cover", "tournament_picks_cover"):
                row[key] += other[key]
        row["ce_cover_rate"] = row["ce_picks_cover"] / row["draws"]
        row["tournament_cover_rate"] = row["tournament_picks_cover"] / row["draws"]
    return rows


def _bound(min_cov_na: float, n_thr: float, a: float, size: int, n_cands: int,
           delta: float) -> float:
    """Thm 6.3's right-hand side with constant 1: min Cov_{N^a} + N^-(1-a) + log(|Pi|/d)/n."""
    return min_cov_na + n_thr ** -(1.0 - a) + math.log(n_cands / delta) / size


def _aggregate_thm63(units: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    from lmcoverage.select.families import random_family

    fam = random_family(int(config["family_seed"]))
    a, delta = float(config["a"]), float(config["delta"])
    out = []
    for rows in zip(*(u["rows"] for u in units), strict=True):
        n_thr, size = rows[0]["n"], rows[0]["heldout"]
        tour = np.concatenate([r["tournament"] for r in rows])
        ce = np.concatenate([r["min_ce"] for r in rows])
        min_na = float(fam.coverage(n_thr**a).min())
        bound = _bound(min_na, n_thr, a, size, fam.size, delta)
        out.append({
            "sweep": rows[0]["sweep"], "n": n_thr, "heldout": size, "draws": int(tour.size),
            "tournament_median": float(np.median(tour)),
            "tournament_q90": float(np.quantile(tour, 0.9)),
            "tournament_max": float(tour.max()),
            "min_ce_median": float(np.median(ce)),
            "oracle_best": float(fam.coverage(n_thr ** (1.0 + a)).min()),
            "min_cov_n_a": min_na, "bound": bound,
            "fraction_within_bound": float(np.mean(tour <= bound)),
        })
    return out


def _aggregate_thm64(units: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    from lmcoverage.select.families import offset_family

    fam = offset_family(int(config["family_seed"]),
                        ns=tuple(float(n) for n in config["offset_ns"]))
    a = float(config["a"])
    out = []
    for rows in zip(*(u["rows"] for u in units), strict=True):
        n_thr = rows[0]["n"]
        row: dict[str, Any] = {"n": n_thr}
        for key in ("simple", "offset_exact", "offset_sampled"):
            vals = np.concatenate([r[key] for r in rows])
            row[f"{key}_mean"] = float(vals.mean())
            row[f"{key}_q90"] = float(np.quantile(vals, 0.9))
        row["draws"] = int(sum(len(r["simple"]) for r in rows))
        row["min_cov_n_a"] = float(fam.coverage(n_thr**a).min())
        row["simple_slack"] = n_thr ** -(1.0 - a)
        out.append(row)
    return out


# ------------------------------------------------------------------------------ figures
def _figures(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
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
    return paths


# ------------------------------------------------------------------------------ run
def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Run the three parts for every seed, write results.json, figures and report.html."""
    from lmcoverage.report import Section, Table, write_report

    units_dir = out_dir / "units"
    items = [(part, config, seed, str(units_dir / f"{part}-seed{seed}.json"), ctx.progress)
             for part in _UNITS for seed in ctx.seeds]
    done = ctx.executor.map(_run_unit, items)
    by_part = {part: [d for (p, *_), d in zip(items, done, strict=True) if p == part]
               for part in _UNITS}
    results: dict[str, Any] = {
        "config": config,
        "seeds": list(ctx.seeds),
        "prop_e1": _aggregate_prop_e1(by_part["prop_e1"]),
        "thm63": _aggregate_thm63(by_part["thm63"], config),
        "thm64": _aggregate_thm64(by_part["thm64"], config),
    }
    atomic_write_json(out_dir / "results.json", results)
    figs = _figures(results, out_dir)
    within = min(r["fraction_within_bound"] for r in results["thm63"])
    sections = [
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
    return results


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Key numbers: Prop E.1 pick rates, Thm 6.3 bound check, Thm 6.4 at the smallest N."""
    e1 = results["prop_e1"]
    t64 = results["thm64"][0]
    return [
        {"check": "Prop E.1: tournament picks the covering model (mean rate)",
         "value": float(np.mean([r["tournament_cover_rate"] for r in e1]))},
        {"check": "Prop E.1: min cross-entropy picks it (mean rate)",
         "value": float(np.mean([r["ce_cover_rate"] for r in e1]))},
        {"check": "Thm 6.3: smallest fraction of draws within the bound",
         "value": min(r["fraction_within_bound"] for r in results["thm63"])},
        {"check": f"Thm 6.4 at N={t64['n']:g}: mean Cov of simple pick",
         "value": t64["simple_mean"]},
        {"check": f"Thm 6.4 at N={t64['n']:g}: mean Cov of offset pick (exact)",
         "value": t64["offset_exact_mean"]},
    ]
