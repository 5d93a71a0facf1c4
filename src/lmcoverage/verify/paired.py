"""Paired statistics for ``compare``: does coverage predict Best-of-N better than cross-entropy?

For one N, across candidates j:

    rho_cov = Spearman(Pass@N_j, Cov_{N/2}(pi_j))      (Cov_N: Eq. 1; the N/2 pairing of Prop D.7)
    rho_ce  = Spearman(Pass@N_j, CE(pi_j))
    D_N     = rho_cov - rho_ce

Both correlations are negative when the metric predicts Pass@N (lower metric, higher Pass@N),
so D_N < 0 says coverage ranks the candidates more like Pass@N than cross-entropy does. The 95%
interval of D_N comes from a two-way paired bootstrap: each resample draws prompts with
replacement (a prompt's held-out examples and its verdicts move together) and candidates with
replacement, and recomputes both correlations on that same resample; the interval is BCa
(bias-corrected and accelerated; the acceleration from the jackknife over prompts and over
candidates, pooled as in Efron's multi-sample BCa), so the point estimate is not an end point
unless the bootstrap distribution puts a point mass on it (few candidates, tied metrics:
then ``reason`` says the interval is not informative). Candidates with infinite cross-entropy
(a held-out response of probability zero) rank last on CE, as Spearman ranks +inf.

:func:`selector_regret` gives each selector's regret, max_j Pass@N_j - Pass@N_pick, with a
percentile interval over prompt resamples (the candidate pool is the user's, so it is kept;
the pick is recomputed on every resample). Regret is >= 0 and often 0, so its lower end is
often 0.

Both functions work on plain arrays; ``lmcoverage.verify.predictiveness`` feeds them from a
ScoreTable and a verdicts file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError

#: the :data:`lmcoverage.select.registry.SELECTORS` whose statistic :func:`selector_regret`
#: recomputes per resample (tournament, Eq. 29, and the Cov oracle at N/2)
SELECTORS = ("tournament", "cross-entropy", "kl", "oracle")
_CHUNK = 128  # resamples per vectorised batch (bounds memory at chunk x examples floats)


@dataclass(frozen=True)
class PairedDifference:
    """D_N = rho_cov - rho_ce at one N with its interval; ``reason`` says why a value is
    missing (None) or why the interval is degenerate."""

    n: int
    rho_cov: float | None
    rho_ce: float | None
    delta: float | None
    lo: float | None
    hi: float | None
    resamples: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Regret:
    """Best Pass@N minus the Pass@N of ``selector``'s pick, with a percentile interval."""

    n: int
    selector: str
    pick: str
    regret: float
    lo: float | None
    hi: float | None
    resamples: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Inputs:
    pass_n: NDArray[np.float64]  # (C, P)
    covered: NDArray[np.float64]  # (C, E) 1[log pi_D - log pi_j >= log(N/2)]
    nll: NDArray[np.float64]  # (C, E) -loglik, 0 where infinite
    infinite: NDArray[np.float64]  # (C, E) 1[loglik = -inf]
    weight: NDArray[np.float64]  # (E,)
    example_prompt: NDArray[np.int64]  # (E,)


def _check(pass_n: ArrayLike, loglik: ArrayLike, loglik_data: ArrayLike,
           example_prompt: ArrayLike, weight: ArrayLike | None
           ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                      NDArray[np.int64], NDArray[np.float64]]:
    p = np.asarray(pass_n, dtype=np.float64)
    ll = np.asarray(loglik, dtype=np.float64)
    ld = np.asarray(loglik_data, dtype=np.float64)
    ep = np.asarray(example_prompt)
    if p.ndim != 2 or ll.ndim != 2 or p.shape[0] != ll.shape[0]:
        raise InputError(f"pass_n (candidates, prompts) and loglik (candidates, examples) must "
                         f"share candidates; got shapes {p.shape} and {ll.shape}")
    if ld.shape != (ll.shape[1],) or ep.shape != (ll.shape[1],):
        raise InputError(f"loglik_data and example_prompt: expected ({ll.shape[1]},), got "
                         f"{ld.shape} and {ep.shape}")
    if not np.issubdtype(ep.dtype, np.integer) or (ep < 0).any() or (ep >= p.shape[1]).any():
        raise InputError(f"example_prompt: integers in [0, {p.shape[1]}) expected")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InputError("pass_n: per-prompt Pass@N must lie in [0, 1]")
    if np.isnan(ll).any() or np.isnan(ld).any():
        raise InputError("loglik, loglik_data: NaN")
    w = np.ones(ll.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.shape != (ll.shape[1],) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise InputError("weight: (examples,) finite, >= 0, not all 0")
    return p, ll, ld, ep.astype(np.int64), w


def _inputs(pass_n: ArrayLike, loglik: ArrayLike, loglik_data: ArrayLike,
            example_prompt: ArrayLike, n: int, weight: ArrayLike | None) -> _Inputs:
    from lmcoverage.metrics.threshold import ratio_at_least

    p, ll, ld, ep, w = _check(pass_n, loglik, loglik_data, example_prompt, weight)
    with np.errstate(invalid="ignore"):
        covered = ratio_at_least(ld[None, :] - ll, n / 2).astype(np.float64)
    infinite = np.isneginf(ll)
    return _Inputs(p, covered, np.where(infinite, 0.0, -ll), infinite.astype(np.float64), w, ep)


def _prompt_counts(rng: np.random.Generator, b: int, prompts: int) -> NDArray[np.float64]:
    """(b, prompts) multiplicities of ``b`` resamples of the prompts with replacement."""
    counts = np.zeros((b, prompts))
    np.add.at(counts, (np.repeat(np.arange(b), prompts), rng.integers(0, prompts, b * prompts)),
              1.0)
    return counts


def _rowwise_spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """(B,) Spearman rho of each row pair (average ranks for ties, +inf ranks last); NaN
    where a row is constant."""
    from scipy.stats import rankdata

    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan)


def _correlations(d: _Inputs, prompt_counts: NDArray[np.float64], cands: NDArray[np.int64]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(rho_cov, rho_ce), each (B,), for B resamples: ``prompt_counts`` (B, P) multiplicities
    of the prompts, ``cands`` (B, C') indices of the candidates drawn."""
    rho_cov = np.empty(prompt_counts.shape[0])
    rho_ce = np.empty(prompt_counts.shape[0])
    for s in range(0, prompt_counts.shape[0], _CHUNK):
        counts = prompt_counts[s:s + _CHUNK]
        idx = cands[s:s + _CHUNK]
        ew = d.weight[None, :] * counts[:, d.example_prompt]  # (b, E)
        total = ew.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            passes = counts @ d.pass_n.T / counts.sum(axis=1, keepdims=True)
            cov = ew @ d.covered.T / total
            ce = np.where(ew @ d.infinite.T > 0, np.inf, ew @ d.nll.T / total)
        take = np.take_along_axis
        passes, cov, ce = take(passes, idx, 1), take(cov, idx, 1), take(ce, idx, 1)
        rho_cov[s:s + _CHUNK] = _rowwise_spearman(passes, cov)
        rho_ce[s:s + _CHUNK] = _rowwise_spearman(passes, ce)
    return rho_cov, rho_ce


def _acceleration(groups: Sequence[NDArray[np.float64]]) -> float:
    """BCa acceleration from jackknife values of each resampled factor (Efron 1987,
    multi-sample): a = sum U^3 / n^3 / (6 (sum U^2 / n^2)^1.5), U = (n - 1)(mean - theta_(i))."""
    num = den = 0.0
    for values in groups:
        values = values[np.isfinite(values)]
        if values.size < 2:
            continue
        k = values.size
        u = (k - 1) * (values.mean() - values)
        num += float((u**3).sum()) / k**3
        den += float((u**2).sum()) / k**2
    return num / (6.0 * den**1.5) if den > 0 else 0.0


def bca_interval(point: float, draws: NDArray[np.float64],
                 jackknife: Sequence[NDArray[np.float64]], confidence: float
                 ) -> tuple[float | None, float | None, str | None]:
    """BCa ends ``(lo, hi, reason)`` from bootstrap ``draws`` (NaN draws dropped) and the
    jackknife values of each resampled factor; None ends with a reason when undefined."""
    from scipy.stats import norm

    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None, None, "no resample had a defined statistic"
    if np.all(draws == draws[0]):
        return float(draws[0]), float(draws[0]), "every resample gave the same value"
    below = (np.count_nonzero(draws < point) + 0.5 * np.count_nonzero(draws == point))
    share = below / draws.size
    if share <= 0 or share >= 1:
        return None, None, "the point estimate lies outside the bootstrap distribution"
    z0 = float(norm.ppf(share))
    a = _acceleration(jackknife)
    z = norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    levels = norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    lo, hi = np.quantile(draws, levels)
    if point in (lo, hi):
        return float(lo), float(hi), ("the point estimate is an end of the interval: the "
                                      "bootstrap puts mass on it (few candidates or tied "
                                      "metrics), so the interval is not informative")
    return float(lo), float(hi), None


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def paired_rho_difference(
    pass_n: ArrayLike,
    loglik: ArrayLike,
    loglik_data: ArrayLike,
    example_prompt: ArrayLike,
    n: int,
    weight: ArrayLike | None = None,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """D_N = Spearman(Pass@N, Cov_{N/2}) - Spearman(Pass@N, CE) with a two-way paired BCa
    bootstrap interval (see the module docstring).

    Args:
        pass_n: (candidates, prompts) per-prompt Pass@N of each candidate, e.g.
            ``lmcoverage.metrics.pass_at_k(n_samples, n_correct, N)``; a candidate's Pass@N is
            the mean over prompts.
        loglik: (candidates, examples) log pi_j(y|x) of pi_D's held-out responses (-inf
            allowed: infinite cross-entropy, ranked last).
        loglik_data: (examples,) log pi_D(y|x).
        example_prompt: (examples,) the prompt (column of ``pass_n``) of each example.
        n: N (Pass@N is paired with Cov_{N/2}, Eq. 1 at threshold N/2).
        weight: optional (examples,) example weights (class mixtures); prompts are resampled,
            weights are kept.
        resamples: bootstrap resamples (>= 100 for an interval; 0: point estimate only).
        confidence: level of the interval, in (0, 1).
        seed: seeds the resampling (same seed, same interval).

    Returns:
        A :class:`PairedDifference`; ``resamples`` counts the resamples with both
        correlations defined (a resample whose candidates all tie on a metric has none).
        Fewer than 3 candidates: every value None, with the reason.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise InputError(f"resamples: an integer >= 0, got {resamples!r}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: must lie in (0, 1), got {confidence}")
    if n < 2:
        raise InputError(f"n: N >= 2 (Cov_(N/2) needs N/2 >= 1), got {n}")
    d = _inputs(pass_n, loglik, loglik_data, example_prompt, n, weight)
    n_cands, n_prompts = d.pass_n.shape
    if n_cands < 3:
        return PairedDifference(n, None, None, None, None, None, 0,
                                f"{n_cands} candidates: a rank correlation needs at least 3")
    all_prompts = np.ones((1, n_prompts))
    all_cands = np.arange(n_cands)[None, :]
    rc, re = _correlations(d, all_prompts, all_cands)
    rho_cov, rho_ce = float(rc[0]), float(re[0])
    delta = rho_cov - rho_ce
    if not np.isfinite(delta):
        which = "Pass@N" if np.all(d.pass_n.mean(1) == d.pass_n.mean(1)[0]) else "a metric"
        return PairedDifference(n, _finite_or_none(rho_cov), _finite_or_none(rho_ce), None,
                                None, None, 0, f"undefined: {which} is the same for every "
                                               "candidate")
    if resamples == 0:
        return PairedDifference(n, rho_cov, rho_ce, delta, None, None, 0, "no resamples asked")
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for s in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - s)
        counts = _prompt_counts(rng, b, n_prompts)
        cands = rng.integers(0, n_cands, (b, n_cands))
        c1, c2 = _correlations(d, counts, cands)
        draws[s:s + b] = c1 - c2
    leave_prompt = 1.0 - np.eye(n_prompts)
    jp = np.subtract(*_correlations(d, leave_prompt, np.tile(all_cands, (n_prompts, 1))))
    leave_cand = np.array([np.delete(np.arange(n_cands), j) for j in range(n_cands)])
    jc = np.subtract(*_correlations(d, np.ones((n_cands, n_prompts)), leave_cand))
    lo, hi, reason = bca_interval(delta, draws, [jp, jc], confidence)
    return PairedDifference(n, rho_cov, rho_ce, delta, lo, hi,
                            int(np.isfinite(draws).sum()), reason)


def _selector_statistics(loglik: NDArray[np.float64], loglik_data: NDArray[np.float64],
                         ew: NDArray[np.float64], n: int, selectors: Sequence[str]
                         ) -> dict[str, NDArray[np.float64]]:
    """(B, C) statistic each selector minimises, for B example-weight vectors ``ew`` (B, E)
    at once: held-out CE and KL, Cov_{N/2} (oracle), max_k hatCov_{N/2}(pi_k || pi_j)
    (tournament, Eq. 28-29); the same events and tie rule as :mod:`lmcoverage.select`."""
    from lmcoverage.metrics.threshold import ratio_at_least

    total = ew.sum(axis=1, keepdims=True)
    infinite = np.isneginf(loglik).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        hit_inf = ew @ infinite.T > 0
        ce = np.where(hit_inf, np.inf, ew @ np.where(infinite > 0, 0.0, -loglik).T / total)
        out = {"cross-entropy": ce}
        if "kl" in selectors:
            out["kl"] = np.where(hit_inf, np.inf, ce + (ew @ loglik_data)[:, None] / total)
        if "oracle" in selectors:
            covered = ratio_at_least(loglik_data[None, :] - loglik, n / 2)
            out["oracle"] = ew @ covered.T.astype(np.float64) / total
        if "tournament" in selectors:
            stat = np.full(ce.shape, -np.inf)
            for j in range(loglik.shape[0]):
                beats = ratio_at_least(loglik - loglik[j], n / 2).astype(np.float64)
                beats[j] = 0.0  # not an opponent of itself
                stat[:, j] = (ew @ beats.T / total).max(axis=1)
            out["tournament"] = stat
    return out


def selector_regret(
    pass_n: ArrayLike,
    loglik: ArrayLike,
    loglik_data: ArrayLike,
    example_prompt: ArrayLike,
    n: int,
    names: Sequence[str] | None = None,
    weight: ArrayLike | None = None,
    selectors: Sequence[str] = SELECTORS,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Regret]:
    """Regret max_j Pass@N_j - Pass@N_pick of each selector's pick, with a percentile interval
    over prompt resamples (the pick is recomputed from the resampled held-out examples, Pass@N
    from the resampled prompts' verdicts).

    Args:
        pass_n, loglik, loglik_data, example_prompt, n, weight: as in
            :func:`paired_rho_difference`.
        names: candidate names (default "0", "1", ...).
        selectors: a subset of :data:`SELECTORS` (tournament and oracle at N/2).
        resamples: prompt resamples (0: no interval).

    Returns:
        One :class:`Regret` per selector, in the order given.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise InputError(f"resamples: an integer >= 0, got {resamples!r}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: must lie in (0, 1), got {confidence}")
    p, ll, ld, ep, w = _check(pass_n, loglik, loglik_data, example_prompt, weight)
    names = [str(i) for i in range(ll.shape[0])] if names is None else list(names)
    if len(names) != ll.shape[0]:
        raise InputError(f"names: {len(names)} for {ll.shape[0]} candidates")
    unknown = [s for s in selectors if s not in SELECTORS]
    if unknown:
        raise InputError(f"selectors: unknown {unknown}; choose from {list(SELECTORS)}")
    from lmcoverage.select.registry import get_selector
    from lmcoverage.select.result import rank_candidates

    n_prompts = p.shape[1]
    best = p.mean(axis=1)
    # the point estimate's picks; the tournament and the oracle run at N/2
    picks = [int(get_selector(sel)(ll, n=n / 2, loglik_data=ld, weights=w, names=names).index)
             for sel in selectors]
    point = best.max() - best[picks]
    rng = np.random.default_rng(seed)
    draws = np.full((resamples, len(selectors)), np.nan)
    for s in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - s)
        counts = _prompt_counts(rng, b, n_prompts)
        ew = w[None, :] * counts[:, ep]
        kept = ew.sum(axis=1) > 0
        stats = _selector_statistics(ll, ld, ew, n, selectors)
        passes = counts @ p.T / counts.sum(axis=1, keepdims=True)  # (b, C)
        for r in np.flatnonzero(kept):
            for k, sel in enumerate(selectors):
                pick = rank_candidates(stats[sel][r], stats["cross-entropy"][r], names)[0]
                draws[s + r, k] = passes[r].max() - passes[r, pick]
    tail = (1 - confidence) / 2
    out = []
    for i, sel in enumerate(selectors):
        finite = draws[:, i][np.isfinite(draws[:, i])]
        if finite.size:
            lo, hi = (float(v) for v in np.quantile(finite, [tail, 1 - tail]))
            out.append(Regret(n, sel, names[picks[i]], float(point[i]), lo, hi, finite.size))
        else:
            out.append(Regret(n, sel, names[picks[i]], float(point[i]), None, None, 0,
                              "no resamples" if resamples == 0 else
                              "no resample kept a held-out example"))
    return out
