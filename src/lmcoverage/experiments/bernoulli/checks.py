"""bernoulli: The effect checks: what the theorem predicts, as thresholds on the measurement."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmcoverage.experiments.theory_common import Check, check_rows


def effect_checks(
    mc: dict[str, dict[str, list[Any]]],
    families: list[str],
    sizes: list[int],
    ns: list[float],
    c_hat: np.ndarray,
    slopes: list[float],
    delta: float,
    c_delta: np.ndarray,
) -> list[Check]:
    """The effect checks of Sec. 3's claims (thresholds on the measurement).

    ``c_delta``: (deltas, ns) worst-case (1-delta)-quantile of Cov_N times n / log(1/delta) at
    the largest n, one row per delta.
    """
    rare = mc["rare"]
    agree = all(
        lo <= ex <= hi
        for fam in families
        for lo, ex, hi in zip(mc[fam]["frac_inf_lo"], mc[fam]["exact_frac_inf"],
                              mc[fam]["frac_inf_hi"], strict=True)
    )
    case1 = [(fam, n, f) for fam in families
             for n, f, c1 in zip(sizes, mc[fam]["frac_cov2_zero"], mc[fam]["case1"], strict=True)
             if c1]
    delta_ratio = c_delta.max(axis=0) / np.maximum(c_delta.min(axis=0), 1e-300)
    ratio = c_hat.max(axis=0) / np.maximum(c_hat.min(axis=0), 1e-300)
    return [
        Check(
            "KL of the MLE is infinite with positive probability at every n "
            "(p* = c/n: about exp(-c))",
            "fraction of seeds with KL = inf, p* = c/n: "
            + ", ".join(f"n={n}: {f:.3f}" for n, f in zip(sizes, rare["frac_inf"], strict=True)),
            min(rare["frac_inf"]) > 0.0,
        ),
        Check(
            "Monte Carlo P[KL = inf] agrees with the exact (1-p*)^n (k = 0)",
            "inside the 99.9% Wilson interval at every (p*, n)" if agree
            else "outside the interval somewhere",
            agree,
        ),
        Check(
            "Sec. 3 case 1: once n >= 8 log(1/delta)/p* (Chernoff), p_hat >= p*/2 and "
            "Cov_2 = 0 with probability >= 1 - delta",
            (f"fraction of seeds with Cov_2 = 0 where n p* >= 8 log(1/delta): min "
             f"{min(f for _, _, f in case1):.4f} over {len(case1)} (p*, n)") if case1
            else "no (p*, n) with n p* >= 8 log(1/delta)",
            bool(case1) and min(f for _, _, f in case1) >= 1.0 - delta,
        ),
        Check(
            f"Cov_N (N >= 2) <= C log(1/delta)/n w.p. 1 - delta (delta={delta}), "
            "C independent of n and p*",
            "worst-case C_hat over p* and n: "
            + ", ".join(f"N={n:g}: {c:.3g}" for n, c in zip(ns, c_hat.max(axis=0), strict=True))
            + "; max/min of C_hat across n: "
            + ", ".join(f"{r:.2f}" for r in ratio),
            bool(np.all(ratio <= 3.0)),
        ),
        Check(
            "the worst-case (1-delta)-quantile of Cov_N falls like 1/n",
            "log-log slope against n: " + ", ".join(
                f"N={n:g}: {s:.2f}" for n, s in zip(ns, slopes, strict=True)),
            all(-1.2 <= s <= -0.8 for s in slopes),
        ),
        Check(
            "Cov_N <= C log(1/delta)/n: the worst-case (1-delta)-quantile at the largest n grows "
            "like log(1/delta) (C_hat stable across delta)",
            "C_hat per delta: " + "; ".join(
                f"N={n:g}: " + ", ".join(f"{c:.3g}" for c in c_delta[:, j])
                for j, n in enumerate(ns)) + "; max/min across delta: "
            + ", ".join(f"{r:.2f}" for r in delta_ratio),
            bool(np.all(delta_ratio <= 3.0)),
        ),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check: claim, measurement, holds."""
    return check_rows(results)
