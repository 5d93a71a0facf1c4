"""tournament: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import checks_to_json, finish_run, make_rng, run_units
from lmcoverage.experiments.tournament.checks import effect_checks, thm63_bound
from lmcoverage.experiments.tournament.report import plot_figures, write_html


def _steps(items: list[Any], description: str, progress: bool) -> Any:
    """``items`` with a transient rich progress bar (none when ``progress`` is False)."""
    from rich.progress import track

    return track(items, description=description, disable=not progress, transient=True)


def _unit_prop_e1(config: dict[str, Any], seed: int, progress: bool
                  ) -> dict[str, NDArray[Any]]:
    from lmcoverage.select import min_cross_entropy, simple_tournament
    from lmcoverage.select.families import misspecification_example

    rng = make_rng([seed], 1)
    n_thr = float(config["e1_n"])
    pairs = [(float(alpha), float(m)) for alpha in config["alphas"] for m in config["ms"]]
    cols: dict[str, list[float]] = {k: [] for k in (
        "alpha", "m", "heldout", "kl_cover", "kl_mle", "cov_cover", "cov_mle",
        "ce_picks_cover", "tournament_picks_cover", "draws")}
    for alpha, m in _steps(pairs, f"Prop E.1 (seed {seed})", progress):
        fam = misspecification_example(alpha, m)
        cov, kl = fam.coverage(n_thr), fam.kl()
        size = math.ceil(config["e1_slice_examples"] / float(fam.data[0, 2]))
        ce_cover = tour_cover = 0
        for _ in range(config["e1_draws"]):
            held = fam.sample(size, rng)
            ce_cover += min_cross_entropy(held.loglik).index == 0
            tour_cover += simple_tournament(held.loglik, n_thr).index == 0
        for key, value in (("alpha", alpha), ("m", m), ("heldout", size),
                           ("kl_cover", kl[0]), ("kl_mle", kl[1]), ("cov_cover", cov[0]),
                           ("cov_mle", cov[1]), ("ce_picks_cover", ce_cover),
                           ("tournament_picks_cover", tour_cover),
                           ("draws", config["e1_draws"])):
            cols[key].append(float(value))
    return {k: np.array(v) for k, v in cols.items()}


def _unit_thm63(config: dict[str, Any], seed: int, progress: bool
                ) -> dict[str, NDArray[Any]]:
    from lmcoverage.select import min_cross_entropy, simple_tournament
    from lmcoverage.select.families import random_family

    fam = random_family(int(config["family_seed"]))
    rng = make_rng([seed], 2)
    a = float(config["a"])
    settings = [(float(n), int(config["heldout"]), "ns") for n in config["ns"]]
    settings += [(float(config["n_fixed"]), int(s), "heldout_sizes")
                 for s in config["heldout_sizes"]]
    tour = np.empty((len(settings), config["draws"]))
    ce = np.empty_like(tour)
    for i, (n_thr, size, _) in enumerate(_steps(settings, f"Thm 6.3 (seed {seed})", progress)):
        cov = fam.coverage(n_thr ** (1.0 + a))  # exact Cov_{N^(1+a)} of every candidate
        for d in range(config["draws"]):
            held = fam.sample(size, rng)
            tour[i, d] = cov[simple_tournament(held.loglik, n_thr).index]
            ce[i, d] = cov[min_cross_entropy(held.loglik).index]
    return {"sweep": np.array([t[2] for t in settings]), "n": np.array([t[0] for t in settings]),
            "heldout": np.array([t[1] for t in settings]), "tournament": tour, "min_ce": ce}


def _unit_thm64(config: dict[str, Any], seed: int, progress: bool
                ) -> dict[str, NDArray[Any]]:
    from lmcoverage.select import offset_tournament, onpolicy_from_samples, simple_tournament
    from lmcoverage.select.families import offset_family

    fam = offset_family(int(config["family_seed"]),
                        ns=tuple(float(n) for n in config["offset_ns"]))
    rng = make_rng([seed], 3)
    a = float(config["a"])
    ns = [float(n) for n in config["offset_ns"]]
    out = {key: np.empty((len(ns), config["offset_draws"]))
           for key in ("simple", "offset_exact", "offset_sampled")}
    for i, n_thr in enumerate(_steps(ns, f"Thm 6.4 (seed {seed})", progress)):
        cov = fam.coverage(n_thr ** (1.0 + a))
        for d in range(config["offset_draws"]):
            held = fam.sample(int(config["offset_heldout"]), rng)
            out["simple"][i, d] = cov[simple_tournament(held.loglik, n_thr).index]
            onp = fam.onpolicy(held.prompt, n_thr)
            out["offset_exact"][i, d] = cov[offset_tournament(held.loglik, n_thr, a, onp).index]
            s, counts = fam.sample_onpolicy(held.prompt, int(config["offset_samples"]), rng)
            onp_s = onpolicy_from_samples(s, n_thr, counts)
            out["offset_sampled"][i, d] = cov[
                offset_tournament(held.loglik, n_thr, a, onp_s).index]
    return {"n": np.array(ns), **out}


_UNITS = {"prop_e1": _unit_prop_e1, "thm63": _unit_thm63, "thm64": _unit_thm64}


def _aggregate_prop_e1(units: list[dict[str, NDArray[Any]]]) -> list[dict[str, Any]]:
    first = units[0]
    counts = {k: np.sum([u[k] for u in units], axis=0)
              for k in ("draws", "ce_picks_cover", "tournament_picks_cover")}
    rows = []
    for i in range(first["alpha"].size):
        alpha, m = float(first["alpha"][i]), float(first["m"][i])
        rows.append({
            "alpha": alpha, "m": m, "heldout": int(first["heldout"][i]),
            **{k: float(first[k][i]) for k in ("kl_cover", "kl_mle", "cov_cover", "cov_mle")},
            "prediction": alpha**2 / (2.0 * math.log(m)),
            "draws": int(counts["draws"][i]),
            "ce_cover_rate": float(counts["ce_picks_cover"][i] / counts["draws"][i]),
            "tournament_cover_rate":
                float(counts["tournament_picks_cover"][i] / counts["draws"][i]),
        })
    return rows


def _aggregate_thm63(units: list[dict[str, NDArray[Any]]], config: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    from lmcoverage.select.families import random_family

    fam = random_family(int(config["family_seed"]))
    a, delta = float(config["a"]), float(config["delta"])
    tour = np.concatenate([u["tournament"] for u in units], axis=1)
    ce = np.concatenate([u["min_ce"] for u in units], axis=1)
    out = []
    for i, (sweep, n_thr, size) in enumerate(zip(units[0]["sweep"], units[0]["n"],
                                                 units[0]["heldout"], strict=True)):
        min_na = float(fam.coverage(float(n_thr) ** a).min())
        bound = thm63_bound(min_na, float(n_thr), a, int(size), fam.size, delta)
        out.append({
            "sweep": str(sweep), "n": float(n_thr), "heldout": int(size),
            "draws": int(tour.shape[1]),
            "tournament_median": float(np.median(tour[i])),
            "tournament_q90": float(np.quantile(tour[i], 0.9)),
            "tournament_max": float(tour[i].max()),
            "min_ce_median": float(np.median(ce[i])),
            "oracle_best": float(fam.coverage(float(n_thr) ** (1.0 + a)).min()),
            "min_cov_n_a": min_na, "bound": bound,
            "fraction_within_bound": float(np.mean(tour[i] <= bound)),
        })
    return out


def _aggregate_thm64(units: list[dict[str, NDArray[Any]]], config: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    from lmcoverage.select.families import offset_family

    fam = offset_family(int(config["family_seed"]),
                        ns=tuple(float(n) for n in config["offset_ns"]))
    a = float(config["a"])
    out = []
    for i, n_thr in enumerate(units[0]["n"]):
        row: dict[str, Any] = {"n": float(n_thr)}
        for key in ("simple", "offset_exact", "offset_sampled"):
            vals = np.concatenate([u[key][i] for u in units])
            row[f"{key}_mean"] = float(vals.mean())
            row[f"{key}_q90"] = float(np.quantile(vals, 0.9))
            row["draws"] = int(vals.size)
        row["min_cov_n_a"] = float(fam.coverage(float(n_thr) ** a).min())
        row["simple_slack"] = float(n_thr) ** -(1.0 - a)
        out.append(row)
    return out


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Run the three parts for every seed, write results.json, figures and report.html."""
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        f"{part}-seed{seed}": partial(fn, config, seed, ctx.progress)
        for part, fn in _UNITS.items() for seed in ctx.seeds}
    done = run_units(out_dir, jobs, ctx.executor)
    by_part = {part: [done[f"{part}-seed{seed}"] for seed in ctx.seeds] for part in _UNITS}
    results: dict[str, Any] = {
        "config": config,
        "seeds": list(ctx.seeds),
        "prop_e1": _aggregate_prop_e1(by_part["prop_e1"]),
        "thm63": _aggregate_thm63(by_part["thm63"], config),
        "thm64": _aggregate_thm64(by_part["thm64"], config),
    }
    checks = effect_checks(results)
    results["checks"] = checks_to_json(checks)
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
