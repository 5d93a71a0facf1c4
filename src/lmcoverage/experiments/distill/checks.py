"""distill: The effect checks: what the theorem predicts, as thresholds on the measurement."""

from __future__ import annotations

from typing import Any

from lmcoverage.experiments.theory_common import Check, tuned_summary


def effect_checks(best: dict[str, dict[str, float]], horizons: list[int]) -> list[Check]:
    """The effect checks of the theorem (thresholds on the measurement)."""
    lo, hi = str(min(horizons)), str(max(horizons))
    plain, trunc = best["plain"], best["truncated"]
    spread = max(trunc.values()) - min(trunc.values())
    return [
        Check(
            "plain distillation with a constant step degrades with H (as SGD, Prop 5.1): "
            ">= 0.1 worse at the largest H",
            f"plain: H={lo}: {plain[lo]:.3f}, H={hi}: {plain[hi]:.3f}",
            plain[hi] - plain[lo] >= 0.1,
        ),
        Check(
            "Thm 6.2: truncated-gradient distillation is horizon-free (Cov_N varies <= 0.05 "
            "across H)",
            "truncated: " + ", ".join(f"H={h}: {v:.3f}" for h, v in trunc.items())
            + f" (spread {spread:.3f})",
            spread <= 0.05,
        ),
        Check(
            "truncated beats plain distillation at the largest H by >= 0.1",
            f"H={hi}: plain {plain[hi]:.3f} vs truncated {trunc[hi]:.3f}",
            plain[hi] - trunc[hi] >= 0.1,
        ),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Best final Cov_N per method and H, then the checks."""
    return tuned_summary(results)
