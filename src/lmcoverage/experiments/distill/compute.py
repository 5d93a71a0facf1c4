"""distill: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmcoverage.experiments.distill.checks import effect_checks
from lmcoverage.experiments.distill.presets import METHODS, validate
from lmcoverage.experiments.distill.report import plot_figures, write_html
from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.sgd import checkpoint_steps, summarize_sweep
from lmcoverage.experiments.theory_common import (
    best_over_grid,
    checks_to_json,
    finish_run,
    make_rng,
    run_units,
    tuned_results,
)
from lmcoverage.tasks.linear import CountEnumeration, IIDInstance, sgd_instance
from lmcoverage.updates import make_update, run_updates, truncation_point


class TokenStream:
    """Shared teacher samples of one H: prompts (S, T) and token sequences drawn per step."""

    def __init__(self, inst: IIDInstance, horizon: int, steps: int, replicates: int,
                 rng: np.random.Generator) -> None:
        self.inst = inst
        self.horizon = horizon
        self.x = rng.choice(inst.num_prompts, size=(replicates, steps), p=inst.mu.numpy())
        self.cdf = np.cumsum(inst.data_token_probs(), axis=1)
        self.rng = rng

    def step(self, t: int) -> tuple[Tensor, Tensor]:
        """``(x: (S,), prefix: (S, H+1, V))``: step t's prompts and the counts of each fresh
        response's first j tokens, j = 0..H."""
        x = self.x[:, t]
        u = self.rng.random((x.size, self.horizon, 1))
        tokens = np.minimum((u > self.cdf[x][:, None, :]).sum(-1), self.cdf.shape[1] - 1)
        onehot = np.eye(self.cdf.shape[1])[tokens]  # (S, H, V)
        prefix = np.concatenate([np.zeros((x.size, 1, onehot.shape[2])),
                                 np.cumsum(onehot, axis=1)], axis=1)
        return torch.from_numpy(x), torch.from_numpy(prefix)


def weighted_gradient(
    inst: IIDInstance, theta: Tensor, x: Tensor, prefix: Tensor, rep: Tensor,
    log_n: float | None,
) -> Tensor:
    """(R, d) sum_h alpha_h grad log pi_theta(y_h | x) (Eq. 26); ``log_n=None``: all alpha = 1.

    Args:
        theta: (R, d). x: (S,) prompts and prefix: (S, H+1, V) counts of tokens y_1..y_j of the
            S shared responses; rep: (R,) which response each row uses.
    """
    horizon = prefix.shape[1] - 1
    xr = x[rep]
    feats = inst.features[xr]  # (R, V, d)
    mean = inst.expected_features(theta)[torch.arange(theta.shape[0]), xr]  # (R, d)
    if log_n is None:
        weights, total = prefix[rep, -1], torch.full((theta.shape[0],), float(horizon))
    else:
        eps = inst.token_kl(theta)[torch.arange(theta.shape[0]), xr]
        ones, frac = truncation_point(eps, log_n, horizon)
        nxt = prefix[rep, (ones + 1).clamp(max=horizon)] - prefix[rep, ones]
        weights = prefix[rep, ones] + frac[:, None] * nxt
        total = ones.to(theta.dtype) + frac
    return torch.einsum("rv,rvd->rd", weights, feats) - total[:, None] * mean


def run_method(
    inst: IIDInstance, stream: TokenStream, method: str, lrs: list[float], log_n: float,
    record_at: list[int], steps: int,
) -> Tensor:
    """All (lr, replicate) runs of ``method``: theta at ``record_at``, (checkpoints, R, d)."""
    reps = stream.x.shape[0]
    rows = len(lrs) * reps
    rep = torch.arange(rows) % reps
    lr = torch.tensor(lrs, dtype=torch.float64).repeat_interleave(reps)

    def gradient(t: int, theta: Tensor) -> Tensor:
        x, prefix = stream.step(t)
        return weighted_gradient(inst, theta, x, prefix, rep,
                                 log_n if method == "truncated" else None)

    return run_updates(inst.theta0.expand(rows, inst.dim), gradient,
                       make_update("sgd", lr, radius=inst.radius), steps, record_at)


def run_horizon(config: dict[str, Any], horizon: int, seeds: list[int]) -> dict[str, np.ndarray]:
    """Both methods at one H (each re-reads the same teacher samples)."""
    inst = sgd_instance(config["instance"])
    tune = int(config["tune_replicates"])
    steps, reps = int(config["T"]), tune + int(config["replicates"])
    n_cov = float(config["N"])
    enum = CountEnumeration(inst, horizon)
    record_at = checkpoint_steps(steps, int(config["checkpoints"]))
    out: dict[str, np.ndarray] = {"dropped_mass": np.array(enum.dropped_mass)}
    for method in METHODS:
        stream = TokenStream(inst, horizon, steps, reps, make_rng(seeds, horizon))
        lrs = config[f"{method}_lr"]
        traj = run_method(inst, stream, method, lrs, float(np.log(n_cov)), record_at, steps)
        res = summarize_sweep(inst, enum, traj, len(lrs), n_cov, tune)
        out.update({f"{method}.{k}": v for k, v in res.items()})
    return out


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Tune both methods at every H; write results.json, figures, report.html."""
    validate(config)
    horizons = [int(h) for h in config["horizons"]]
    done = run_units(out_dir, {
        f"H{h}": partial(run_horizon, config, h, list(ctx.seeds)) for h in horizons
    }, ctx.executor, ctx.progress)
    units = {h: done[f"H{h}"] for h in horizons}
    best = best_over_grid(units, METHODS, lambda m, i: config[f"{m}_lr"][i])
    checks = effect_checks(best.final_cov, horizons)
    steps = checkpoint_steps(int(config["T"]), int(config["checkpoints"]))
    results: dict[str, Any] = {
        **tuned_results(config, horizons, METHODS, best, "best_lr", steps),
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
