"""Does coverage predict Best-of-N? Scores (pi_D's responses) against verdicts (sampled Pass@N).

Per candidate: the coverage profile N -> Cov_N (Eq. 1) with Wilson intervals, KL and
cross-entropy from a ScoreTable, and the unbiased Pass@k from a verdicts file. Across
candidates: Spearman's rank correlation of Pass@N with Cov_{N/2} (the pairing of the paper's
Figure 1 and of Prop D.7, which lower-bounds BoN regret by Cov_{2N}), with KL and with
cross-entropy, with a BCa bootstrap interval over prompts (prompts are resampled with
replacement; a prompt's held-out examples and its verdicts move together). The question
"does coverage predict better than cross-entropy?" is answered by the paired difference
D_N = rho_cov - rho_ce with a two-way BCa interval (:mod:`lmcoverage.verify.paired`). And the
candidate each selector picks (tournament Eq. 29 at N/2, cross-entropy, KL, the Cov_{N/2}
oracle) with its Pass@N and its regret (with an interval). Every number comes from
:mod:`lmcoverage.metrics`, :mod:`lmcoverage.select` and :mod:`lmcoverage.verify.paired`. With
fewer than 3 candidates there is no correlation (``correlations`` and ``paired`` are empty and
``no_correlation`` says why); the rest is computed.

A negative correlation means the metric predicts Pass@N (smaller Cov / KL / CE, higher Pass@N).
KL and cross-entropy differ by pi_D's entropy, the same for every candidate, so their rank
correlations coincide by construction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable
from lmcoverage.verify.paired import bca_interval, paired_rho_difference, selector_regret
from lmcoverage.verify.verdicts import Counts, powers_of_two

METRICS = ("cov_half_n", "kl", "cross_entropy")


@dataclass(frozen=True)
class Aligned:
    """Scores and verdicts on the same candidates and prompts.

    ``loglik``: (candidates, examples); ``loglik_data``, ``weight``: (examples,);
    ``example_prompt``: (examples,) prompt index of each example; ``n``, ``c``:
    (candidates, prompts) sample counts.
    """

    names: tuple[str, ...]
    problems: tuple[str, ...]
    loglik: NDArray[np.float64]
    loglik_data: NDArray[np.float64]
    weight: NDArray[np.float64]
    example_prompt: NDArray[np.int64]
    n: NDArray[np.int64]
    c: NDArray[np.int64]


def align(table: ScoreTable, counts: dict[str, Counts],
          example_problems: Sequence[str] | None = None) -> Aligned:
    """Match a ScoreTable and per-model verdict counts.

    Args:
        table: scores of pi_D's held-out responses under every candidate (``loglik_data``
            filled).
        counts: from :func:`lmcoverage.verify.verdicts.read_verdicts`; same candidate names.
        example_problems: the problem of each example (in ``example_id`` order); default:
            example ``i`` belongs to problem ``str(i)``.

    Raises:
        InputError: different candidates, an example whose problem has no verdicts, a table
            without ``loglik_data``.
    """
    names = tuple(table.models)
    if set(names) != set(counts):
        only_scores = sorted(set(names) - set(counts))
        only_verdicts = sorted(set(counts) - set(names))
        raise InputError(f"scores and verdicts name different candidates: only in the scores "
                         f"{only_scores}, only in the verdicts {only_verdicts}")
    if len(names) < 2:
        raise InputError("compare needs at least two candidates")
    if not table.has("loglik_data"):
        raise InputError("scores: column 'loglik_data' is empty; score pi_D's responses with "
                         "a reference (or logp_data) so that Cov_N and KL are defined")
    problems = counts[names[0]].problems
    index = {p: i for i, p in enumerate(problems)}
    ids = table.example_ids
    if example_problems is None:
        example_problems = [str(int(i)) for i in ids]
    elif len(example_problems) != len(ids):
        raise InputError(f"examples: {len(example_problems)} rows for the score table's "
                         f"{len(ids)} examples")
    missing = [p for p in example_problems if p not in index]
    if missing:
        raise InputError(f"example of problem {missing[0]!r} has no verdicts (verdict problems "
                         f"are e.g. {list(problems[:3])})")
    n = np.stack([counts[m].n[[counts[m].problems.index(p) for p in problems]] for m in names])
    c = np.stack([counts[m].c[[counts[m].problems.index(p) for p in problems]] for m in names])
    return Aligned(names, problems, table.matrix("loglik"), table.example_column("loglik_data"),
                   table.example_column("weight"),
                   np.array([index[p] for p in example_problems], dtype=np.int64), n, c)


def example_problems(table: ScoreTable, examples: str | os.PathLike[str] | None = None
                     ) -> list[str] | None:
    """The problem of each of ``table``'s examples, for :func:`align`: from the rows of
    ``examples`` (the scored file), else from the data file the table's provenance names
    (``lmcoverage score --data`` records the file's or ``datasets`` folder's path and
    :func:`~lmcoverage.io.path_sha256`), else None (a task's
    examples: example ``i`` is problem ``str(i)``). A row's problem is its ``problem`` or
    ``id`` field, else its position (:func:`lmcoverage.verify.verdicts.problem_id`).

    Raises:
        InputError: the recorded data file is missing or changed since it was scored.
    """
    from lmcoverage.engine.rows import read_rows
    from lmcoverage.io import path_sha256
    from lmcoverage.verify.verdicts import problem_id

    if examples is None:
        data = table.provenance.get("data")
        if not isinstance(data, dict) or "path" not in data:
            return None
        examples = Path(data["path"])
        try:
            digest = path_sha256(examples)  # a file, or a datasets save_to_disk folder
        except OSError as exc:
            raise InputError(f"scores: scored from {examples}, which cannot be read "
                             f"({exc.strerror}); give --examples FILE (the scored rows)") from None
        if data.get("sha256") not in (None, digest):
            raise InputError(f"scores: {examples} changed since it was scored; give --examples "
                             "FILE (the scored rows)")
    return [problem_id(row, i) for i, (_, row) in enumerate(read_rows(Path(examples)))]


def split_by_group(data: Aligned, groups: Sequence[str]) -> dict[str, Aligned]:
    """``data`` restricted to each group's examples and their prompts, groups in first-seen
    order; ``groups``: (examples,) the group of every example (the ScoreTable's ``group``).

    Raises:
        InputError: a prompt whose examples lie in two groups (its verdicts cannot be split).
    """
    labels = np.asarray([str(g) for g in groups])
    if labels.shape != data.example_prompt.shape:
        raise InputError(f"groups: {labels.size} labels for {data.example_prompt.size} examples")
    for p in np.unique(data.example_prompt):
        seen = np.unique(labels[data.example_prompt == p])
        if seen.size > 1:
            raise InputError(f"problem {data.problems[p]!r} has examples in groups "
                             f"{list(seen)}; give each problem one group")
    out = {}
    for group in dict.fromkeys(labels.tolist()):
        mask = labels == group
        prompts = np.unique(data.example_prompt[mask])
        renumber = np.full(len(data.problems), -1, dtype=np.int64)
        renumber[prompts] = np.arange(prompts.size)
        out[group] = Aligned(data.names, tuple(data.problems[p] for p in prompts),
                             data.loglik[:, mask], data.loglik_data[mask], data.weight[mask],
                             renumber[data.example_prompt[mask]], data.n[:, prompts],
                             data.c[:, prompts])
    return out


def _per_prompt_pass(data: Aligned, ns: Sequence[int]) -> dict[int, NDArray[np.float64]]:
    """N -> (candidates, prompts) unbiased Pass@N of every prompt."""
    from lmcoverage.metrics import pass_at_k

    return {n: pass_at_k(data.n, data.c, n) for n in ns}


def _metrics(data: Aligned, ns: Sequence[int], example_weight: NDArray[np.float64]
             ) -> dict[str, NDArray[np.float64]]:
    """Per-candidate Cov_{N/2} (candidates, len(ns)), KL and CE (candidates,)."""
    from lmcoverage.metrics import coverage_profile, cross_entropy, kl_divergence

    half = np.array([n / 2 for n in ns], dtype=np.float64)
    cov = np.stack([coverage_profile(data.loglik_data - row, half, example_weight)
                    for row in data.loglik])
    kl = np.array([kl_divergence(data.loglik_data - row, example_weight) for row in data.loglik])
    ce = np.array([cross_entropy(row, example_weight) for row in data.loglik])
    return {"cov_half_n": cov, "kl": kl, "cross_entropy": ce}


def _spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Spearman's rho; NaN when either side is constant (no ranking to compare)."""
    from scipy import stats

    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def _correlations(data: Aligned, per_prompt: dict[int, NDArray[np.float64]],
                  prompt_weight: NDArray[np.float64]) -> NDArray[np.float64]:
    """(len(ns), len(METRICS)) rho of Pass@N with each metric, prompts weighted; ``ns`` are
    the keys of ``per_prompt`` (from :func:`_per_prompt_pass`)."""
    ns = list(per_prompt)
    example_weight = data.weight * prompt_weight[data.example_prompt]
    values = _metrics(data, ns, example_weight)
    out = np.empty((len(ns), len(METRICS)))
    for i, n in enumerate(ns):
        pass_n = per_prompt[n] @ prompt_weight / prompt_weight.sum()
        out[i] = [_spearman(pass_n, values["cov_half_n"][:, i]),
                  _spearman(pass_n, values["kl"]), _spearman(pass_n, values["cross_entropy"])]
    return out


def _regrets(data: Aligned, per_prompt: dict[int, NDArray[np.float64]], bootstrap: int,
             confidence: float, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(picks, regret)``: per N and selector its pick, Pass@N and regret (the ``picks`` rows)
    and the regret with its interval (:func:`lmcoverage.verify.paired.selector_regret`)."""
    picks, regret = [], []
    for n, pass_n in per_prompt.items():
        best = float(pass_n.mean(axis=1).max())
        for r in selector_regret(pass_n, data.loglik, data.loglik_data, data.example_prompt, n,
                                 data.names, data.weight, resamples=bootstrap,
                                 confidence=confidence, seed=seed):
            regret.append(r.to_dict())
            picks.append({"n": n, "method": r.selector, "pick": r.pick,
                          "pass_at_n": best - r.regret, "best_pass_at_n": best,
                          "regret": r.regret})
    return picks, regret


def predictiveness(
    data: Aligned,
    ns: Sequence[int] | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    profile_ns: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Everything the compare report shows, as plain JSON.

    Args:
        data: from :func:`align`.
        ns: values of N for Pass@N (each even, at most every prompt's sample count); default
            2, 4, 8, ... up to the smallest sample count.
        bootstrap: prompt resamples for the correlation intervals (>= 0; 0: no interval).
        confidence: level of every interval.
        seed: seeds the bootstrap.
        profile_ns: the N grid of the coverage profile (default 1, 2, 4, ..., 1024).

    Returns:
        ``{"candidates": [...], "correlations": [...], "picks": [...], ...}`` (see the keys).
    """
    from lmcoverage.metrics import coverage_profile_ci, cross_entropy, kl_divergence
    from lmcoverage.metrics.passk_data import pass_at_k_with_ci

    if not 0 < confidence < 1:
        raise InputError(f"--confidence: must lie in (0, 1), got {confidence}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise InputError(f"--bootstrap: must be an integer >= 0, got {bootstrap!r}")
    k_max = int(data.n.min())
    ns = [n for n in powers_of_two(k_max) if n >= 2] if ns is None else list(ns)
    if not ns:
        raise InputError(f"need at least 2 samples per prompt for Pass@N with N >= 2 "
                         f"(Cov_(N/2) needs N/2 >= 1); the verdicts have {k_max}")
    for n in ns:
        if n < 2 or n > k_max:
            raise InputError(f"--n {n}: N must lie in [2, {k_max}] (the fewest samples of a "
                             "prompt)")
    grid = np.asarray(profile_ns if profile_ns is not None else 2.0 ** np.arange(11))
    ks = sorted({*powers_of_two(k_max), *ns})  # every N of the report has its Pass@N
    candidates = []
    for j, name in enumerate(data.names):
        log_ratio = data.loglik_data - data.loglik[j]
        cov, lo, hi = coverage_profile_ci(log_ratio, grid, data.weight, confidence)
        half = coverage_profile_ci(log_ratio, [n / 2 for n in ns], data.weight, confidence)
        candidates.append({
            "name": name,
            "kl": kl_divergence(log_ratio, data.weight),
            "cross_entropy": cross_entropy(data.loglik[j], data.weight),
            "coverage": [{"n": float(g), "cov": float(a), "lo": float(b), "hi": float(d)}
                         for g, a, b, d in zip(grid, cov, lo, hi, strict=True)],
            "cov_half_n": [{"n": n, "cov": float(a), "lo": float(b), "hi": float(d)}
                           for n, a, b, d in zip(ns, *half, strict=True)],
            "pass_at_k": pass_at_k_with_ci(data.n[j], data.c[j], ks, confidence),
        })
    per_prompt = _per_prompt_pass(data, ns)
    picks, regret = _regrets(data, per_prompt, bootstrap, confidence, seed)
    out: dict[str, Any] = {
        "candidates": candidates,
        "ns": ns,
        "problems": len(data.problems),
        "examples": int(data.loglik.shape[1]),
        "samples_per_prompt": k_max,
        "confidence": confidence,
        "bootstrap": bootstrap,
        "seed": seed,
        "correlations": [],
        "paired": [],
        "picks": picks,
        "regret": regret,
    }
    if len(data.names) < 3:
        out["no_correlation"] = (f"no correlation: {len(data.names)} candidates (a rank "
                                 "correlation needs at least 3)")
        return out
    out["paired"] = [paired_rho_difference(per_prompt[n], data.loglik, data.loglik_data,
                                           data.example_prompt, n, data.weight,
                                           resamples=bootstrap, confidence=confidence,
                                           seed=seed).to_dict() for n in ns]
    point = _correlations(data, per_prompt, np.ones(len(data.problems)))
    rng = np.random.default_rng(seed)
    draws = np.full((bootstrap, len(ns), len(METRICS)), np.nan)
    for b in range(bootstrap):
        counts = np.bincount(rng.integers(0, len(data.problems), len(data.problems)),
                             minlength=len(data.problems)).astype(np.float64)
        if (data.weight * counts[data.example_prompt]).sum() > 0:
            draws[b] = _correlations(data, per_prompt, counts)
    jackknife = np.full((len(data.problems), len(ns), len(METRICS)), np.nan)
    if bootstrap:
        for p in range(len(data.problems)):  # leave one prompt out: BCa's acceleration
            counts = np.ones(len(data.problems))
            counts[p] = 0.0
            if (data.weight * counts[data.example_prompt]).sum() > 0:
                jackknife[p] = _correlations(data, per_prompt, counts)
    correlations = []
    for i, n in enumerate(ns):
        for m, metric in enumerate(METRICS):
            row: dict[str, Any] = {"n": n, "metric": metric, "rho": float(point[i, m]),
                                   "lo": float("nan"), "hi": float("nan"),
                                   "resamples": int(np.isfinite(draws[:, i, m]).sum())}
            if np.isfinite(point[i, m]) and bootstrap:
                low, high, reason = bca_interval(float(point[i, m]), draws[:, i, m],
                                                 [jackknife[:, i, m]], confidence)
                row.update(lo=float("nan") if low is None else low,
                           hi=float("nan") if high is None else high)
                if reason:
                    row["reason"] = reason
            correlations.append(row)
    out["correlations"] = correlations
    return out


def annotate(results: dict[str, Any], table: ScoreTable, group: str | None = None
             ) -> dict[str, Any]:
    """Add what the score table tells about ``results`` (from :func:`predictiveness` on
    ``table``'s candidates, or on its examples of ``group``): ``warnings`` (a candidate is the
    reference; Cov_(N/2) saturated, :mod:`lmcoverage.metrics.warnings`), ``provenance`` (how
    the table was made) and, for a table built from ``lmcoverage reference`` (columns
    ``ref_correct``/``ref_samples``), each ``cov_half_n`` entry's ``normaliser_lo`` and
    ``normaliser_hi``: Cov_(N/2) with p(x) at both ends of its per-prompt interval
    (:mod:`lmcoverage.metrics.normaliser`). Returns ``results``."""
    from lmcoverage.metrics.normaliser import table_normaliser_range
    from lmcoverage.metrics.warnings import degenerate_warnings

    names = [c["name"] for c in results["candidates"]]
    half = [n / 2 for n in results["ns"]]
    cov = np.array([[p["cov"] for p in c["cov_half_n"]] for c in results["candidates"]])
    sub = table.select_models(names) if names != table.models else table
    results["warnings"] = degenerate_warnings(sub, half, cov)
    results["provenance"] = sub.provenance
    mask = None if group is None else sub.example_column("group") == group
    ranges = table_normaliser_range(sub, half, results["confidence"], mask)
    if ranges is None:
        return results
    for c, lo_row, hi_row in zip(results["candidates"], *ranges, strict=True):
        for p, lo, hi in zip(c["cov_half_n"], lo_row, hi_row, strict=True):
            p["normaliser_lo"], p["normaliser_hi"] = float(lo), float(hi)
    return results


def _finite(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def _paired_line(row: dict[str, Any]) -> str:
    """One N's paired difference in words (the sign convention: negative rho predicts)."""
    n = row["n"]
    if not _finite(row["delta"]):
        return f"Pass@{n}: D_N undefined ({row.get('reason')})."
    head = (f"Pass@{n}: D = rho(Cov_{n / 2:g}) - rho(CE) = {row['rho_cov']:+.2f} - "
            f"({row['rho_ce']:+.2f}) = {row['delta']:+.2f}")
    lo, hi = row["lo"], row["hi"]
    if not (_finite(lo) and _finite(hi)):
        return f"{head} (no interval: {row.get('reason')})."
    interval = f"{head} [{lo:+.2f}, {hi:+.2f}]"
    if row.get("reason"):
        return f"{interval}: no conclusion ({row['reason']})."
    if hi < 0:
        return f"{interval}: coverage ranks the candidates more like Pass@{n} than CE does."
    if lo > 0:
        return f"{interval}: cross-entropy ranks them more like Pass@{n} than coverage does."
    return f"{interval}: no difference shown (the interval contains 0)."


def reading(results: dict[str, Any]) -> str:
    """A plain-words reading: the warnings, the paired differences D_N, and which metrics'
    marginal intervals exclude zero (or the one line saying there is no correlation)."""
    lines = list(results.get("warnings", []))
    if "no_correlation" in results:
        lines.append(results["no_correlation"] + "; the profiles, Pass@k and the picks are "
                     "still reported.")
        return "\n\n".join(lines)
    lines += [_paired_line(row) for row in results.get("paired", [])]
    labels = {"cov_half_n": "Cov_(N/2)", "kl": "KL", "cross_entropy": "cross-entropy"}
    for n in results["ns"]:
        parts = []
        for row in (r for r in results["correlations"] if r["n"] == n):
            label = labels[row["metric"]]
            rho, lo, hi = row["rho"], row["lo"], row["hi"]
            if not _finite(rho):
                verdict = "undefined (a constant ranking)"
            elif not (_finite(lo) and _finite(hi)):
                verdict = f"rho {rho:+.2f} (no interval)"
            elif row.get("reason"):
                verdict = f"rho {rho:+.2f} [{lo:+.2f}, {hi:+.2f}]: no conclusion (point mass)"
            elif hi < 0:
                verdict = f"rho {rho:+.2f} [{lo:+.2f}, {hi:+.2f}]: predictive (interval below 0)"
            elif lo > 0:
                verdict = (f"rho {rho:+.2f} [{lo:+.2f}, {hi:+.2f}]: ranks the wrong way "
                           "(interval above 0)")
            else:
                verdict = f"rho {rho:+.2f} [{lo:+.2f}, {hi:+.2f}]: inconclusive (contains 0)"
            parts.append(f"{label} {verdict}")
        lines.append(f"Pass@{n}: " + "; ".join(parts) + ".")
    lines.append("A negative rank correlation means the metric predicts Pass@N (lower metric, "
                 "higher Pass@N); D < 0 means coverage predicts better than cross-entropy. "
                 "KL and cross-entropy differ by pi_D's entropy, which is the same for every "
                 "candidate, so their correlations coincide. Intervals: D by a "
                 f"{results['confidence']:.0%} BCa bootstrap resampling prompts and candidates; "
                 f"each rho by a BCa bootstrap over {results['problems']} prompts "
                 f"({results['bootstrap']} resamples).")
    return "\n\n".join(lines)
