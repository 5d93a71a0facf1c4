"""metrics.normaliser (Cov_N with p(x) at both ends of its interval) and metrics.warnings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from lmcoverage.errors import InputError
from lmcoverage.metrics import coverage_profile
from lmcoverage.metrics.normaliser import coverage_normaliser_range, normaliser_interval
from lmcoverage.metrics.warnings import degenerate_warnings, reference_candidates
from lmcoverage.scoretable import ScoreTable


@pytest.mark.parametrize(("method", "scipy_name"), [("wilson", "wilson"),
                                                     ("clopper-pearson", "exact")])
def test_interval_matches_scipy(method: str, scipy_name: str) -> None:
    c, k = np.array([1, 3, 8, 16]), np.array([16, 16, 8, 16])
    lo, hi = normaliser_interval(c, k, 0.9, method)  # type: ignore[arg-type]
    for i in range(c.size):
        want = binomtest(int(c[i]), int(k[i])).proportion_ci(0.9, scipy_name)
        assert (lo[i], hi[i]) == pytest.approx((want.low, want.high), abs=1e-9)
    assert (lo > 0).all()
    with pytest.raises(InputError, match="1 <= c <= K"):
        normaliser_interval([0], [4])


def test_range_brackets_the_estimate_and_shrinks_with_k() -> None:
    rng = np.random.default_rng(0)
    ref = -rng.exponential(2.0, 200)  # log pi_ref
    loglik = np.stack([ref - rng.exponential(s, 200) for s in (0.5, 1.0, 2.0)])
    ns = [2.0, 4.0, 8.0]
    widths = []
    for k in (8, 64):
        c = np.full(200, k // 2)
        data = ref - np.log(c / k)
        low, high = coverage_normaliser_range(loglik, data, c, np.full(200, k), ns)
        est = np.stack([coverage_profile(data - row, ns) for row in loglik])
        assert (low <= est).all() and (est <= high).all() and (low < high).any()
        widths.append((high - low).mean())
    assert widths[1] < widths[0]  # more samples, a tighter normaliser


def _table(loglik: np.ndarray, data: np.ndarray, **prov: object) -> ScoreTable:
    names = [f"m{i}" for i in range(loglik.shape[0])]
    return ScoreTable.from_matrix(loglik, names, loglik_data=data).with_provenance(**prov)


def test_reference_warning_from_provenance_and_from_equal_scores() -> None:
    data = np.log(np.full(5, 0.5))
    loglik = np.stack([data, data - 1.0, data - 2.0])
    assert [n for n, _ in reference_candidates(_table(loglik, data))] == ["m0"]
    prov = {"reference": "/base@temperature=0.7",
            "candidates": {"m1": "/base@temperature=0.7", "m2": "/base"}}
    found = reference_candidates(_table(loglik, data, **prov))
    assert [n for n, _ in found] == ["m0", "m1"]
    assert "decoding settings" in found[1][1]
    clean = _table(np.stack([data - 1.0, data - 2.0]), data, reference="/other",
                   candidates={"m0": "/base", "m1": "/base@temperature=0.7"})
    assert reference_candidates(clean) == []
    assert degenerate_warnings(clean, [2.0, 4.0]) == []


def test_saturation_warning_fires_only_when_every_candidate_saturates() -> None:
    data = np.zeros(200)
    far = np.stack([data - 10.0, data - 12.0])  # ratio e^10 >= every N asked
    lines = degenerate_warnings(_table(far, data), [2.0, 16.0])
    assert len(lines) == 1 and "saturated" in lines[0] and "larger N" in lines[0]
    assert degenerate_warnings(_table(far, data), [2.0, 1e6]) == []  # Cov_1e6 = 0
    with_ref = np.vstack([far, data[None, :]])  # the reference itself does not unsaturate
    lines = degenerate_warnings(_table(with_ref, data), [2.0, 16.0])
    assert len(lines) == 2 and "but the reference" in lines[1]
    mixed = np.stack([data - 10.0, np.where(np.arange(200) < 10, -10.0, -0.1)])
    assert degenerate_warnings(_table(mixed, data), [2.0, 16.0]) == []
