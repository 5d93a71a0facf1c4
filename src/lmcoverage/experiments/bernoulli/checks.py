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
) -> list[Check]:
    """The effect checks of the theorem (thresholds on the measurement)."""
    rare = mc["rare"]
    agree = all(
        lo <= ex <= hi
        for fam in families
        for lo, ex, hi in zip(mc[fam]["frac_inf_lo"], mc[fam]["exact_frac_inf"],
                              mc[fam]["frac_inf_hi"], strict=True)
    )
    quant_ok = all(
        q <= c * np.log(1 / delta) / n + 1e-12
        for fam in families
        for n, qs in zip(sizes, mc[fam]["quantile_cov"], strict=True)
        for q, c in zip(qs, c_hat.max(axis=0), strict=True)
    )
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
            "Monte Carlo P[KL = inf] agrees with the exact (1-p*)^n + p*^n",
            "inside the 99.9% Wilson interval at every (p*, n)" if agree
            else "outside the interval somewhere",
            agree,
        ),
        Check(
            "E[KL] = inf, so the KL-based bound (Prop 3.1) says nothing",
            "mean KL over seeds, p* = c/n: "
            + ", ".join(f"{k:g}" for k in rare["mean_kl"]),
            all(np.isinf(rare["mean_kl"])),
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
            "every simulated family's (1-delta)-quantile of Cov_N is below C_hat log(1/delta)/n",
            "holds at every (p*, n, N)" if quant_ok else "violated somewhere",
            quant_ok,
        ),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check: claim, measurement, holds."""
    return check_rows(results)
