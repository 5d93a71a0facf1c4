"""ttt: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.theory_common import checks_to_json, finish_run, make_rng, run_units
from lmcoverage.experiments.ttt.checks import effect_checks
from lmcoverage.experiments.ttt.presets import DECODERS, validate
from lmcoverage.experiments.ttt.report import plot_figures, write_html
from lmcoverage.metrics import coverage_mass
from lmcoverage.tasks.linear import CountEnumeration, IIDInstance, prop32_instance

#: Teacher-forced tokens scored per batched rollout (bounds memory: ~40 bytes per token).
MAX_TOKENS_PER_BATCH = 2_000_000


def train_token_sgd(
    inst: IIDInstance, horizon: int, x: np.ndarray, y: np.ndarray, lr: Tensor
) -> Tensor:
    """Token-level SGD (Eq. 21) from theta0 over each row's sequences, in order.

    Args:
        x: (R, T) prompts. y: (R, T, H) responses. lr: (R,) step sizes.

    Returns:
        (R, d) final parameters. Sequences on prompts whose features are all zero leave theta
        unchanged (their gradients vanish), so only the others are replayed.
    """
    model = inst.model(horizon)
    theta = inst.theta0.expand(x.shape[0], inst.dim).clone()
    active = (inst.features != 0).flatten(1).any(1).numpy()[x]  # (R, T)
    order = np.argsort(~active, axis=1, kind="stable")  # active sequences first, in order
    for j in range(int(active.sum(1).max(initial=0))):
        idx = order[:, j]
        rows = np.arange(x.shape[0])
        step = torch.where(torch.from_numpy(active[rows, idx]), lr, 0.0)
        theta = model.rollout(theta, torch.from_numpy(x[rows, idx]),
                              torch.from_numpy(y[rows, idx]), lr=step).theta
    return theta


def ttt_log_ratios(
    inst: IIDInstance, horizon: int, theta: Tensor, lr: Tensor, prompt: int, num: int,
    rng: np.random.Generator,
) -> Tensor:
    """(R, num) log pi_D(y|x) - log pi_TTT(theta_r, lr_r)(y|x) for y ~ pi_D(.|prompt).

    Every row r scores the same ``num`` fresh responses, teacher-forced through its own
    per-token updates (Eq. 22-23), restarting from theta_r for each response.
    """
    model = inst.model(horizon)
    counts = rng.multinomial(horizon, inst.data_token_probs()[prompt], size=num)
    y = torch.from_numpy(_orders(counts, rng))
    log_d = torch.from_numpy(np.log(inst.data_token_probs()[prompt]))[y].sum(1)  # (num,)
    chunk = max(1, MAX_TOKENS_PER_BATCH // (num * horizon))
    parts = []
    for start in range(0, theta.shape[0], chunk):
        th, eta = theta[start:start + chunk], lr[start:start + chunk]
        rows = th.shape[0]
        out = model.rollout(th.repeat_interleave(num, 0), torch.full((rows * num,), prompt),
                            y.repeat(rows, 1), lr=eta.repeat_interleave(num))
        parts.append(log_d[None, :] - out.log_prob.view(rows, num))
    return torch.cat(parts)


def _orders(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(num, H) uniformly shuffled token sequences with the given (num, V) counts."""
    seqs = np.stack([np.repeat(np.arange(c.size), c) for c in counts])
    return np.asarray(rng.permuted(seqs, axis=1), dtype=np.int64)


def run_horizon(config: dict[str, Any], horizon: int, rng: np.random.Generator
                ) -> dict[str, np.ndarray]:
    """All replicates and step sizes at one H: KL and Cov_N of both decoders, (lr, R[, ns])."""
    inst = prop32_instance(int(config["T"]), float(config["scale"]), float(config["theta_star"]))
    reps, steps = int(config["replicates"]), int(config["T"])
    grid = torch.tensor(config["lr_grid"], dtype=torch.float64)
    x, counts = inst.sample_counts(horizon, (reps, steps), rng)
    y = _orders(counts.reshape(reps * steps, -1), rng).reshape(reps, steps, horizon)
    lr = grid.repeat_interleave(reps)  # rows lr-major
    theta = train_token_sgd(inst, horizon, np.tile(x, (len(grid), 1)),
                            np.tile(y, (len(grid), 1, 1)), lr)
    ns = config["coverage_ns"]
    enum = CountEnumeration(inst, horizon, min_prob=0.0)
    plain_cov = enum.coverage(theta, ns)
    plain_kl = inst.kl(theta, horizon).numpy()
    rare = float(inst.mu[1])
    ratio = ttt_log_ratios(inst, horizon, theta, lr, 1, int(config["mc_samples"]), rng).numpy()
    weights = np.full(ratio.shape[1], rare / ratio.shape[1])
    ttt_cov = coverage_mass(ratio, weights, ns)  # prompt 0: pi_TTT = pi_D there
    ttt_kl = rare * ratio.mean(1)
    shape = (len(grid), reps)
    return {
        "plain.kl": plain_kl.reshape(shape), "plain.cov": plain_cov.reshape(*shape, len(ns)),
        "ttt.kl": ttt_kl.reshape(shape), "ttt.cov": ttt_cov.reshape(*shape, len(ns)),
        "seen": (x == 1).any(1),
    }


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Train, decode both ways, tune eta per H; write results.json, figures, report.html."""
    validate(config)
    horizons = [int(h) for h in config["horizons"]]
    done = run_units(out_dir, {
        f"H{h}": partial(run_horizon, config, h, make_rng(ctx.seeds, h)) for h in horizons
    }, ctx.executor, ctx.progress)
    units = {h: done[f"H{h}"] for h in horizons}
    rare = 1.0 / (2 * int(config["T"]))
    res: dict[str, dict[str, Any]] = {}
    for dec in DECODERS:
        best = [int(np.argmin(units[h][f"{dec}.kl"].mean(1))) for h in horizons]
        res[dec] = {
            "best_lr": [config["lr_grid"][b] for b in best],
            "kl": [float(units[h][f"{dec}.kl"][b].mean()) for h, b in zip(horizons, best,
                                                                       strict=True)],
            "cov": [units[h][f"{dec}.cov"][b].mean(0).tolist()
                    for h, b in zip(horizons, best, strict=True)],
            "kl_all_lr": {str(h): units[h][f"{dec}.kl"].mean(1).tolist() for h in horizons},
        }
    checks = effect_checks(res, horizons, config["coverage_ns"], rare)
    results: dict[str, Any] = {
        "T": config["T"],
        "horizons": horizons,
        "coverage_ns": config["coverage_ns"],
        "lr_grid": config["lr_grid"],
        "rare_prompt_mass": rare,
        "frac_rare_unseen": float(1 - units[horizons[0]]["seen"].mean()),
        "decoders": res,
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
