"""Does coverage predict Best-of-N? Scores (pi_D's responses) against verdicts (sampled Pass@N).

Per candidate: the coverage profile N -> Cov_N (Eq. 1) with Wilson intervals, KL and
cross-entropy from a ScoreTable, and the unbiased Pass@k from a verdicts file. Across
candidates: Spearman's rank correlation of Pass@N with Cov_{N/2} (the pairing of the paper's
Figure 1 and of Prop D.7, which lower-bounds BoN regret by Cov_{2N}), with KL and with
cross-entropy, with a percentile bootstrap interval over prompts (prompts are resampled with
replacement; a prompt's held-out examples and its verdicts move together). And the candidate
each selector picks (tournament Eq. 29 at N/2, cross-entropy, KL, the Cov_{N/2} oracle) with its
Pass@N. Every number comes from :mod:`lmcoverage.metrics` and :mod:`lmcoverage.select`.

A negative correlation means the metric predicts Pass@N (smaller Cov / KL / CE, higher Pass@N).
KL and cross-entropy differ by pi_D's entropy, the same for every candidate, so their rank
correlations coincide by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable
from lmcoverage.verify.verdicts import Counts, powers_of_two

METRICS = ("cov_half_n", "kl", "cross_entropy")
SELECTORS = ("tournament", "cross-entropy", "kl", "oracle")


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


def _picks(data: Aligned, n: int, pass_n: NDArray[np.float64]) -> list[dict[str, Any]]:
    """What each selector picks at N (tournament and oracle at N/2) and its Pass@N."""
    from lmcoverage.select import min_cross_entropy, min_kl, oracle_coverage, simple_tournament

    weight = data.weight
    selections = [
        simple_tournament(data.loglik, n / 2, weight, data.names),
        min_cross_entropy(data.loglik, weight, data.names),
        min_kl(data.loglik, data.loglik_data, weight, data.names),
        oracle_coverage(data.loglik, data.loglik_data, n / 2, weight, data.names),
    ]
    best = float(pass_n.max())
    return [{"n": n, "method": s.method, "pick": s.name, "pass_at_n": float(pass_n[s.index]),
             "best_pass_at_n": best, "regret": best - float(pass_n[s.index])}
            for s in selections]


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
    ks = powers_of_two(k_max)
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
    point = _correlations(data, per_prompt, np.ones(len(data.problems)))
    rng = np.random.default_rng(seed)
    draws = np.full((bootstrap, len(ns), len(METRICS)), np.nan)
    for b in range(bootstrap):
        counts = np.bincount(rng.integers(0, len(data.problems), len(data.problems)),
                             minlength=len(data.problems)).astype(np.float64)
        if (data.weight * counts[data.example_prompt]).sum() > 0:
            draws[b] = _correlations(data, per_prompt, counts)
    tail = (1 - confidence) / 2 * 100
    correlations = []
    for i, n in enumerate(ns):
        for m, metric in enumerate(METRICS):
            finite = draws[:, i, m][np.isfinite(draws[:, i, m])]
            bounds = (np.percentile(finite, [tail, 100 - tail]) if finite.size
                      else np.array([np.nan, np.nan]))
            correlations.append({"n": n, "metric": metric, "rho": float(point[i, m]),
                                 "lo": float(bounds[0]), "hi": float(bounds[1]),
                                 "resamples": int(finite.size)})
    return {
        "candidates": candidates,
        "ns": ns,
        "problems": len(data.problems),
        "examples": int(data.loglik.shape[1]),
        "samples_per_prompt": k_max,
        "confidence": confidence,
        "bootstrap": bootstrap,
        "seed": seed,
        "correlations": correlations,
        "picks": [p for n in ns for p in _picks(data, n, per_prompt[n].mean(axis=1))],
    }


def reading(results: dict[str, Any]) -> str:
    """A plain-words reading of the correlations: which metrics' intervals exclude zero."""
    lines = []
    labels = {"cov_half_n": "Cov_(N/2)", "kl": "KL", "cross_entropy": "cross-entropy"}
    for n in results["ns"]:
        parts = []
        for row in (r for r in results["correlations"] if r["n"] == n):
            label = labels[row["metric"]]
            rho, lo, hi = row["rho"], row["lo"], row["hi"]
            if not np.isfinite(rho):
                verdict = "undefined (a constant ranking)"
            elif not (np.isfinite(lo) and np.isfinite(hi)):
                verdict = f"rho {rho:+.2f} (no interval)"
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
                 "higher Pass@N). KL and cross-entropy differ by pi_D's entropy, which is the "
                 f"same for every candidate, so their correlations coincide. Intervals: "
                 f"{results['confidence']:.0%} percentile bootstrap over "
                 f"{results['problems']} prompts ({results['bootstrap']} resamples).")
    return "\n\n".join(lines)
