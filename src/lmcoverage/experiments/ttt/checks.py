"""ttt: The effect checks: what the theorem predicts, as thresholds on the measurement."""

from __future__ import annotations

from typing import Any

from lmcoverage.experiments.theory_common import Check, check_rows


def effect_checks(res: dict[str, Any], horizons: list[int], ns: list[float], rare: float
            ) -> list[Check]:
    """The effect checks of the theorem (thresholds on the measurement)."""
    plain, ttt = res["plain"], res["ttt"]
    h_lo, h_hi = horizons[0], horizons[-1]
    plain_growth = plain["kl"][-1] / plain["kl"][0]
    ttt_growth = ttt["kl"][-1] / ttt["kl"][0]
    cov_t = [c[-1] for c in ttt["cov"]]
    cov_p = [c[-1] for c in plain["cov"]]
    return [
        Check(
            "plain decoding of token-level SGD is a proper estimator: its KL grows ~ H "
            "(Prop 3.2)",
            f"KL at H={h_lo}: {plain['kl'][0]:.4f}, at H={h_hi}: {plain['kl'][-1]:.4f} "
            f"(x{plain_growth:.1f} for H x{h_hi / h_lo:g})",
            plain_growth >= 0.5 * h_hi / h_lo,
        ),
        Check(
            "Thm 6.1: with TTT decoding the KL is horizon-free (grows < 2x over the H range)",
            f"KL at H={h_lo}: {ttt['kl'][0]:.4f}, at H={h_hi}: {ttt['kl'][-1]:.4f} "
            f"(x{ttt_growth:.2f})",
            ttt_growth < 2.0,
        ),
        Check(
            f"Thm 6.1: Cov_{ns[-1]:g} with TTT decoding stays near 0 at every H "
            f"(below 10% of the rare prompt's mass {rare:.3g})",
            "TTT: " + ", ".join(f"{v:.4f}" for v in cov_t)
            + "; plain: " + ", ".join(f"{v:.4f}" for v in cov_p),
            max(cov_t) <= 0.1 * rare,
        ),
        Check(
            "at the largest H, TTT decoding beats plain decoding in KL and Cov_N",
            f"KL {ttt['kl'][-1]:.4f} vs {plain['kl'][-1]:.4f}; Cov_{ns[-1]:g} {cov_t[-1]:.4f} vs "
            f"{cov_p[-1]:.4f}",
            ttt["kl"][-1] < plain["kl"][-1] and cov_t[-1] < cov_p[-1],
        ),
    ]


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check."""
    return check_rows(results)
