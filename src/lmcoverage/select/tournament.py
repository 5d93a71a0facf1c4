"""Coverage tournaments (Eq. 28-29, Thm 6.3; Eq. 32, Thm 6.4) and their on-policy inputs.

A tournament needs only the log-likelihood of each held-out response under each candidate:
no pi_D, and (for the simple tournament) no sampling. For candidate j and opponent k,

    hatCov_N(pi_k || pi_j) = sum_i w_i 1[ pi_k(y_i|x_i) >= N pi_j(y_i|x_i) ] / sum_i w_i   (Eq. 28)

is the (weighted) fraction of held-out examples on which the opponent's likelihood is at least
N times the candidate's. As in ``coverage_profile``, the event is inclusive and compared on the
log-ratio with the package's one tie rule (:mod:`lmcoverage.metrics.threshold`):
``loglik[k, i] - loglik[j, i] >= log N - atol``. An example that both give probability zero
(both ``-inf``, log-ratio NaN) never counts; one that the candidate gives zero and the opponent
does not always counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.metrics._validate import as_float_array, as_weights, check_loglik
from lmcoverage.metrics.threshold import TIE_ATOL, check_atol, log_threshold, ratio_at_least
from lmcoverage.select._inputs import (
    Candidates,
    Scores,
    candidates,
    threshold_n,
)
from lmcoverage.select.result import Selection, build_selection


def _beats(loglik: NDArray[np.float64], j: int, n: float, atol: float) -> NDArray[np.bool_]:
    """(candidates, examples) indicator pi_k >= N pi_j (tie rule; both -inf: no)."""
    with np.errstate(invalid="ignore"):
        return ratio_at_least(np.subtract(loglik, loglik[j]), n, atol)


def pairwise_coverage(
    loglik: Scores, n: float, *, weights: ArrayLike | None = None, atol: float = TIE_ATOL
) -> NDArray[np.float64]:
    """All pairwise empirical coverages hatCov_N(pi_k || pi_j) (Eq. 28).

    Args:
        loglik: (candidates, examples) log pi_j(y_i|x_i), or a ScoreTable.
        n: the threshold N >= 1.
        weights: optional (examples,) non-negative weights (default: the table's, or ones).
        atol: tie tolerance in nats on the log-ratio (a ratio of exactly N counts).

    Returns:
        (candidates, candidates) float64 ``P`` with ``P[j, k]`` = hatCov_N(pi_k || pi_j):
        rows are candidates, columns opponents; the diagonal is NaN (not a comparison).

    Cost: candidates^2 x examples comparisons and half as many subtractions; equal weights
    (the default) count exactly in integers. See ``benchmarks/select.md`` for timings.
    """
    return _pairwise(candidates(loglik, weights), threshold_n(n), check_atol(atol))


def _pairwise(cands: Candidates, n: float, atol: float) -> NDArray[np.float64]:
    """Eq. 28 for every ordered pair, one subtraction per unordered pair.

    d = loglik[o] - loglik[j] is computed once per pair {j, o}: o beats j where d >= t and
    j beats o where d <= -t, t = log N - atol (float subtraction is exactly antisymmetric, so
    this is the same as comparing loglik[j] - loglik[o]). Each step works on one (examples,)
    vector, which stays in cache; zero-weight examples are dropped first.
    """
    keep = cands.weights > 0
    ll = np.ascontiguousarray(cands.loglik[:, keep])
    w = np.ascontiguousarray(cands.weights[keep])
    k = ll.shape[0]
    t = float(log_threshold(n, atol))
    uniform = bool((w == w[0]).all())
    diff = np.empty(ll.shape[1], dtype=np.float64)
    hit = np.empty(ll.shape[1], dtype=bool)

    def mass(mask: NDArray[np.bool_]) -> float:
        return float(np.count_nonzero(mask)) if uniform else float(np.dot(mask, w))

    out = np.full((k, k), np.nan, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # -inf - -inf = NaN: never counts
        for j in range(k):
            for o in range(j + 1, k):
                np.subtract(ll[o], ll[j], out=diff)
                out[j, o] = mass(np.greater_equal(diff, t, out=hit))
                out[o, j] = mass(np.less_equal(diff, -t, out=hit))
    return out / (ll.shape[1] if uniform else w.sum())


def _max_off_diagonal(mat: NDArray[np.float64]) -> NDArray[np.float64]:
    masked = np.where(np.eye(mat.shape[0], dtype=bool), -np.inf, mat)
    return np.asarray(masked.max(axis=1), dtype=np.float64)


def simple_tournament(
    loglik: Scores,
    n: float,
    *,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    atol: float = TIE_ATOL,
) -> Selection:
    """The simple coverage tournament (Eq. 29, Thm 6.3).

    Picks argmin_j max_{k != j} hatCov_N(pi_k || pi_j): the candidate that no opponent beats by
    a factor N on much held-out data. Guarantee (Thm 6.3): Cov_{N^(1+a)}(pick) <~
    min_j Cov_{N^a}(pi_j) + 1/N^(1-a) + log(|Pi|/delta)/n, also under misspecification.

    Args:
        loglik: (candidates, examples) held-out log-likelihoods, or a ScoreTable.
        n: the threshold N >= 1.
        weights: optional (examples,) non-negative example weights.
        names: candidate names (default: the table's models, or "0", "1", ...).
        atol: tie tolerance in nats on the log-ratio (a ratio of exactly N counts).

    Returns:
        A :class:`Selection` with ``statistic[j] = max_k pairwise[j, k]`` and ``pairwise``.
        Ties (within :data:`~lmcoverage.select.result.TIE_RTOL`) go to the lower held-out
        cross-entropy, then the name (:data:`~lmcoverage.select.result.TIE_BREAK`).
    """
    cands = candidates(loglik, weights, names, min_candidates=2)
    n_value = threshold_n(n)
    atol = check_atol(atol)
    pairwise = _pairwise(cands, n_value, atol)
    stat = _max_off_diagonal(pairwise)
    return build_selection("tournament", cands, stat, {"n": n_value, "atol": atol},
                           pairwise=pairwise, contest=pairwise)


def offset_tournament(
    loglik: Scores,
    n: float,
    *,
    onpolicy: ArrayLike,
    a: float = 0.5,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    atol: float = TIE_ATOL,
) -> Selection:
    """The offset tournament (Eq. 32, Thm 6.4).

    Picks argmin_j max_{k != j} [ hatCov_N(pi_k || pi_j) - 2 N^a onpolicy[j, k] ]. The offset
    removes the 1/N^(1-a) term of Thm 6.3, so it helps most at small N. Eq. 32 also lets
    k = j, which adds the value 0 (for N > 1) and only clips the statistic at 0; leaving it out
    keeps the ranking informative and the pick is still a minimiser of Eq. 32.

    Args:
        loglik: (candidates, examples) held-out log-likelihoods, or a ScoreTable.
        n: the threshold N >= 1.
        a: the exponent a >= 0 of Thm 6.4 (the offset weight is 2 N^a). The theorem needs
            a > 0 and N^(1-2a) >= 8 (e.g. a = 0.1 with N >= 14); outside it (a = 0.5 at any
            N) the offset is a heuristic.
        onpolicy: (candidates, candidates), ``onpolicy[j, k]`` = hatCov^{pi_j}_N(pi_k || pi_j),
            the chance over the held-out prompts and y ~ pi_j(.|x) that pi_k(y|x) >= N pi_j(y|x)
            (see :func:`onpolicy_from_samples`, :func:`onpolicy_exact`); diagonal ignored.
        weights, names, atol: as in :func:`simple_tournament` (same tie rules).
    """
    cands = candidates(loglik, weights, names, min_candidates=2)
    n_value = threshold_n(n)
    atol = check_atol(atol)
    a_value = float(a)
    if not np.isfinite(a_value) or a_value < 0:
        raise InputError(f"a: must be a finite number >= 0, got {a}")
    k = cands.size
    op = np.array(onpolicy, dtype=np.float64)
    if op.shape != (k, k):
        raise InputError(f"onpolicy: expected shape ({k}, {k}), got {op.shape}")
    np.fill_diagonal(op, np.nan)
    off = ~np.eye(k, dtype=bool)
    if np.isnan(op[off]).any() or (op[off] < 0).any() or (op[off] > 1).any():
        bad = tuple(int(i) for i in np.argwhere(off & ~((op >= 0) & (op <= 1)))[0])
        raise InputError(f"onpolicy: entries must be probabilities in [0, 1], got "
                         f"{op[bad]} at {bad}")
    pairwise = _pairwise(cands, n_value, atol)
    contest = pairwise - 2.0 * n_value ** a_value * op
    stat = _max_off_diagonal(contest)
    return build_selection("offset", cands, stat, {"n": n_value, "a": a_value, "atol": atol},
                           pairwise=pairwise, onpolicy=op, contest=contest)


def onpolicy_from_samples(
    sample_loglik: ArrayLike, n: float, *, weights: ArrayLike | None = None,
    atol: float = TIE_ATOL,
) -> NDArray[np.float64]:
    """Estimate hatCov^{pi_j}_N(pi_k || pi_j) from responses sampled by each candidate (Eq. 32).

    Args:
        sample_loglik: (candidates, candidates, prompts, samples); entry [j, k, i, s] is
            log pi_k(y|x_i) for the s-th response y ~ pi_j(.|x_i) sampled by candidate j on
            held-out prompt i, scored by candidate k.
        n: the threshold N >= 1.
        weights: optional (prompts,) prompt weights.
        atol: tie tolerance in nats on the log-ratio (a ratio of exactly N counts).

    Returns:
        (candidates, candidates) ``onpolicy[j, k]`` = sum_i w_i mean_s 1[pi_k >= N pi_j] / sum w;
        diagonal NaN.
    """
    s = as_float_array("sample_loglik", sample_loglik, ndim=4)
    check_loglik("sample_loglik", s)
    k = s.shape[0]
    if s.shape[1] != k:
        raise InputError(f"sample_loglik: expected shape (C, C, prompts, samples) with the same "
                         f"C twice, got {s.shape}")
    w = as_weights(weights, s.shape[2])
    n_value, atol = threshold_n(n), check_atol(atol)
    out = np.empty((k, k), dtype=np.float64)
    for j in range(k):
        flat = s[j].reshape(k, -1)
        frac = _beats(flat, j, n_value, atol).reshape(k, *s.shape[2:]).mean(axis=2)
        out[j] = frac @ w / w.sum()
    np.fill_diagonal(out, np.nan)
    return out


def onpolicy_exact(
    support_logp: ArrayLike, n: float, *, weights: ArrayLike | None = None,
    atol: float = TIE_ATOL,
) -> NDArray[np.float64]:
    """hatCov^{pi_j}_N(pi_k || pi_j) exactly, when every prompt's support is enumerable.

    Args:
        support_logp: (candidates, prompts, responses) log pi_k(y|x_i) of every response y
            in an enumeration of the responses to held-out prompt i (pad with ``-inf``).
            Each candidate's probabilities must sum to 1 over the enumeration.
        n: the threshold N >= 1.
        weights: optional (prompts,) prompt weights.
        atol: tie tolerance in nats on the log-ratio (a ratio of exactly N counts).

    Returns:
        (candidates, candidates) ``onpolicy[j, k]`` =
        sum_i w_i P_{y ~ pi_j(.|x_i)}[pi_k(y|x_i) >= N pi_j(y|x_i)] / sum w; diagonal NaN.
    """
    lp = as_float_array("support_logp", support_logp, ndim=3)
    check_loglik("support_logp", lp)
    mass = np.exp(lp)
    totals = mass.sum(axis=2)
    if not np.allclose(totals, 1.0, atol=1e-6):
        j, i = (int(v) for v in np.argwhere(~np.isclose(totals, 1.0, atol=1e-6))[0])
        raise InputError(f"support_logp: candidate {j}'s probabilities on prompt {i} sum to "
                         f"{totals[j, i]:.6g}, not 1 (enumerate the whole support)")
    k, prompts, _ = lp.shape
    w = as_weights(weights, prompts)
    n_value, atol = threshold_n(n), check_atol(atol)
    out = np.empty((k, k), dtype=np.float64)
    for j in range(k):
        flat = lp.reshape(k, -1)
        hit = _beats(flat, j, n_value, atol).reshape(lp.shape)
        per_prompt = (hit * mass[j]).sum(axis=2)  # (candidates, prompts)
        out[j] = per_prompt @ w / w.sum()
    np.fill_diagonal(out, np.nan)
    return out
