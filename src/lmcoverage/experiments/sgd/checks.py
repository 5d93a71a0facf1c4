"""sgd: The effect checks: what the theorem predicts, as thresholds on the measurement."""

from __future__ import annotations

from typing import Any

from lmcoverage.experiments.theory_common import Check, tuned_summary


def effect_checks(best: dict[str, dict[str, float]], horizons: list[int]) -> list[Check]:
    """The effect checks of the theorem (thresholds on the measurement)."""
    lo, hi = str(min(horizons)), str(max(horizons))
    sgd, nsgd = best["sgd"], best["normalized_sgd"]
    spread = max(nsgd.values()) - min(nsgd.values())
    return [
        Check(
            "Prop 5.1: vanilla SGD's best Cov_N at the largest H is >= 0.1 above the smallest H's",
            f"SGD: H={lo}: {sgd[lo]:.3f}, H={hi}: {sgd[hi]:.3f} (difference "
            f"{sgd[hi] - sgd[lo]:.3f})",
            sgd[hi] - sgd[lo] >= 0.1,
        ),
        Check(
            "Thm 5.1: normalized SGD's best Cov_N varies by <= 0.05 across H",
            "normalized SGD: " + ", ".join(f"H={h}: {v:.3f}" for h, v in nsgd.items())
            + f" (spread {spread:.3f})",
            spread <= 0.05,
        ),
        Check(
            "normalized SGD beats vanilla SGD at the largest H by >= 0.1",
            f"H={hi}: SGD {sgd[hi]:.3f} vs normalized SGD {nsgd[hi]:.3f} "
            f"(gap {sgd[hi] - nsgd[hi]:.3f})",
            sgd[hi] - nsgd[hi] >= 0.1,
        ),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Best final Cov_N per method and H, then the checks."""
    return tuned_summary(results)
