"""tournament: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import checks_to_json, finish_run, make_rng, run_units
from lmcoverage.experiments.tournament.checks import effect_checks, thm63_bound, thm64_bound
from lmcoverage.experiments.tournament.report import plot_figures, write_html

if TYPE_CHECKING:
    from lmcoverage.select.families import FiniteFamily

T = TypeVar("T")


def _steps(items: list[T], description: str, progress: bool) -> Iterable[T]:
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
        "alpha", "m", "heldout", "kl_cover", "kl_mle", "cov_cover", "cov_mle", "sup_log_ratio",
        "ce_picks_cover", "tournament_picks_cover", "draws")}
    for alpha, m in _steps(pairs, f"Prop E.1 (seed {seed})", progress):
        fam = misspecification_example(alpha, m)
        cov, kl = fam.coverage(n_thr), fam.kl()
        sup = float(np.abs(np.log(fam.data) - np.log(fam.models[0])).max())
        size = math.ceil(config["e1_slice_examples"] / float(fam.data[0, 2]))
        ce_cover = tour_cover = 0
        for _ in range(config["e1_draws"]):
            held = fam.sample(size, rng)
            ce_cover += min_cross_entropy(held.loglik).index == 0
            tour_cover += simple_tournament(held.loglik, n_thr).index == 0
        for key, value in (("alpha", alpha), ("m", m), ("heldout", size),
                           ("kl_cover", kl[0]), ("kl_mle", kl[1]), ("cov_cover", cov[0]),
                           ("cov_mle", cov[1]), ("sup_log_ratio", sup),
                           ("ce_picks_cover", ce_cover),
                           ("tournament_picks_cover", tour_cover),
                           ("draws", config["e1_draws"])):
            cols[key].append(float(value))
    return {k: np.array(v) for k, v in cols.items()}


def _thm63_settings(config: dict[str, Any]) -> list[tuple[float, int, str]]:
    """(N, held-out size, sweep name) of every Thm 6.3 setting, N sweep first."""
    settings = [(float(n), int(config["heldout"]), "ns") for n in config["ns"]]
    return settings + [(float(config["n_fixed"]), int(s), "heldout_sizes")
                       for s in config["heldout_sizes"]]


def _unit_thm63(config: dict[str, Any], seed: int, progress: bool
                ) -> dict[str, NDArray[Any]]:
    from lmcoverage.select import min_cross_entropy, simple_tournament
    from lmcoverage.select.families import bound_breaking_family

    rng = make_rng([seed], 2)
    a = float(config["a"])
    settings = _thm63_settings(config)
    fams = [int(s) for s in config["family_seeds"]]
    tour = np.empty((len(fams), len(settings), config["draws"]))
    ce = np.empty_like(tour)
    for f, fam_seed in enumerate(fams):
        fam = bound_breaking_family(fam_seed)
        for i, (n_thr, size, _) in enumerate(
                _steps(settings, f"Thm 6.3 (family {fam_seed}, seed {seed})", progress)):
            cov = fam.coverage(n_thr ** (1.0 + a))  # exact Cov_{N^(1+a)} of every candidate
            for d in range(config["draws"]):
                held = fam.sample(size, rng)
                tour[f, i, d] = cov[simple_tournament(held.loglik, n_thr).index]
                ce[f, i, d] = cov[min_cross_entropy(held.loglik).index]
    return {"tournament": tour, "min_ce": ce}


def _offset_picks(fam: FiniteFamily, a: float, n_thr: float, level: float, config: dict[str, Any],
                  rng: np.random.Generator) -> dict[str, NDArray[np.float64]]:
    """Exact Cov_level of the simple and offset (exact / sampled on-policy) picks, per draw."""
    from lmcoverage.select import offset_tournament, onpolicy_from_samples, simple_tournament

    cov = fam.coverage(level)
    out = {key: np.empty(config["offset_draws"])
           for key in ("simple", "offset_exact", "offset_sampled")}
    for d in range(config["offset_draws"]):
        held = fam.sample(int(config["offset_heldout"]), rng)
        out["simple"][d] = cov[simple_tournament(held.loglik, n_thr).index]
        onp = fam.onpolicy(held.prompt, n_thr)
        out["offset_exact"][d] = cov[offset_tournament(held.loglik, n_thr, a=a, onpolicy=onp).index]
        s, counts = fam.sample_onpolicy(held.prompt, int(config["offset_samples"]), rng)
        onp_s = onpolicy_from_samples(s, n_thr, weights=counts)
        out["offset_sampled"][d] = cov[
            offset_tournament(held.loglik, n_thr, a=a, onpolicy=onp_s).index]
    return out


def _offset_fam(config: dict[str, Any]) -> FiniteFamily:
    from lmcoverage.select.families import offset_family

    return offset_family(int(config["offset_family_seed"]),
                         ns=tuple(float(n) for n in config["offset_ns"]))


def _unit_thm64(config: dict[str, Any], seed: int, progress: bool
                ) -> dict[str, NDArray[Any]]:
    fam = _offset_fam(config)
    rng = make_rng([seed], 3)
    out: dict[str, NDArray[Any]] = {}
    cases = [(float(a), float(n)) for a, n in config["thm64_cases"]]
    for i, (a, n_thr) in enumerate(_steps(cases, f"Thm 6.4 (seed {seed})", progress)):
        picks = _offset_picks(fam, a, n_thr, 2.0 * n_thr ** (1.0 + a), config, rng)
        out.update({f"case{i}_{k}": v for k, v in picks.items()})
    a = float(config["heuristic_a"])
    ns = [float(n) for n in config["offset_ns"]]
    for i, n_thr in enumerate(_steps(ns, f"a = {a:g} heuristic (seed {seed})", progress)):
        picks = _offset_picks(fam, a, n_thr, n_thr ** (1.0 + a), config, rng)
        out.update({f"heur{i}_{k}": v for k, v in picks.items()})
    return out


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
            **{k: float(first[k][i]) for k in ("kl_cover", "kl_mle", "cov_cover", "cov_mle",
                                                "sup_log_ratio")},
            "prediction": alpha**2 / (8.0 * math.log(m)),
            "draws": int(counts["draws"][i]),
            "ce_cover_rate": float(counts["ce_picks_cover"][i] / counts["draws"][i]),
            "ce_mle_rate": float(1.0 - counts["ce_picks_cover"][i] / counts["draws"][i]),
            "tournament_cover_rate":
                float(counts["tournament_picks_cover"][i] / counts["draws"][i]),
        })
    return rows


def _aggregate_thm63(units: list[dict[str, NDArray[Any]]], config: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    """One row per (family, setting) with the tournament and the two controls.

    The controls are exact: a uniformly random pick is within the bound with probability
    (candidates within) / |Pi|; the minimum-KL pick is the exact KL minimiser.
    """
    from lmcoverage.select.families import bound_breaking_family

    a, delta = float(config["a"]), float(config["delta"])
    tour = np.concatenate([u["tournament"] for u in units], axis=2)
    ce = np.concatenate([u["min_ce"] for u in units], axis=2)
    out = []
    for f, fam_seed in enumerate(int(s) for s in config["family_seeds"]):
        fam = bound_breaking_family(fam_seed)
        best_kl = int(np.argmin(fam.kl()))
        for i, (n_thr, size, sweep) in enumerate(_thm63_settings(config)):
            cov = fam.coverage(n_thr ** (1.0 + a))
            min_na = float(fam.coverage(n_thr ** a).min())
            bound = thm63_bound(min_na, n_thr, a, size, fam.size, delta)
            t = tour[f, i]
            out.append({
                "family_seed": fam_seed, "sweep": sweep, "n": n_thr, "heldout": size,
                "draws": int(t.size), "bound": bound, "min_cov_n_a": min_na,
                "oracle_best": float(cov.min()),
                "tournament_median": float(np.median(t)),
                "tournament_q90": float(np.quantile(t, 0.9)),
                "tournament_max": float(t.max()),
                "tournament_within": float(np.mean(t <= bound)),
                "min_ce_within": float(np.mean(ce[f, i] <= bound)),
                "random_within": float(np.mean(cov <= bound)),
                "min_kl_pick": fam.names[best_kl], "min_kl_cov": float(cov[best_kl]),
                "min_kl_within": float(cov[best_kl] <= bound),
            })
    return out


def _aggregate_thm64(units: list[dict[str, NDArray[Any]]], config: dict[str, Any]
                     ) -> dict[str, list[dict[str, Any]]]:
    fam = _offset_fam(config)
    delta, size = float(config["delta"]), int(config["offset_heldout"])
    # Thm 6.4's condition: some candidate within a factor N^a of pi_D everywhere
    sup_dev = np.abs(np.log(fam.data)[None] - np.log(fam.models)).reshape(fam.size, -1).max(1)

    def pooled(prefix: str, key: str) -> NDArray[np.float64]:
        return np.concatenate([u[f"{prefix}_{key}"] for u in units])

    cases = []
    for i, (a, n_thr) in enumerate((float(a), float(n)) for a, n in config["thm64_cases"]):
        level = 2.0 * n_thr ** (1.0 + a)
        bound = thm64_bound(size, fam.size, delta)
        cov = fam.coverage(level)
        row: dict[str, Any] = {
            "a": a, "n": n_thr, "level": level, "heldout": size, "bound": bound,
            "n_pow_1m2a": n_thr ** (1.0 - 2.0 * a),
            "closest_sup_log_ratio": float(sup_dev.min()), "a_log_n": a * math.log(n_thr),
            "random_within": float(np.mean(cov <= bound)),
        }
        for key in ("simple", "offset_exact", "offset_sampled"):
            vals = pooled(f"case{i}", key)
            row[f"{key}_mean"] = float(vals.mean())
            row[f"{key}_within"] = float(np.mean(vals <= bound))
            row["draws"] = int(vals.size)
        cases.append(row)
    a = float(config["heuristic_a"])
    heuristic = []
    for i, n_thr in enumerate(float(n) for n in config["offset_ns"]):
        row = {"a": a, "n": n_thr}
        for key in ("simple", "offset_exact", "offset_sampled"):
            vals = pooled(f"heur{i}", key)
            row[f"{key}_mean"] = float(vals.mean())
            row[f"{key}_q90"] = float(np.quantile(vals, 0.9))
            row["draws"] = int(vals.size)
        row["min_cov_n_a"] = float(fam.coverage(n_thr ** a).min())
        row["simple_slack"] = n_thr ** -(1.0 - a)
        heuristic.append(row)
    return {"cases": cases, "heuristic": heuristic}


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
