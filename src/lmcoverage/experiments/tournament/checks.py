"""tournament: The effect checks: what the theorem predicts, as thresholds on the measurement."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmcoverage.experiments.theory_common import Check, check_rows


def thm63_bound(min_cov_na: float, n_thr: float, a: float, size: int, n_cands: int,
           delta: float) -> float:
    """Thm 6.3's right-hand side with constant 1: min Cov_{N^a} + N^-(1-a) + log(|Pi|/d)/n."""
    return min_cov_na + n_thr ** -(1.0 - a) + math.log(n_cands / delta) / size


def effect_checks(results: dict[str, Any]) -> list[Check]:
    """The claims each part tests, judged on the measurements."""
    e1, t63, t64 = results["prop_e1"], results["thm63"], results["thm64"]
    rel = max(abs(r["cov_mle"] - r["prediction"]) / r["prediction"] for r in e1)
    cover_max = max(r["cov_cover"] for r in e1)
    kl_ok = sum(r["kl_mle"] < r["kl_cover"] for r in e1)
    tour = min(r["tournament_cover_rate"] for r in e1)
    ce = [r["ce_cover_rate"] for r in e1]
    within = min(r["fraction_within_bound"] for r in t63)
    small = t64[0]
    return [
        Check("Prop E.1: the likelihood maximiser has the lower KL yet Cov_N = "
              "alpha^2/(2 log M), the other model Cov_N = 0",
              f"KL ordering in {kl_ok}/{len(e1)} pairs; max relative error of Cov_N "
              f"{rel:.1e}; max Cov_N of 'cover' {cover_max:g}",
              kl_ok == len(e1) and rel < 1e-9 and cover_max == 0.0),
        Check("Prop E.1: the tournament picks the covering model, min cross-entropy mostly not",
              f"tournament: at least {tour:.2f} of draws in every pair; min-CE: "
              f"{min(ce):.2f} to {max(ce):.2f}",
              tour >= 0.95 and float(np.mean(ce)) < 0.5),
        Check("Thm 6.3: Cov_(N^(1+a)) of the pick <= min_j Cov_(N^a) + N^-(1-a) + "
              "log(|Pi|/delta)/n (constant 1), with probability 1 - delta",
              f"smallest fraction of draws within the bound: {within:.3f}",
              within >= 1.0 - float(results["config"]["delta"])),
        Check(f"Thm 6.4: at N = {small['n']:g} the offset tournament's pick covers better "
              "than the simple tournament's",
              f"mean Cov: simple {small['simple_mean']:.3g}, offset (exact) "
              f"{small['offset_exact_mean']:.3g}, offset (sampled) "
              f"{small['offset_sampled_mean']:.3g}",
              small["offset_exact_mean"] < small["simple_mean"]
              and small["offset_sampled_mean"] < small["simple_mean"]),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check: claim, measurement, holds."""
    return check_rows(results)
